"""Tina's 21 training recipes against our resolved paper-scale trials, field by field, with Tina's side read from
its own files (``tina_sweep.trial.tina_source``: verbatim quotes with file, line and commit).

Two eras of the Tina repository (issue 12): the paper era (077329b, 2025-04-22: 15 recipes
``recipes/DeepSeek-R1-Distill-Qwen-1.5B/grpo/model_curated_*.yaml``, launch script
``scripts/training/post_train_grpo.sh``) and the latest clean version (b490b48 / c6274cd, 2025-08: recipes renamed
``train_model_*.yaml``, six more, launch scripts under ``scripts/train/``). The paper-era recipe files are quoted
whole; the six latest-era-only recipes are not in the quote store, so their values come from our transcription
``data/reference/tina_recipes.csv`` (marked as such wherever they appear). Which recipes each era has is read
from the quoted launch scripts, and the CSV is checked against the paper-era quotes (``era_differences``).

Every recipe runs as a trial of a study file (``RECIPE_TRIALS``). ``compare(recipe)`` sets, for every field, Tina's
value (and where it comes from) beside the value our trial really uses (its resolved spec, or the GRPOConfig
fields train.py builds for a GPU run); ``DEVIATIONS`` gives the reason for every place we differ, and
``parity_markdown()`` refuses to render a difference without one. It renders ``docs/recipe_parity.md`` (one table
per recipe): ``python analysis/recipe_parity.py > docs/recipe_parity.md``; tests/test_recipes.py checks it is current.
"""

from __future__ import annotations

import ast
import csv
import inspect
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tina_sweep.trial.spec import TrialSpec
from tina_sweep.trial.datasets import TRAINING_SETS, Source, bundled_path
from tina_sweep.trial.models import MODELS
from tina_sweep.trial.prompts import OPEN_R1_SYSTEM_PROMPT, OPEN_RS_SYSTEM_PROMPT
from tina_sweep.trial.tina_source import Quote, quote

STUDIES_DIR = Path(__file__).resolve().parents[1] / "studies"  # this script lives in the repository
CSV_SOURCE = "tina_recipes.csv (not quoted)"
_UNQUOTED = ("tina_recipes.csv, our transcription of train_model_{recipe}.yaml @ b490b48 (the quote store does not "
             "hold that file)")
LONG_COMPLETION = "open_rs3_long_completion_ablation"

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
    LONG_COMPLETION: [("tina_extra", {"recipe": LONG_COMPLETION})],
    "still": [("tina_main", {"recipe": "still"}), ("dataset", {"dataset.name": "still3"})],
    "thoughts": [("dataset", {"dataset.name": "open_thoughts"})],
}

# Bundled training sets and the hub set they copy.
BUNDLED_HUB_IDS = {"limr": "GAIR/LIMR"}
# Our named chat templates and the Tina constant each reproduces.
TINA_CHAT_TEMPLATES = {"deepseek_r1_reason": "REASON_CHAT_TEMPLATE"}
# The TRL 0.15 defaults the recipes left unset (Tina's trainer is a copy of TRL 0.15's GRPOTrainer).
TRL_015 = "TRL 0.15 default, unset in the recipe (not in the quote store)"
# Where the CSV (our transcription of the latest era) differs from the paper-era quote, and why we follow the CSV.
KNOWN_ERA_DIFFERENCES: dict[tuple[str, str], str] = {
    ("still", "save_steps"): "the latest era's train_model_still.yaml checkpoints every 10 steps (as the CSV; a "
                             "derivative repository, shavonthadani/Mira @ e68cf4a, carries the same file), the "
                             "paper-era file every 100; we keep 10, whose checkpoints include every one of 100's",
}

# (recipe or "*", field) -> (the value we use instead, why). Every other value equals Tina's.
DEVIATIONS: dict[tuple[str, str], tuple[Any, str]] = {
    ("*", "max_prompt_length"): (
        None, "TRL 1.16 has no max_prompt_length. In the recipes' TRL 0.15 trainer with vLLM it only cut the "
              "prompt the loss saw (left-truncated to 512 tokens), never the one vLLM generated from; we keep whole "
              "prompts (vllm_max_model_length still bounds prompt + completion)."),
    ("still", "save_steps"): (10, KNOWN_ERA_DIFFERENCES[("still", "save_steps")] + "."),
    ("fastcurl", "dataset_hub_id"): (
        "Nickyang/FastCuRL", "the recipe has no dataset: its key is commented out of Tina's dataset map (the "
                             "training script fails on it); we use the hub id of that commented line."),
    ("l1_exact", "dataset_hub_id"): (
        "agentica-org/DeepScaleR-Preview-Dataset", "as fastcurl: commented out of Tina's map, whose comment names "
                                                   "DeepScaleR."),
    ("l1_max", "dataset_hub_id"): ("agentica-org/DeepScaleR-Preview-Dataset", "as l1_exact."),
    ("fastcurl", "dataset question column"): (
        "problem", "Tina names no columns for a set outside its map; we read FastCuRL's problem column."),
    ("fastcurl", "dataset gold column"): (
        "answer", "Tina names no columns for a set outside its map; we read FastCuRL's answer column."),
    ("l1_exact", "dataset question column"): (
        "problem", "outside Tina's map (see dataset_hub_id); we read DeepScaleR as our deepscaler entry does."),
    ("l1_exact", "dataset gold column"): (
        "answer", "outside Tina's map (see dataset_hub_id); we read DeepScaleR as our deepscaler entry does."),
    ("l1_max", "dataset question column"): ("problem", "as l1_exact."),
    ("l1_max", "dataset gold column"): ("answer", "as l1_exact."),
    ("open_rs3_drgrpo_ablation", "scale_reward_key_as_written"): (
        "dr_grpo", "the recipe's misspelled `scale_reward: false` was dropped, so the published row ran GRPO "
                   "(loss_type grpo, std-scaled advantages); we run Dr.GRPO as defined by Liu et al. (TRL "
                   "loss_type dr_grpo, scale_rewards none), the algorithm the row is labelled with. "
                   "studies/rl_algorithm.py says why."),
    (LONG_COMPLETION, "vllm_max_model_len"): (
        9472, "the recipe caps vLLM at 4608 tokens while asking for 8960-token completions; 512 + 8960 lets the "
              "ablation generate what it is named for (studies/tina_extra.py)."),
    (LONG_COMPLETION, "vLLM rollouts"): (
        (True, "colocate"), "Tina's long-completion script trains on 2 GPUs and runs vLLM on a third of its own (at "
                            "the recipe's 0.7 memory share); we keep vLLM on the training GPU (colocate), as every "
                            "other recipe: the rollouts are the same, but the 0.7 share is then of the GPU that also "
                            "trains (lower algorithm.vllm_gpu_memory_utilization if training runs out of memory)."),
}


