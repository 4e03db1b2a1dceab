"""Tina's 21 training recipes (``data/reference/tina_recipes.csv``) mapped onto our resolved paper-scale trials.

Every recipe runs as a trial of a study file (``RECIPE_TRIALS``; some recipes appear in several studies, e.g.
LIMR is the learning-rate, rank and dataset ablations' common point). ``compare(recipe)`` reads each recipe
field from the CSV, reads the value our trial really uses (from its resolved spec, or from the GRPOConfig
fields train.py builds for a GPU run) and sets them side by side; ``DEVIATIONS`` lists every place where we
knowingly differ and why. ``parity_markdown()`` renders ``docs/recipe_parity.md``; tests/test_recipes.py checks
every value of every recipe and that the document is current (regenerate it with
``python -m tina_sweep.recipes > docs/recipe_parity.md``).

Fields that are not columns of the CSV but come from Tina's code are checked as well (``IMPLIED``): the base
model, the KL coefficient and sampling settings of its TRL 0.15 trainer, the system prompt its training script
chooses per dataset, its chat template, and the parameters of its cosine and repetition rewards.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from tina_sweep.config import TrialSpec
from tina_sweep.data import TRAINING_SETS, bundled_path
from tina_sweep.models import MODELS
from tina_sweep.prompts import OPEN_R1_SYSTEM_PROMPT, OPEN_RS_SYSTEM_PROMPT

STUDIES_DIR = Path(__file__).resolve().parents[1] / "studies"
BASE_MODEL = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"

# recipe -> every (study file, axis point) that runs it at paper scale
RECIPE_TRIALS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "2thought": [("tina_extra", {"recipe": "2thought"})],
    "deepscaler": [("tina_main", {"recipe": "deepscaler"}), ("dataset", {"dataset.name": "deepscaler"})],
    "fastcurl": [("tina_extra", {"recipe": "fastcurl"})],
    "l1_exact": [("tina_extra", {"recipe": "l1_exact"})],
    "l1_max": [("tina_extra", {"recipe": "l1_max"})],
    "limr": [("dataset", {"dataset.name": "limr"}), ("learning_rate", {"training.learning_rate": 1e-6}),
             ("lora_rank", {"lora.rank": 32})],
    "limr_large_lr_ablation": [("learning_rate", {"training.learning_rate": 5e-6})],
    "limr_large_rank_ablation": [("lora_rank", {"lora.rank": 128})],
    "limr_medium_rank_ablation": [("lora_rank", {"lora.rank": 16})],
    "limr_small_lr_ablation": [("learning_rate", {"training.learning_rate": 5e-7})],
    "limr_small_rank_ablation": [("lora_rank", {"lora.rank": 8})],
    "limr_tiny_rank_ablation": [("lora_rank", {"lora.rank": 4})],
    "open_r1": [("dataset", {"dataset.name": "open_r1"})],
    "open_rs1": [("tina_main", {"recipe": "open_rs1"}), ("dataset", {"dataset.name": "open_s1"})],
    "open_rs2": [("tina_main", {"recipe": "open_rs2"}), ("dataset", {"dataset.name": "open_rs"})],
    "open_rs3": [("tina_main", {"recipe": "open_rs3"}), ("rl_algorithm", {"algorithm.name": "grpo"})],
    "open_rs3_drgrpo_ablation": [("rl_algorithm", {"algorithm.name": "dr_grpo"})],
    "open_rs3_format_ablation": [("tina_extra", {"recipe": "open_rs3_format_ablation"})],
    "open_rs3_long_completion_ablation": [("tina_extra", {"recipe": "open_rs3_long_completion_ablation"})],
    "still": [("tina_main", {"recipe": "still"}), ("dataset", {"dataset.name": "still3"})],
    "thoughts": [("dataset", {"dataset.name": "open_thoughts"})],
}

# Bundled training sets and the hub set they copy.
BUNDLED_HUB_IDS = {"limr": "GAIR/LIMR"}
# Tina's train script passes --cosine_max_len 3584 to these recipes only (scripts/training/*.sh); tina/config.py's
# default is 1000.
COSINE_3584 = {"open_rs3", "open_rs3_drgrpo_ablation", "open_r1", "thoughts"}

# (recipe or "*", field) -> (the value we use instead, why). Every other value equals the recipe's.
DEVIATIONS: dict[tuple[str, str], tuple[Any, str]] = {
    ("*", "max_prompt_length"): (
        None, "TRL 1.16 has no max_prompt_length. In the recipes' TRL 0.15 trainer with vLLM it only cut the "
              "prompt the loss saw (left-truncated to 512 tokens), never the one vLLM generated from; we keep whole "
              "prompts (vllm_max_model_length still bounds prompt + completion)."),
    ("fastcurl", "dataset_hub_id"): (
        "Nickyang/FastCuRL", "the recipe has no dataset: its key is commented out of Tina's dataset map (the "
                             "training script fails on it); we use the hub id of that commented line."),
    ("l1_exact", "dataset_hub_id"): (
        "agentica-org/DeepScaleR-Preview-Dataset", "as fastcurl: commented out of Tina's map, whose comment names "
                                                   "DeepScaleR."),
    ("l1_max", "dataset_hub_id"): (
        "agentica-org/DeepScaleR-Preview-Dataset", "as l1_exact."),
    ("open_rs3_drgrpo_ablation", "scale_reward_key_as_written"): (
        "dr_grpo", "the recipe's misspelled `scale_reward: false` was dropped, so the published row ran GRPO "
                   "(loss_type grpo, std-scaled advantages); we run Dr.GRPO as defined by Liu et al. (TRL "
                   "loss_type dr_grpo, scale_rewards none), the algorithm the row is labelled with. "
                   "studies/rl_algorithm.py says why."),
    ("open_rs3_long_completion_ablation", "vllm_max_model_len"): (
        9472, "the recipe caps vLLM at 4608 tokens while asking for 8960-token completions; 512 + 8960 lets the "
              "ablation generate what it is named for (studies/tina_extra.py)."),
}


@lru_cache(maxsize=1)
def load_recipes() -> dict[str, dict[str, str]]:
    """The CSV rows by recipe name, as strings."""
    with open(bundled_path("reference/tina_recipes.csv"), newline="") as handle:
        return {row["recipe"]: row for row in csv.DictReader(handle)}


@lru_cache(maxsize=None)
def _resolved(study_stem: str):
    from tina_sweep.study import load_study, resolve

    return resolve(load_study(STUDIES_DIR / f"{study_stem}.py"), "paper")


def trial_for(study_stem: str, point: dict[str, Any]):
    """The paper-scale trial of ``study_stem`` at axis ``point``."""
    matches = [t for t in _resolved(study_stem) if all(t.axes.get(k) == v for k, v in point.items())]
    if len(matches) != 1:
        raise LookupError(f"{study_stem}: {len(matches)} paper-scale trials at {point}")
    return matches[0]


def gpu_config(spec: TrialSpec) -> dict[str, Any]:
    """The GRPOConfig fields train.py sets for this spec on a GPU machine."""
    from tina_sweep.train import grpo_config_kwargs

    return grpo_config_kwargs(spec, Path("checkpoints"), use_cpu=False)


# ------------------------------------------------------------------ the field map

def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split()]


def _int_or_none(text: str) -> int | None:
    return int(text) if text.strip() else None


def _bool(text: str) -> bool:
    return text.strip() == "True"


def _hub_id(spec: TrialSpec) -> str:
    source = TRAINING_SETS[spec.dataset.name]
    return BUNDLED_HUB_IDS.get(source.name, source.location)


def _algorithm_of(config: dict[str, Any]) -> str:
    pair = (config["loss_type"], config["scale_rewards"])
    return {("grpo", "group"): "grpo", ("dr_grpo", "none"): "dr_grpo"}.get(pair, f"{pair}")


@dataclass(frozen=True)
class Field:
    """One recipe field: the CSV column, our field, how to read each side."""

    column: str
    ours_field: str
    theirs: Callable[[dict[str, str]], Any]
    ours: Callable[[TrialSpec, dict[str, Any]], Any]
    note: str = ""


FIELDS: list[Field] = [
    Field("dataset_hub_id", "dataset.name -> catalog hub id", lambda r: r["dataset_hub_id"] or None,
          lambda s, c: _hub_id(s), "LIMR is bundled (the GAIR-NLP/LIMR files of the hub set GAIR/LIMR)"),
    Field("reward_funcs", "algorithm.rewards[].name", lambda r: r["reward_funcs"].split(),
          lambda s, c: [x.name for x in s.algorithm.rewards]),
    Field("reward_weights", "algorithm.rewards[].weight", lambda r: _floats(r["reward_weights"]),
          lambda s, c: [x.weight for x in s.algorithm.rewards]),
    Field("lora_r", "lora.rank", lambda r: int(r["lora_r"]), lambda s, c: s.lora.rank),
    Field("lora_alpha", "lora.alpha (alpha_per_rank x rank)", lambda r: int(r["lora_alpha"]),
          lambda s, c: s.lora.resolved_alpha),
    Field("lora_dropout", "lora.dropout", lambda r: float(r["lora_dropout"]), lambda s, c: s.lora.dropout),
    Field("lora_target_modules", "lora.target_modules (as a set)", lambda r: sorted(r["lora_target_modules"].split()),
          lambda s, c: sorted(s.lora.target_modules)),
    Field("learning_rate", "training.learning_rate", lambda r: float(r["learning_rate"]),
          lambda s, c: c["learning_rate"]),
    Field("lr_scheduler_type", "training.lr_scheduler_type", lambda r: r["lr_scheduler_type"],
          lambda s, c: c["lr_scheduler_type"]),
    Field("min_lr_rate", "training.min_lr_rate -> lr_scheduler_kwargs", lambda r: float(r["min_lr_rate"]),
          lambda s, c: (c["lr_scheduler_kwargs"] or {}).get("min_lr_rate")),
    Field("warmup_ratio", "training.warmup_ratio -> warmup_steps (a ratio in transformers 5)",
          lambda r: float(r["warmup_ratio"]), lambda s, c: c["warmup_steps"]),
    Field("max_steps", "training.max_steps (None: one epoch)", lambda r: _int_or_none(r["max_steps"]),
          lambda s, c: None if c["max_steps"] == -1 else c["max_steps"],
          "the scheduler horizon; the paper stops earlier and reports its best checkpoint"),
    Field("num_generations", "algorithm.num_generations", lambda r: int(r["num_generations"]),
          lambda s, c: c["num_generations"]),
    Field("per_device_train_batch_size", "training.prompts_per_step x algorithm.num_generations",
          lambda r: int(r["per_device_train_batch_size"]), lambda s, c: c["per_device_train_batch_size"],
          "completions per device per micro-step, as in TRL 0.15 and 1.16; Tina ran 2 processes"),
    Field("gradient_accumulation_steps", "training.gradient_accumulation_steps",
          lambda r: int(r["gradient_accumulation_steps"]), lambda s, c: c["gradient_accumulation_steps"]),
    Field("max_prompt_length", "(none)", lambda r: int(r["max_prompt_length"]),
          lambda s, c: c.get("max_prompt_length")),
    Field("max_completion_length", "algorithm.max_completion_length", lambda r: int(r["max_completion_length"]),
          lambda s, c: c["max_completion_length"]),
    Field("temperature", "algorithm.temperature", lambda r: float(r["temperature"]), lambda s, c: c["temperature"]),
    Field("scale_reward_key_as_written", "algorithm.name -> loss_type, scale_rewards",
          lambda r: "grpo", lambda s, c: _algorithm_of(c),
          "what ran: the misspelled key was dropped, so every recipe ran GRPO"),
    Field("seed", "seed", lambda r: int(r["seed"]), lambda s, c: c["seed"]),
    Field("vllm_gpu_memory_utilization", "algorithm.vllm_gpu_memory_utilization",
          lambda r: float(r["vllm_gpu_memory_utilization"]), lambda s, c: c["vllm_gpu_memory_utilization"]),
    Field("vllm_max_model_len", "algorithm.vllm_max_model_length", lambda r: _int_or_none(r["vllm_max_model_len"]),
          lambda s, c: c["vllm_max_model_length"]),
    Field("save_steps", "training.save_steps", lambda r: int(r["save_steps"]), lambda s, c: c["save_steps"]),
    Field("bf16", "model.dtype == bfloat16 -> bf16", lambda r: _bool(r["bf16"]), lambda s, c: c["bf16"]),
    Field("gradient_checkpointing", "on for every GPU run (use_reentrant False, as the recipes)",
          lambda r: _bool(r["gradient_checkpointing"]),
          lambda s, c: c["gradient_checkpointing"] and c["gradient_checkpointing_kwargs"] == {"use_reentrant": False}),
    Field("attn_implementation", "model.attn_implementation", lambda r: r["attn_implementation"],
          lambda s, c: s.model.attn_implementation, "falls back to sdpa where flash-attn is not installed"),
]


def _system_prompt(row: dict[str, str]) -> str:
    """Tina's grpo.py: the open-rs prompt when the dataset's hub id contains "open-rs", else open-r1's; the L1
    recipes append the target length per problem (checked through prompt.target_length_range)."""
    hub = row["dataset_hub_id"]
    return OPEN_RS_SYSTEM_PROMPT if "open-rs" in hub else OPEN_R1_SYSTEM_PROMPT


def _cosine_params(row: dict[str, str]) -> dict | None:
    if "cosine" not in row["reward_funcs"].split():
        return None
    return {"max_len": 3584 if row["recipe"] in COSINE_3584 else 1000, "min_value_wrong": 0.0,
            "max_value_wrong": -0.5, "min_value_correct": 0.5, "max_value_correct": 1.0, "clip_length": False}


def _reward_params(spec: TrialSpec, name: str) -> dict | None:
    found = [r.params for r in spec.algorithm.rewards if r.name == name]
    return found[0] if found else None


# Fields of Tina's code, not columns of the CSV: (name, our field, theirs(row), ours(spec, config), source)
IMPLIED: list[Field] = [
    Field("base model", "model.name -> hub id", lambda r: BASE_MODEL, lambda s, c: MODELS[s.model.name].source,
          "recipes: model_name_or_path DeepSeek-R1-Distill-Qwen-1.5B"),
    Field("beta", "algorithm.beta", lambda r: 0.04, lambda s, c: c["beta"], "TRL 0.15's default (unset)"),
    Field("num_iterations", "(fixed)", lambda r: 1, lambda s, c: c["num_iterations"],
          "TRL 0.15: one policy update per generation batch"),
    Field("top_p", "algorithm.top_p", lambda r: 1.0, lambda s, c: c["top_p"],
          "TRL 0.15's vLLM SamplingParams got only temperature and max_tokens"),
    Field("top_k", "algorithm.top_k (0 = off)", lambda r: 0, lambda s, c: c["top_k"], "as top_p"),
    Field("vLLM rollouts", "algorithm.use_vllm, vllm_mode", lambda r: (True, "colocate"),
          lambda s, c: (c["use_vllm"], c["vllm_mode"]),
          "recipes: use_vllm true, vllm_device cuda:0 (the training GPU, shared)"),
    Field("vLLM importance-sampling correction", "algorithm.vllm_importance_sampling_correction",
          lambda r: False, lambda s, c: c["vllm_importance_sampling_correction"], "absent from TRL 0.15"),
    Field("system prompt", "prompt.system", _system_prompt, lambda s, c: s.prompt.system,
          "tina/post_train_hf/grpo.py + tina/utils/prompt.py"),
    Field("chat template", "prompt.chat_template", lambda r: "deepseek_r1_reason", lambda s, c: s.prompt.chat_template,
          "grpo.py sets REASON_CHAT_TEMPLATE on the tokenizer"),
    Field("L1 target length", "prompt.target_length_range",
          lambda r: (100, 4000) if r["recipe"].startswith("l1_") else None,
          lambda s, c: s.prompt.target_length_range, "grpo.py: uniform in [100, 4000] for the l1 recipes"),
    Field("cosine parameters", "algorithm.rewards[cosine].params", _cosine_params,
          lambda s, c: _reward_params(s, "cosine"), "tina/config.py defaults; --cosine_max_len 3584 per script"),
    Field("repetition parameters", "algorithm.rewards[repetition_penalty].params",
          lambda r: {} if "repetition_penalty" in r["reward_funcs"].split() else None,
          lambda s, c: _reward_params(s, "repetition_penalty"),
          "tina/config.py: n-grams 3, max penalty -1.0 (our defaults)"),
]


@dataclass(frozen=True)
class Comparison:
    recipe: str
    study: str
    trial_id: str
    field: str
    theirs: Any
    ours: Any
    expected: Any  # what we mean to use: theirs, or the DEVIATIONS value
    deviation: str | None

    @property
    def ok(self) -> bool:
        return _same(self.ours, self.expected)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(b)))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def deviation(recipe: str, column: str) -> tuple[Any, str] | None:
    return DEVIATIONS.get((recipe, column)) or DEVIATIONS.get(("*", column))


def compare(recipe: str) -> list[Comparison]:
    """Every field of ``recipe`` against every trial that runs it."""
    row = load_recipes()[recipe]
    out = []
    for study, point in RECIPE_TRIALS[recipe]:
        trial = trial_for(study, point)
        config = gpu_config(trial.spec)
        for item in FIELDS + IMPLIED:
            theirs, ours = item.theirs(row), item.ours(trial.spec, config)
            dev = deviation(recipe, item.column)
            expected, why = (dev if dev else (theirs, None))
            out.append(Comparison(recipe, study, trial.trial_id, item.column, theirs, ours, expected, why))
    return out


# ------------------------------------------------------------------ the document

def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str) and "\n" in value:
        if value == OPEN_RS_SYSTEM_PROMPT:
            return "OPEN_RS_SYSTEM_PROMPT"
        if value == OPEN_R1_SYSTEM_PROMPT:
            return "OPEN_R1_SYSTEM_PROMPT"
    if isinstance(value, list):
        return " ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "defaults"
    return str(value).replace("|", "\\|")


def parity_markdown() -> str:
    """docs/recipe_parity.md: the field map, where each recipe runs, the per-recipe values, the deviations."""
    lines = ["# Recipe parity: Tina's 21 recipes and our paper-scale trials", "",
             "Generated by `python -m tina_sweep.recipes > docs/recipe_parity.md` from "
             "`tina_sweep/data/reference/tina_recipes.csv` and the study files; `tests/test_recipes.py` checks every "
             "value below against the resolved trials and that this file is current.", "",
             "## Field map", "", "| recipe field | our field | note |", "|---|---|---|"]
    for item in FIELDS:
        lines.append(f"| `{item.column}` | `{item.ours_field}` | {item.note} |")
    lines += ["", "Not columns of the CSV, taken from Tina's code and checked the same way:", "",
              "| field | our field | source |", "|---|---|---|"]
    for item in IMPLIED:
        lines.append(f"| {item.column} | `{item.ours_field}` | {item.note} |")
    lines += ["", "## Where each recipe runs (paper scale)", "",
              "A recipe that several studies run resolves to the same trial spec (the same hash) in each.", "",
              "| recipe | study | axis point |", "|---|---|---|"]
    for recipe in load_recipes():
        for study, point in RECIPE_TRIALS[recipe]:
            where = ", ".join(f"{k}={v}" for k, v in point.items())
            lines.append(f"| {recipe} | `studies/{study}.py` | `{where}` |")
    varying = ["dataset_hub_id", "reward_funcs", "reward_weights", "lora_r", "lora_alpha", "learning_rate",
               "max_steps", "num_generations", "per_device_train_batch_size", "max_completion_length",
               "scale_reward_key_as_written", "vllm_gpu_memory_utilization", "vllm_max_model_len", "save_steps",
               "system prompt", "cosine parameters"]
    lines += ["", "## Our values per recipe", "",
              "Fields that vary between recipes (every other field is the same for all 21: LoRA dropout 0.05 on q, k, "
              "v, o, gate, up, down; cosine_with_min_lr from 1e-6 to 0.1x, 10% warm-up; 4 gradient-accumulation "
              "steps; temperature 0.7; beta 0.04; seed 42; bf16, gradient checkpointing, flash-attention 2). A "
              "value in **bold** deviates from the recipe (see below).", "",
              "| recipe | " + " | ".join(varying) + " |", "|---" * (len(varying) + 1) + "|"]
    for recipe in load_recipes():
        by_field = {c.field: c for c in compare(recipe) if c.study == RECIPE_TRIALS[recipe][0][0]}
        cells = []
        for name in varying:
            c = by_field[name]
            text = _cell(c.ours)
            cells.append(f"**{text}**" if c.deviation else text)
        lines.append(f"| {recipe} | " + " | ".join(cells) + " |")
    lines += ["", "## Deviations", "", "| recipe | field | recipe value | ours | why |", "|---|---|---|---|---|"]
    for (recipe, column), (ours, why) in DEVIATIONS.items():
        rows = load_recipes().values() if recipe == "*" else [load_recipes()[recipe]]
        theirs = sorted({r[column] for r in rows}) if column in next(iter(rows)) else ["—"]
        lines.append(f"| {'all' if recipe == '*' else recipe} | `{column}` | {' / '.join(t or '—' for t in theirs)} "
                     f"| {_cell(ours)} | {why} |")
    lines += ["", "## Known differences outside the recipe files", "",
              "- Rewards that need correctness (accuracy, cosine, length, L1) use our strict grader (the last "
              "`\\boxed{}` only, an empty box is wrong); Tina's used math-verify's first match with boxed answers "
              "tried first and other LaTeX as a fallback, and skipped rows whose gold answer it could not parse.",
              "- The recipes ran on TRL 0.15 with a copy of its GRPOTrainer, we on TRL 1.16: generation happens once "
              "per optimizer step for the whole accumulated batch instead of once per micro-step (the same on-policy "
              "samples, one policy update per generation batch), and GRPO's std uses TRL 1.16's nan-aware std plus "
              "1e-4, as TRL 0.15's.",
              "- Tina trained on 2 GPUs (2 processes: 8 prompts x num_generations completions per optimizer step "
              "for 4-generation recipes). The per-device fields above are the recipe's; launch with 2 processes "
              "(`configs/accelerate/zero2.yaml`) for the same global batch, or double "
              "`training.gradient_accumulation_steps` on one GPU.",
              "- Training-set answers: we read each set's `answer` column (II-Thought: `verification_info`); "
              "Tina's script graded against `solution` when a set has one. Unverified offline for the hub sets.",
              "- The paper's rank-\"64\" row is the rank-128 / alpha-512 recipe: `studies/lora_rank.py` runs 128.",
              "- The long-completion ablation carries the same misspelled `scale_reward: false` as the Dr.GRPO one; "
              "it ran GRPO, and so do we: it is an ablation of completion length against open_rs3 (GRPO).",
              "- System prompt: the repository's training script as of the paper picks the open-rs prompt when the "
              "dataset's hub id contains \"open-rs\", so open_rs1 (knoveleng/open-s1) got open-r1's prompt; a later "
              "version of the script also matches the recipe name (open_rs1 would get open-rs's). We follow the "
              "former.",
              "- Tina's cosine parameters (min_value_wrong 0.0, max_value_wrong -0.5) make a longer wrong answer "
              "score lower (0 for an empty one, -0.5 at max_len), the reverse of open-r1's intent, and the length is "
              "not clipped at max_len (open_rs3's 3584-character scale meets completions of up to 3584 tokens, so "
              "the reward oscillates with length); we reproduce both (`tina_cosine_params`).",
              ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(parity_markdown(), end="")