@lru_cache(maxsize=1)
def load_recipes() -> dict[str, dict[str, str]]:
    """The CSV rows by recipe name, as strings."""
    with open(bundled_path("reference/tina_recipes.csv"), newline="") as handle:
        return {row["recipe"]: row for row in csv.DictReader(handle)}


@lru_cache(maxsize=None)
def _resolved(study_stem: str):
    from tina_sweep.study.study import load_study, resolve

    return resolve(load_study(STUDIES_DIR / f"{study_stem}.py"), "paper")


def trial_for(study_stem: str, point: dict[str, Any]):
    """The paper-scale trial of ``study_stem`` at axis ``point``."""
    matches = [t for t in _resolved(study_stem) if all(t.axes.get(k) == v for k, v in point.items())]
    if len(matches) != 1:
        raise LookupError(f"{study_stem}: {len(matches)} paper-scale trials at {point}")
    return matches[0]


def gpu_config(spec: TrialSpec) -> dict[str, Any]:
    """The GRPOConfig fields train.py sets for this spec on a GPU machine."""
    from tina_sweep.trial.train.trainer import grpo_config_kwargs

    return grpo_config_kwargs(spec, Path("checkpoints"), use_cpu=False)


# ------------------------------------------------------------------ Tina's side, from the quotes

def _where(item: Quote, line: str) -> str:
    """``file:N @ commit`` of the first quoted line containing ``line``."""
    for offset, text in enumerate(item.text.split("\n")):
        if line in text:
            return f"{item.file}:{item.first_line + offset} @ {item.commit[:7]}"
    raise LookupError(f"{item.key}: no line with {line!r} in {item.where}")


@lru_cache(maxsize=1)
def paper_era_recipes() -> list[str]:
    """The 15 recipes of the paper-era launch script (its DATASET_NAME choices, less the ``curated_`` prefix)."""
    return re.findall(r'DATASET_NAME="curated_(\w+)"', quote("launch.paper.recipes").text)


@lru_cache(maxsize=1)
def latest_era_recipes() -> list[str]:
    """The 21 recipes the latest-era launch script lists (``# main: a, b, ...`` comment lines)."""
    names = []
    for line in quote("launch.latest.recipes").text.split("\n"):
        names += [n.strip() for n in line.lstrip("# ").split(":")[-1].split(",") if n.strip()]
    return names


def era(recipe: str) -> str:
    """Which eras of the repository have ``recipe``."""
    paper, latest = recipe in paper_era_recipes(), recipe in latest_era_recipes()
    return ("paper (077329b: model_curated_{r}.yaml) and latest (b490b48: train_model_{r}.yaml)" if paper and latest
            else "latest only (b490b48: train_model_{r}.yaml)" if latest else "paper only").format(r=recipe)


def _recipe_quote(recipe: str) -> Quote | None:
    return quote(f"recipe.{recipe}") if recipe in paper_era_recipes() else None


def _launch(recipe: str) -> str:
    """The launch script that runs ``recipe``: the paper era's, the latest era's, or its long-completion one."""
    if recipe == LONG_COMPLETION:
        return "launch.long_completion"
    return "launch.paper" if recipe in paper_era_recipes() else "launch.latest"


def training_processes(recipe: str) -> tuple[int, str]:
    """Processes (GPUs) that train: the visible GPUs of the launch script, less the one its long-completion
    script keeps for vLLM."""
    script = _launch(recipe)
    devices = quote(f"{script}.devices")
    count = len(re.search(r"CUDA_VISIBLE_DEVICES=([\d,]+)", devices.text).group(1).split(","))
    launch = quote(f"{script}.launch").text
    if '--num_processes="${GRPO_GPU_COUNT}"' in launch:
        gpus = quote(f"{script}.gpus")
        if "GRPO_GPU_COUNT=$(($GPU_COUNT - 1))" not in gpus.text:
            raise LookupError(f"{gpus.where}: no GRPO_GPU_COUNT = GPU_COUNT - 1")
        return count - 1, f"{devices.where}; {_where(gpus, 'GRPO_GPU_COUNT=')}"
    if '--num_processes="${GPU_COUNT}"' not in launch:
        raise LookupError(f"{quote(f'{script}.launch').where}: num_processes is neither GPU_COUNT nor GRPO_GPU_COUNT")
    return count, f"{devices.where}; {_where(quote(f'{script}.launch'), '--num_processes')}"


@lru_cache(maxsize=1)
def cosine_3584() -> frozenset[str]:
    """Recipes whose launch passes ``--cosine_max_len 3584``: those the paper-era and latest-era scripts name in
    the condition of their 3584 branch, and every recipe of the long-completion script."""
    names = set(re.findall(r'== "curated_(\w+)"', quote("launch.paper.launch").text.split("\n")[0]))
    names |= set(re.findall(r'== "(\w+)"', quote("launch.latest.launch").text.split("\n")[0]))
    if "--cosine_max_len 3584" in quote("launch.long_completion.launch").text:
        names.add(LONG_COMPLETION)
    return frozenset(names)


def _cosine_max_len(recipe: str) -> tuple[int, str]:
    if recipe in cosine_3584():
        launch = quote(f"{_launch(recipe)}.launch")
        return 3584, _where(launch, "--cosine_max_len 3584")
    defaults = quote("config.reward_defaults")
    return _reward_defaults()["cosine_max_len"], _where(defaults, "cosine_max_len")


@lru_cache(maxsize=1)
def _reward_defaults() -> dict[str, Any]:
    """tina/config.py's ``name: type = field(default=value)`` lines, as ``{name: value}``."""
    out = {}
    for node in ast.parse(textwrap.dedent(quote("config.reward_defaults").text)).body:
        call = node.value
        out[node.target.id] = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "default"))
    return out


def _run_quoted(key: str, names: dict[str, Any]) -> dict[str, Any]:
    """Run a quoted block of Tina's Python (dedented, no builtins) on ``names``; the names it leaves. A block quoted
    from the middle of an if chain (``elif ...:``) runs as its own ``if``."""
    item = quote(key)
    code = textwrap.dedent(item.text)
    code = code[2:] if code.startswith("elif ") else code
    exec(compile(code, item.where, "exec"), {"__builtins__": {}}, names)  # noqa: S102
    return names


class _Columns:
    """A stand-in for a ``datasets.Dataset`` that only tracks which original column each column came from."""

    def __init__(self, origin: dict[str, str]) -> None:
        self.origin = origin

    @property
    def column_names(self) -> list[str]:
        return list(self.origin)

    def rename_column(self, old: str, new: str) -> _Columns:
        if old not in self.origin:
            raise LookupError(f"no column {old!r} to rename (columns: {self.column_names})")
        return _Columns({(new if name == old else name): source for name, source in self.origin.items()})

    def remove_columns(self, name: str) -> _Columns:
        return _Columns({k: v for k, v in self.origin.items() if k != name})

    def map(self, *args: Any, **kwargs: Any) -> _Columns:
        return self


def tina_columns(dataset_name: str, columns: tuple[str, ...]) -> tuple[str | None, str | None]:
    """The (question, gold) column Tina's training script reads from a set with ``columns``, found by running its
    quoted column rules: grpo.py's paper-era block, or its 2thought branch for II-Thought."""
    key = "grpo.columns_2thought" if "2thought" in dataset_name else "grpo.columns"
    names = {"train_dataset": _Columns({c: c for c in columns}),
             "pt_args": SimpleNamespace(model_post_train_dataset_name=dataset_name)}
    result = _run_quoted(key, names)["train_dataset"].origin
    return result.get("problem"), result.get("solution")


def tina_system_prompt(hub_id: str) -> str:
    """The system prompt Tina's grpo.py picks for a dataset's hub id (its quoted line, run)."""
    names = {"model_post_train_dataset_name": hub_id,
             "OPEN_RS_SYSTEM_PROMPT": quote("prompt.OPEN_RS_SYSTEM_PROMPT").python_value(),
             "OPEN_R1_SYSTEM_PROMPT": quote("prompt.OPEN_R1_SYSTEM_PROMPT").python_value()}
    return _run_quoted("grpo.system_prompt", names)["SYSTEM_PROMPT"]


@dataclass(frozen=True)
class Tina:
    """One of Tina's values and where it comes from (``file:line @ commit``, or the CSV)."""

    value: Any
    source: str


_STOP = re.compile(r"#\s*use (\d+) for lr scheduler but stop at (\d+) steps")


def _csv_recipe_fields(recipe: str) -> dict[str, Tina]:
    """A recipe's fields as our CSV transcribes them (the latest era's train_model_<recipe>.yaml)."""
    row, src = load_recipes()[recipe], CSV_SOURCE
    int_or_none = lambda text: int(text) if text.strip() else None  # noqa: E731
    values = {
        "dataset_key": row["dataset_key"], "dataset_hub_id": row["dataset_hub_id"] or None,
        "base model": "DeepSeek-R1-Distill-Qwen-1.5B", "reward_funcs": row["reward_funcs"].split(),
        "reward_weights": [float(x) for x in row["reward_weights"].split()], "lora_r": int(row["lora_r"]),
        "lora_alpha": int(row["lora_alpha"]), "lora_dropout": float(row["lora_dropout"]),
        "lora_target_modules": sorted(row["lora_target_modules"].split()),
        "learning_rate": float(row["learning_rate"]), "lr_scheduler_type": row["lr_scheduler_type"],
        "min_lr_rate": float(row["min_lr_rate"]), "warmup_ratio": float(row["warmup_ratio"]),
        "max_steps": int_or_none(row["max_steps"]), "stop step": int_or_none(row["stop_at_step"]),
        "num_generations": int(row["num_generations"]),
        "per_device_train_batch_size": int(row["per_device_train_batch_size"]),
        "gradient_accumulation_steps": int(row["gradient_accumulation_steps"]),
        "max_prompt_length": int(row["max_prompt_length"]),
        "max_completion_length": int(row["max_completion_length"]), "temperature": float(row["temperature"]),
        "scale_reward_key_as_written": row["scale_reward_key_as_written"], "seed": int(row["seed"]),
        "vllm_gpu_memory_utilization": float(row["vllm_gpu_memory_utilization"]),
        "vllm_max_model_len": int_or_none(row["vllm_max_model_len"]), "save_steps": int(row["save_steps"]),
        "bf16": row["bf16"] == "True", "gradient_checkpointing": row["gradient_checkpointing"] == "True",
        "attn_implementation": row["attn_implementation"]}
    return {name: Tina(value, src) for name, value in values.items()}


def _quoted_recipe_fields(item: Quote) -> dict[str, Tina]:
    """A paper-era recipe's fields from its quoted YAML, each with its line."""
    y = item.yaml_value()
    lines = item.text.split("\n")
    at = lambda key: _where(item, f"{key}:")  # noqa: E731
    optional = lambda key: Tina(y.get(key), at(key) if key in y else f"{item.where} (no {key})")  # noqa: E731
    stop = None
    if "max_steps" in y:
        stop = _STOP.search(next(line for line in lines if line.startswith("max_steps:")))
        if stop and int(stop.group(1)) != y["max_steps"]:
            raise ValueError(f"{item.where}: the stop comment's horizon {stop.group(1)} is not max_steps")
    dataset_map, name = quote("constant.dataset_map"), y["model_post_train_dataset_name"]
    out = {"dataset_key": Tina(name, at("model_post_train_dataset_name")),
           "dataset_hub_id": Tina(dataset_map.python_value()[name], _where(dataset_map, f'"{name}"')),
           "base model": Tina(y["model_name_or_path"], at("model_name_or_path")),
           "reward_funcs": Tina(y["rl_post_train_reward_funcs"], at("rl_post_train_reward_funcs")),
           "reward_weights": Tina([float(w) for w in y["rl_post_train_reward_weights"]],
                                  at("rl_post_train_reward_weights")),
           "lora_target_modules": Tina(sorted(y["lora_target_modules"]), at("lora_target_modules")),
           "learning_rate": Tina(float(y["learning_rate"]), at("learning_rate")),  # YAML 1.1 reads 1e-06 as text
           "min_lr_rate": Tina(y["lr_scheduler_kwargs"]["min_lr_rate"], at("  min_lr_rate")),
           "max_steps": optional("max_steps"),
           "stop step": Tina(int(stop.group(2)) if stop else None,
                             at("max_steps") if stop else f"{item.where} (no stop comment)"),
           "scale_reward_key_as_written": Tina(str(y["scale_reward"]) if "scale_reward" in y else "",
                                               optional("scale_reward").source),
           "vllm_max_model_len": optional("vllm_max_model_len"),
           "vllm_device": Tina(y["vllm_device"], at("vllm_device")),
           "gradient_checkpointing": Tina(y["gradient_checkpointing"] and
                                          y["gradient_checkpointing_kwargs"] == {"use_reentrant": False},
                                          at("gradient_checkpointing"))}
    for key in ("lora_r", "lora_alpha", "lora_dropout", "lr_scheduler_type", "warmup_ratio", "num_generations",
                "per_device_train_batch_size", "gradient_accumulation_steps", "max_prompt_length",
                "max_completion_length", "temperature", "seed", "vllm_gpu_memory_utilization", "save_steps", "bf16",
                "attn_implementation"):
        out[key] = Tina(y[key], at(key))
    return out


def recipe_fields(recipe: str) -> dict[str, Tina]:
    """The recipe file's own fields: the quoted paper-era YAML, else the CSV row (latest era only)."""
    item = _recipe_quote(recipe)
    return _quoted_recipe_fields(item) if item else _csv_recipe_fields(recipe)


def era_differences() -> dict[tuple[str, str], tuple[Any, Any]]:
    """Where the CSV (our transcription of the latest era) differs from the paper-era quote, for the 15 recipes
    both eras have: ``{(recipe, field): (paper-era quote, CSV)}``."""
    out = {}
    for recipe in paper_era_recipes():
        quoted, transcribed = recipe_fields(recipe), _csv_recipe_fields(recipe)
        for name, tina in transcribed.items():
            if name not in ("dataset_key", "scale_reward_key_as_written") and not _same(quoted[name].value,
                                                                                         tina.value):
                out[(recipe, name)] = (quoted[name].value, tina.value)
        if _csv_scale_reward(recipe) != quoted["scale_reward_key_as_written"].value:
            out[(recipe, "scale_reward_key_as_written")] = (quoted["scale_reward_key_as_written"].value,
                                                            _csv_scale_reward(recipe))
    return out


def _csv_scale_reward(recipe: str) -> str:
    return load_recipes()[recipe]["scale_reward_key_as_written"]


def tina_values(recipe: str) -> dict[str, Tina]:
    """Every field Tina's code gives ``recipe``: its recipe file's, and those its scripts and defaults imply."""
    fields = recipe_fields(recipe)
    value = lambda name: fields[name].value  # noqa: E731
    processes, processes_source = training_processes(recipe)
    out = dict(fields)
    out["training processes"] = Tina(processes, processes_source)
    out["global batch (prompts per optimizer step)"] = Tina(
        value("per_device_train_batch_size") * value("gradient_accumulation_steps") * processes
        // value("num_generations"),
        "per_device_train_batch_size x gradient_accumulation_steps x training processes / num_generations")
    hub = value("dataset_hub_id") or (deviation(recipe, "dataset_hub_id") or (None,))[0]
    out["system prompt"] = Tina(tina_system_prompt(hub), f"{quote('grpo.system_prompt').where}; "
                                                         f"{quote('prompt.OPEN_RS_SYSTEM_PROMPT').where}")
    template = quote("grpo.chat_template")
    out["chat template"] = Tina(re.search(r"chat_template = (\w+)", template.text).group(1), template.where)
    l1 = quote("grpo.l1_target_length")
    bounds = tuple(int(n) for n in re.findall(r"_length = (\d+)", l1.text))
    out["L1 target length"] = Tina(bounds if "l1" in value("dataset_key") else None, l1.where)
    if "cosine" in value("reward_funcs"):
        max_len, source = _cosine_max_len(recipe)
        defaults = _reward_defaults()
        out["cosine max_len"] = Tina(max_len, source)
        out["cosine values"] = Tina({k: defaults[f"cosine_{k}"] for k in COSINE_VALUES},
                                    quote("config.reward_defaults").where)
    if "repetition_penalty" in value("reward_funcs"):
        defaults = _reward_defaults()
        out["repetition parameters"] = Tina({"ngram_size": defaults["repetition_n_grams"],
                                             "max_penalty": defaults["repetition_max_penalty"]},
                                            quote("config.reward_defaults").where)
    in_map = value("dataset_hub_id") is not None
    columns = _catalog_for_hub(hub).columns if in_map else ()
    question, gold = tina_columns(value("dataset_key"), columns) if in_map else (None, None)
    rule = quote("grpo.columns_2thought" if "2thought" in value("dataset_key") else "grpo.columns").where
    out["dataset question column"] = Tina(question, rule if in_map else "not in Tina's dataset map")
    out["dataset gold column"] = Tina(gold, rule if in_map else "not in Tina's dataset map")
    out["vLLM rollouts"] = _vllm_placement(recipe, fields)
    for name, default in (("beta", 0.04), ("num_iterations", 1), ("top_p", 1.0), ("top_k", 0),
                          ("vLLM importance-sampling correction", False)):
        out[name] = Tina(default, TRL_015)
    return out


COSINE_VALUES = ("min_value_wrong", "max_value_wrong", "min_value_correct", "max_value_correct")


def _vllm_placement(recipe: str, fields: dict[str, Tina]) -> Tina:
    """vLLM's GPU: its own where the long-completion script keeps one for it, else the training GPU it shares."""
    if recipe == LONG_COMPLETION:
        gpus = quote("launch.long_completion.gpus")
        return Tina((True, "own GPU"), _where(gpus, "1 GPU for VLLM"))
    if "vllm_device" in fields:
        return Tina((True, "colocate" if fields["vllm_device"].value == "cuda:0" else fields["vllm_device"].value),
                    fields["vllm_device"].source)
    devices = quote("launch.latest.devices")
    return Tina((True, "colocate"), f"{devices.where}: as many training processes as GPUs, none left for vLLM")


def _catalog_for_hub(hub_id: str) -> Source:
    """Our training-set entry for a hub id (a bundled copy counts as its hub set)."""
    for source in TRAINING_SETS.values():
        if source.location == hub_id or BUNDLED_HUB_IDS.get(source.name) == hub_id:
            return source
    raise LookupError(f"no training set of ours is the hub set {hub_id}")


# ------------------------------------------------------------------ our side

def _hub_id(spec: TrialSpec) -> str:
    source = TRAINING_SETS[spec.dataset.name]
    return BUNDLED_HUB_IDS.get(source.name, source.location)


def _algorithm_of(config: dict[str, Any]) -> str:
    pair = (config["loss_type"], config["scale_rewards"])
    return {("grpo", "group"): "grpo", ("dr_grpo", "none"): "dr_grpo"}.get(pair, f"{pair}")


def _reward_params(spec: TrialSpec, name: str) -> dict | None:
    found = [r.params for r in spec.algorithm.rewards if r.name == name]
    return found[0] if found else None


def _repetition_params(spec: TrialSpec) -> dict | None:
    from tina_sweep.trial.rewards import make_repetition_penalty

    params = _reward_params(spec, "repetition_penalty")
    if params is None:
        return None
    defaults = {k: p.default for k, p in inspect.signature(make_repetition_penalty).parameters.items()}
    return {**defaults, **params}


@dataclass(frozen=True)
class Field:
    """One compared field: its name, our field, and how to read our value (spec, GRPOConfig kwargs)."""

    name: str
    ours_field: str
    ours: Callable[[TrialSpec, dict[str, Any]], Any]


FIELDS: list[Field] = [
    Field("dataset_hub_id", "dataset.name -> catalog hub id", lambda s, c: _hub_id(s)),
    Field("dataset question column", "the catalog entry's question_field", lambda s, c: TRAINING_SETS[
        s.dataset.name].question_field),
    Field("dataset gold column", "the catalog entry's answer_field", lambda s, c: TRAINING_SETS[
        s.dataset.name].answer_field),
    Field("base model", "model.name -> hub id (name part)", lambda s, c: MODELS[s.model.name].source.split("/")[-1]),
    Field("system prompt", "prompt.system", lambda s, c: s.prompt.system),
    Field("chat template", "prompt.chat_template", lambda s, c: TINA_CHAT_TEMPLATES.get(s.prompt.chat_template)),
    Field("L1 target length", "prompt.target_length_range", lambda s, c: s.prompt.target_length_range),
    Field("reward_funcs", "algorithm.rewards[].name", lambda s, c: [x.name for x in s.algorithm.rewards]),
    Field("reward_weights", "algorithm.rewards[].weight", lambda s, c: [x.weight for x in s.algorithm.rewards]),
    Field("cosine max_len", "algorithm.rewards[cosine].params.max_len",
          lambda s, c: (_reward_params(s, "cosine") or {}).get("max_len")),
    Field("cosine values", "algorithm.rewards[cosine].params",
          lambda s, c: {k: (_reward_params(s, "cosine") or {}).get(k) for k in COSINE_VALUES}),
    Field("repetition parameters", "algorithm.rewards[repetition_penalty].params (with defaults)",
          lambda s, c: _repetition_params(s)),
    Field("lora_r", "lora.rank", lambda s, c: s.lora.rank),
    Field("lora_alpha", "lora.alpha (alpha_per_rank x rank)", lambda s, c: s.lora.resolved_alpha),
    Field("lora_dropout", "lora.dropout", lambda s, c: s.lora.dropout),
    Field("lora_target_modules", "lora.target_modules (as a set)", lambda s, c: sorted(s.lora.target_modules)),
    Field("learning_rate", "training.learning_rate", lambda s, c: c["learning_rate"]),
    Field("lr_scheduler_type", "training.lr_scheduler_type", lambda s, c: c["lr_scheduler_type"]),
    Field("min_lr_rate", "training.min_lr_rate -> lr_scheduler_kwargs",
          lambda s, c: (c["lr_scheduler_kwargs"] or {}).get("min_lr_rate")),
    Field("warmup_ratio", "training.warmup_ratio -> warmup_steps (a ratio in transformers 5)",
          lambda s, c: c["warmup_steps"]),
    Field("max_steps", "training.max_steps (the schedule's horizon; None: one epoch)",
          lambda s, c: None if c["max_steps"] == -1 else c["max_steps"]),
    Field("stop step", "training.stop_at_step (None: the whole horizon)", lambda s, c: s.training.stop_at_step),
    Field("num_generations", "algorithm.num_generations", lambda s, c: c["num_generations"]),
    Field("per_device_train_batch_size", "training.prompts_per_step x algorithm.num_generations",
          lambda s, c: c["per_device_train_batch_size"]),
    Field("gradient_accumulation_steps", "training.gradient_accumulation_steps",
          lambda s, c: c["gradient_accumulation_steps"]),
    Field("training processes", "training.global_batch_processes",
          lambda s, c: s.training.global_batch_processes),
    Field("global batch (prompts per optimizer step)",
          "training.prompts_per_step x gradient_accumulation_steps x global_batch_processes",
          lambda s, c: s.training.global_prompts_per_step),
    Field("max_prompt_length", "(none)", lambda s, c: c.get("max_prompt_length")),
    Field("max_completion_length", "algorithm.max_completion_length", lambda s, c: c["max_completion_length"]),
    Field("temperature", "algorithm.temperature", lambda s, c: c["temperature"]),
    Field("scale_reward_key_as_written", "algorithm.name -> loss_type, scale_rewards (what ran: grpo)",
          lambda s, c: _algorithm_of(c)),
    Field("seed", "seed", lambda s, c: c["seed"]),
    Field("vLLM rollouts", "algorithm.use_vllm, vllm_mode", lambda s, c: (c["use_vllm"], c["vllm_mode"])),
    Field("vllm_gpu_memory_utilization", "algorithm.vllm_gpu_memory_utilization",
          lambda s, c: c["vllm_gpu_memory_utilization"]),
    Field("vllm_max_model_len", "algorithm.vllm_max_model_length", lambda s, c: c["vllm_max_model_length"]),
    Field("save_steps", "training.save_steps", lambda s, c: c["save_steps"]),
    Field("bf16", "model.dtype == bfloat16 -> bf16", lambda s, c: c["bf16"]),
    Field("gradient_checkpointing", "on for every GPU run (use_reentrant False, as the recipes)",
          lambda s, c: c["gradient_checkpointing"] and c["gradient_checkpointing_kwargs"] == {"use_reentrant": False}),
    Field("attn_implementation", "model.attn_implementation (sdpa where flash-attn is not installed)",
          lambda s, c: s.model.attn_implementation),
    Field("beta", "algorithm.beta", lambda s, c: c["beta"]),
    Field("num_iterations", "(fixed)", lambda s, c: c["num_iterations"]),
    Field("top_p", "algorithm.top_p", lambda s, c: c["top_p"]),
    Field("top_k", "algorithm.top_k (0 = off)", lambda s, c: c["top_k"]),
    Field("vLLM importance-sampling correction", "algorithm.vllm_importance_sampling_correction",
          lambda s, c: c["vllm_importance_sampling_correction"]),
]


def _theirs_for_comparison(name: str, tina: Tina) -> Any:
    """Tina's value as the comparison reads it: every recipe ran GRPO, whatever its misspelled scale_reward key."""
    return "grpo" if name == "scale_reward_key_as_written" else tina.value


@dataclass(frozen=True)
class Comparison:
    recipe: str
    study: str
    trial_id: str
    field: str
    theirs: Any
    source: str
    ours: Any
    expected: Any  # what we mean to use: theirs, or the DEVIATIONS value
    deviation: str | None

    @property
    def ok(self) -> bool:
        return _same(self.ours, self.expected)

    @property
    def differs(self) -> bool:
        return not _same(self.ours, self.theirs)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(b)))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def deviation(recipe: str, name: str) -> tuple[Any, str] | None:
    return DEVIATIONS.get((recipe, name)) or DEVIATIONS.get(("*", name))


def compare(recipe: str) -> list[Comparison]:
    """Every field of ``recipe`` Tina's code gives it, against every trial that runs it."""
    theirs = tina_values(recipe)
    out = []
    for study, point in RECIPE_TRIALS[recipe]:
        trial = trial_for(study, point)
        config = gpu_config(trial.spec)
        for item in FIELDS:
            if item.name not in theirs:
                continue  # cosine and repetition fields of recipes without those rewards
            tina = theirs[item.name]
            value = _theirs_for_comparison(item.name, tina)
            dev = deviation(recipe, item.name)
            expected, why = dev if dev else (value, None)
            out.append(Comparison(recipe, study, trial.trial_id, item.name, value, tina.source,
                                  item.ours(trial.spec, config), expected, why))
    return out


# ------------------------------------------------------------------ the document

def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if value == OPEN_RS_SYSTEM_PROMPT:
        return "OPEN_RS_SYSTEM_PROMPT"
    if value == OPEN_R1_SYSTEM_PROMPT:
        return "OPEN_R1_SYSTEM_PROMPT"
    if isinstance(value, (list, tuple)):
        return " ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "defaults"
    return str(value).replace("|", "\\|")


def _recipe_table(recipe: str) -> list[str]:
    """One recipe's section: eras, where it runs, and every field with Tina's value, source, ours and why."""
    comparisons = compare(recipe)
    unexplained = [c for c in comparisons if c.differs and not c.deviation]
    if unexplained:
        c = unexplained[0]
        raise ValueError(f"{recipe}: {c.field} differs from Tina's ({_cell(c.theirs)} at {c.source}, ours "
                         f"{_cell(c.ours)}) with no reason in DEVIATIONS")
    wrong = [c for c in comparisons if not c.ok]
    if wrong:
        c = wrong[0]
        raise ValueError(f"{recipe}: {c.field} is {_cell(c.ours)} in {c.study}, not {_cell(c.expected)}")
    first = RECIPE_TRIALS[recipe][0][0]
    item = _recipe_quote(recipe)
    runs = "; ".join(f"`studies/{s}.py` ({', '.join(f'{k}={v}' for k, v in p.items())})"
                     for s, p in RECIPE_TRIALS[recipe])
    lines = [f"### {recipe}", "", f"- Eras: {era(recipe)}.",
             f"- Tina's values: {item.where if item else _UNQUOTED.format(recipe=recipe)}; launch script "
             f"{quote(_launch(recipe) + '.launch').where}.",
             f"- Runs in: {runs} (one trial spec).", "",
             "| field | Tina | Tina's source | ours | our field | difference |", "|---|---|---|---|---|---|"]
    by_name = {f.name: f for f in FIELDS}
    for c in comparisons:
        if c.study != first:
            continue
        why = f"**differs:** {c.deviation}" if c.differs else ""
        lines.append(f"| {c.field} | {_cell(c.theirs)} | {c.source} | {_cell(c.ours)} | "
                     f"{by_name[c.field].ours_field} | {why} |")
    return lines + [""]


def parity_markdown() -> str:
    """docs/recipe_parity.md: one table per recipe, the eras, the training sets' columns, known differences."""
    recipes = list(load_recipes())
    lines = ["# Recipe parity: Tina's 21 recipes and our paper-scale trials", "",
             "Generated by `python analysis/recipe_parity.py > docs/recipe_parity.md`; `tests/test_recipes.py` checks "
             "every value below against the resolved trials and that this file is current. Tina's values are read "
             "from verbatim quotes of its repository (`tina_sweep/data/reference/tina_source/recipes.json`, each "
             "with its file, first line and commit; `file:N @ commit` below), never from our own transcription, "
             "except where a row says `tina_recipes.csv`: the six recipes only the latest era has are not in the "
             "quote store. Every difference has its reason in the last column; the generator refuses to render "
             "one without.", "",
             "## Which Tina", "",
             f"- Paper era, 077329b (2025-04-22): {len(paper_era_recipes())} recipes "
             "`recipes/DeepSeek-R1-Distill-Qwen-1.5B/grpo/model_curated_<name>.yaml`, launched by "
             f"`scripts/training/post_train_grpo.sh` ({quote('launch.paper.recipes').where}: "
             f"{', '.join(paper_era_recipes())}). The quote store has every one at 077329b except "
             f"model_curated_still.yaml, held only at e16606f, an earlier paper-era commit (the package was still "
             "called resee); the training code (grpo.py, prompt.py, constant.py, config.py) is quoted at e16606f "
             "too, the only paper-era version the store holds.",
             f"- Latest clean version, b490b48 / c6274cd (2025-08): {len(latest_era_recipes())} recipes "
             "`train_model_<name>.yaml`, launched by `scripts/train/post_train_model_grpo.sh` "
             f"({quote('launch.latest.recipes').where}) and, for the long-completion ablation, "
             "`scripts/train/post_train_model_grpo_long_completion.sh`. The store holds these launch scripts but "
             "none of the train_model_*.yaml files nor tina/utils/chat_template.py, of either era. Six recipes are "
             f"latest only: {', '.join(r for r in latest_era_recipes() if r not in paper_era_recipes())}; their "
             "values are our transcription (`tina_recipes.csv`).",
             "- Both eras: the launch scripts agree (2 visible GPUs, `--num_processes` = their count, "
             "`--cosine_max_len 3584` for the same four recipes: "
             f"{quote('launch.paper.launch').where} and {quote('launch.latest.launch').where}). For the 15 recipes "
             "both eras have, the CSV (transcribed from the latest era) was compared field by field with the "
             "paper-era quotes (`era_differences`); they differ only in:", ""]
    for (recipe, name), (paper, latest) in era_differences().items():
        lines.append(f"  - {recipe} `{name}`: paper era {_cell(paper)}, latest era {_cell(latest)} — "
                     f"{KNOWN_ERA_DIFFERENCES.get((recipe, name), 'UNEXPLAINED')}.")
    lines += ["", "## Training sets: question and gold columns", "",
              "Tina's training script decides the prompt and gold columns by the columns a set has "
              f"({quote('grpo.columns').where}; II-Thought: {quote('grpo.columns_2thought').where}). Run on each "
              "set's columns (the `columns` of our catalog entry: a bundled file's fields, or the hub set's columns "
              "as its dataset card lists them, not checked offline), it gives:", "",
              "| training set | hub id | columns | Tina: question / gold | ours: question / gold (format) |",
              "|---|---|---|---|---|"]
    for source in TRAINING_SETS.values():
        if not source.columns:
            continue
        key = "curated_2thought" if source.name == "ii_thought" else f"curated_{source.name}"
        question, gold = tina_columns(key, source.columns)
        lines.append(f"| {source.name} | {BUNDLED_HUB_IDS.get(source.name, source.location)} | "
                     f"{', '.join(source.columns)} | {question} / {gold} | {source.question_field} / "
                     f"{source.answer_field} ({source.answer_format}) |")
    lines += ["", "A gold column `solution` is a worked solution: Tina's rewards parse it with math-verify "
              "(first match, boxed answers first); we read its last `\\boxed{}` (answer format `boxed`) and leave "
              "out the rows without one, as Tina's rewards skipped rows whose gold they could not parse.", "",
              "## Recipes", ""]
    for recipe in recipes:
        lines += _recipe_table(recipe)
    lines += ["## Known differences outside the recipe files", "",
              "- Rewards that need correctness (accuracy, cosine, length, L1) use our strict grader (the last "
              "`\\boxed{}` only, an empty box is wrong); Tina's used math-verify's first match with boxed answers "
              "tried first and other LaTeX as a fallback, and skipped rows whose gold answer it could not parse. "
              "Evaluation can grade the paper's way (`eval.grader: math_verify`, LightEval's extraction; the "
              "report names each number's grader); the training rewards keep the strict grader.",
              "- The recipes ran on TRL 0.15 with a copy of its GRPOTrainer, we on TRL 1.16: generation happens once "
              "per optimizer step for the whole accumulated batch instead of once per micro-step (the same on-policy "
              "samples, one policy update per generation batch), and GRPO's std uses TRL 1.16's nan-aware std plus "
              "1e-4, as TRL 0.15's.",
              "- Global batch: Tina trained on 2 processes, so each optimizer step saw per_device_train_batch_size "
              "x gradient_accumulation_steps x 2 / num_generations = 8 prompts in every recipe (the `global batch` "
              "rows). Ours is training.prompts_per_step x gradient_accumulation_steps x "
              "training.global_batch_processes = 8 at paper scale (the preset sets 2 processes): train.py accumulates "
              "8 micro-batches on one GPU, 4 on two, 2 on four.",
              "- Stop steps: the recipes say \"use N for lr scheduler but stop at M steps\"; every paper-scale "
              "trial sets training.stop_at_step to M (the schedule's horizon stays max_steps = N). open_r1 and "
              "thoughts have no max_steps (one epoch) and no stop step.",
              "- The paper's rank-\"64\" row is the rank-128 / alpha-512 recipe: `studies/lora_rank.py` runs 128.",
              "- The long-completion ablation carries the same misspelled `scale_reward: false` as the Dr.GRPO one; "
              "it ran GRPO, and so do we: it is an ablation of completion length against open_rs3 (GRPO). Tina's "
              "long-completion script passes `--cosine_max_len 3584` to every run and keeps one of its three GPUs "
              "for vLLM; its config names (open_rs3_small/medium/large_completion_ablation, "
              f"{quote('launch.long_completion.config').where}) are not the recipe's name, and no such recipe "
              "file is in either era's list.",
              "- System prompt: the paper-era training script picks the open-rs prompt when the dataset's hub id "
              f"contains \"open-rs\" ({quote('grpo.system_prompt').where}), so open_rs1 (knoveleng/open-s1) got "
              "open-r1's prompt; a later version also matches the recipe's dataset name "
              f"({quote('grpo.system_prompt_later').where}: open_rs1 would get open-rs's). We follow the former.",
              "- Chat template: grpo.py installs REASON_CHAT_TEMPLATE from tina/utils/chat_template.py, which the "
              "quote store does not hold; our `deepseek_r1_reason` is the text derivative repositories carry under "
              "that name, not compared with Tina's own file.",
              "- Tina's cosine parameters (min_value_wrong 0.0, max_value_wrong -0.5) make a longer wrong answer "
              "score lower (0 for an empty one, -0.5 at max_len), the reverse of open-r1's intent, and the length is "
              "not clipped at max_len (open_rs3's 3584-character scale meets completions of up to 3584 tokens, so "
              "the reward oscillates with length); we reproduce both (`tina_cosine_params`, clip_length False).",
              ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(parity_markdown(), end="")
