"""Paper-scale cost, projected from measurement (issue 15, item 6): what each of the Tina paper's runs would cost on
the GPU this runs on, beside the paper's own cost table.

    python benchmarks/paper_cost.py paper
        No GPU needed: every row of the paper's cost table (tina_sweep/data/reference/tina_paper_cost_usd.csv), the
        Tina recipes it trained, their optimizer steps, and the GPU-seconds per step its dollars imply (two L40S
        at the price table's $1.00 per GPU-hour, as the paper states).
    python benchmarks/paper_cost.py measure WORK [--recipe limr] [--steps 3] [--eval-prompts 128 --eval-tokens 8192]
        On a CUDA GPU with vLLM, no network: DeepSeek-R1-Distill-Qwen-1.5B's architecture with random weights (its
        config, 151,936-row vocabulary) and a byte-level BPE tokenizer of exactly that many tokens built in-process.
        Times GRPO steps of the recipe's trial as our study resolves it at paper scale -- LoRA rank r on every linear
        layer, vLLM colocated rollouts, the recipe's completion cap and global batch (on one GPU: all of it,
        accumulated) -- on the bundled LIMR prompts; then one vLLM evaluation pass with the paper's evaluation
        settings (bf16, max_model_len 32,768, temperature 0.6, top-p 0.95), every answer generated to
        ``--eval-tokens`` (EOS ignored). A random model almost never samples EOS, so its completions run to the
        cap: the step time is that of the recipe's longest step. Writes WORK/measured-<recipe>.json.
    python benchmarks/paper_cost.py project WORK/measured-*.json [--prices FILE]
        Every cost-table row whose recipes' shape was measured: steps x measured seconds per step -> GPU-hours and
        dollars on the measured GPU (its price from tina_sweep/trial/cost.py, or --prices), beside the paper's
        dollars and GPU-hours with the ratio; then one evaluation pass of the six benchmarks.

Keep it here so every lent GPU re-runs it (docs/gpu.md, "Paper-scale cost").
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for folder in (REPO, REPO / "analysis", REPO / "benchmarks"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from gpu_check import PAPER_SHAPE, QWEN2_SPLIT, save_model_dir  # noqa: E402
from tina_sweep.report.paper import load_published_cost, load_published_pass1  # noqa: E402
from tina_sweep.study.scales import SCALES  # noqa: E402
from tina_sweep.trial.cost import DeviceInfo, load_prices, price_per_hour  # noqa: E402
from tina_sweep.trial.datasets import BENCHMARKS, TRAINING_SETS, bundled_path, read_rows  # noqa: E402
from recipe_parity import RECIPE_TRIALS, load_recipes, recipe_fields, trial_for  # noqa: E402
from recipe_parity import training_processes as quoted_processes  # noqa: E402

# DeepSeek-R1-Distill-Qwen-1.5B: the body of gpu_check.PAPER_SHAPE and its vocabulary (151,936 rows, untied
# embedding and LM head: 1.78 B parameters in all), as its config.json has them (its fine-tunes on the hub carry it,
# e.g. oumi-ai/MiniMath-R1-1.5B; tests/test_paper_cost.py checks the size).
PAPER_VOCAB_SIZE = 151936

# The rows of the paper's cost table and the Tina recipes each one trained (the paper's names; the launch scripts
# train the LIMR ablations as their own recipes: scripts/training/post_train_grpo.sh @ 077329b, docs/recipe_parity.md).
# The learning-rate and rank ablations' 1e-6 / rank-32 point is the LIMR run, a row of its own.
TASK_RECIPES: dict[str, list[str]] = {
    "Main: Tina-STILL-3-1.5B-preview": ["still"],
    "Main: Tina-DeepScaleR-1.5B-Preview": ["deepscaler"],
    "Main: Tina-Open-RS1": ["open_rs1"],
    "Main: Tina-Open-RS2": ["open_rs2"],
    "Main: Tina-Open-RS3": ["open_rs3"],
    "Ablation: OpenThoughts Dataset": ["thoughts"],
    "Ablation: OpenR1 Dataset": ["open_r1"],
    "Ablation: LIMR Dataset": ["limr"],
    "Ablation: DrGRPO Algorithm": ["open_rs3_drgrpo_ablation"],
    "Ablation: Learning Rate": ["limr_small_lr_ablation", "limr_large_lr_ablation"],
    "Ablation: LoRA Rank/Alpha": ["limr_tiny_rank_ablation", "limr_small_rank_ablation",
                                  "limr_medium_rank_ablation", "limr_large_rank_ablation"],
}
# The recipes that set no max_steps train one epoch; the paper's dataset table names each set's size
# ("Tina-OpenR1 (93.7k)"): the pass1 table's train_dataset key of each such recipe.
ONE_EPOCH_DATASETS = {"open_r1": "open_r1", "thoughts": "open_thoughts"}
# The paper: two NVIDIA L40S (the price table's $1.00 per GPU-hour, as the paper states)
PAPER_DEVICE = DeviceInfo("NVIDIA L40S", "cuda", 2)
# One evaluation pass: the paper scale's six benchmarks, up to 32,768 new tokens per answer (Tina's evaluation
# settings, tina_sweep/study/scales.py); GPQA-Diamond is hub-only (198 questions, its catalog entry)
PAPER_BENCHMARKS = tuple(b["name"] for b in SCALES["paper"]["eval"]["benchmarks"])
PAPER_EVAL_CAP = SCALES["paper"]["eval"]["max_new_tokens"]
HUB_ONLY_PROBLEMS = {"gpqa_diamond": 198}
MODEL_DIR = "deepseek-r1-distill-qwen-1.5b-random"  # under WORK


# ------------------------------------------------------------------ the paper's side

@lru_cache(maxsize=None)  # recipe_fields parses the quoted recipe file on every call
def tina_value(recipe: str, field: str):
    """A recipe's value as Tina's own recipe file has it (quoted with file, line and commit; the six latest-era-only
    recipes from tina_recipes.csv): analysis/recipe_parity.py's ``recipe_fields``. None where the recipe leaves it
    unset."""
    found = recipe_fields(recipe).get(field)
    return None if found is None else found.value


def paper_cost_rows() -> list[dict]:
    """The paper's cost table as published (US dollars)."""
    return load_published_cost().to_dicts()


def dataset_sizes() -> dict[str, int]:
    """Training-set sizes as the paper's dataset-ablation rows name them ("Tina-OpenR1 (93.7k)" -> 93,700)."""
    sizes = {}
    for row in load_published_pass1().filter(section="ablation_dataset").to_dicts():
        found = re.search(r"\(([\d.]+)k\)", row["model"])
        if found:
            sizes[row["train_dataset"]] = round(float(found.group(1)) * 1000)
    return sizes


def training_processes(recipe: str) -> int:
    """The processes Tina's launch script trains ``recipe`` with (its global batch is per that many)."""
    return quoted_processes(recipe)[0]


@dataclass(frozen=True)
class Shape:
    """What one optimizer step of a recipe generates and trains on: the step-time-relevant part of a recipe."""

    completions_per_step: int
    completion_cap: int

    def label(self) -> str:
        return f"{self.completions_per_step} x {self.completion_cap}"


def recipe_shape(recipe: str) -> Shape:
    """Completions per optimizer step: per-device batch x accumulation x the launch script's processes."""
    completions = (int(tina_value(recipe, "per_device_train_batch_size"))
                   * int(tina_value(recipe, "gradient_accumulation_steps")) * training_processes(recipe))
    return Shape(completions, int(tina_value(recipe, "max_completion_length")))


def recipe_steps(recipe: str) -> tuple[int, str]:
    """Optimizer steps the recipe trained and where the number comes from: the step its comment says training
    stopped at ("use 1500 for lr scheduler but stop at 850 steps"), else max_steps, else one epoch."""
    if tina_value(recipe, "stop step"):
        return int(tina_value(recipe, "stop step")), "stop step"
    if tina_value(recipe, "max_steps"):
        return int(tina_value(recipe, "max_steps")), "max_steps"
    size = dataset_sizes()[ONE_EPOCH_DATASETS[recipe]]
    prompts = recipe_shape(recipe).completions_per_step // int(tina_value(recipe, "num_generations"))
    return -(-size // prompts), f"one epoch ({size:,} / {prompts} prompts)"


def paper_tasks() -> list[dict]:
    """Each training row of the paper's cost table: its recipes, steps, dollars, GPU-hours (dollars / the paper's
    price) and the GPU-seconds per step they imply."""
    paper_price = price_per_hour(PAPER_DEVICE, load_prices(None))
    rows = []
    for row in paper_cost_rows():
        if row["task"] not in TASK_RECIPES:
            continue
        names = TASK_RECIPES[row["task"]]
        steps = {name: recipe_steps(name) for name in names}
        total_steps = sum(n for n, _ in steps.values())
        gpu_hours = row["train_usd"] / paper_price
        rows.append({"task": row["task"], "recipes": names, "steps": steps, "total_steps": total_steps,
                     "shapes": sorted({recipe_shape(n) for n in names}, key=Shape.label),
                     "train_usd": row["train_usd"], "eval_usd": row["eval_usd"],
                     "gpu_hours": gpu_hours, "gpu_seconds_per_step": gpu_hours * 3600 / total_steps})
    return rows


def benchmark_problems() -> dict[str, int]:
    """Problems per benchmark of one evaluation pass (bundled files counted, GPQA-Diamond from its catalog)."""
    return {name: HUB_ONLY_PROBLEMS.get(name) or len(read_rows(bundled_path(BENCHMARKS[name].location)))
            for name in PAPER_BENCHMARKS}


def print_paper() -> None:
    print(f"The paper's cost table, training: {PAPER_DEVICE.count} x {PAPER_DEVICE.name} at "
          f"${price_per_hour(PAPER_DEVICE, load_prices(None)):.2f} per GPU-hour")
    print(f"{'task':36} {'steps':>6} {'shape':11} {'$':>4} {'GPU-h':>6} {'GPU-s/step':>10}  recipes")
    for row in paper_tasks():
        shapes = "; ".join(s.label() for s in row["shapes"])
        recipes_run = ", ".join(f"{name} {n}" + (f" ({how})" if how.startswith("one epoch") else "")
                                for name, (n, how) in row["steps"].items())
        print(f"{row['task']:36} {row['total_steps']:6d} {shapes:11} {row['train_usd']:4.0f} {row['gpu_hours']:6.0f} "
              f"{row['gpu_seconds_per_step']:10.1f}  {recipes_run}")
    print("shape: completions per optimizer step x completion cap (tokens). The paper rounds to the dollar: a $4 "
          "row's GPU-seconds per step are uncertain by up to 12.5%. One epoch: the recipe sets no max_steps and the "
          "paper names no stop step; a lower GPU-seconds per step than the smaller shapes' means the run stopped "
          "before an epoch.")


# ------------------------------------------------------------------ the model and tokenizer, built in-process

def tokenizer_corpus() -> list[str]:
    """The text the in-process tokenizer learns its merges from: the bundled LIMR and MATH-500 problems and the
    prompts around them, so the prompts a measurement sends split into about as many tokens as a real
    vocabulary's (a word, a digit or a symbol each) instead of one per byte."""
    from tina_sweep.trial.prompts import OPEN_R1_SYSTEM_PROMPT, TINA_MATH_QUERY_TEMPLATE

    problems = [row["problem"] for row in read_rows(bundled_path(TRAINING_SETS["limr"].location))]
    problems += [row["problem"] for row in read_rows(bundled_path(BENCHMARKS["math500"].location))]
    return problems + [OPEN_R1_SYSTEM_PROMPT, TINA_MATH_QUERY_TEMPLATE]


def build_full_vocab_tokenizer(vocab_size: int = PAPER_VOCAB_SIZE):
    """A byte-level BPE tokenizer with exactly ``vocab_size`` tokens, so every id a random model of the real
    vocabulary samples decodes: Qwen2's pre-tokenizer, merges learnt from ``tokenizer_corpus()``, the rest of the
    vocabulary filler strings of the byte alphabet that no merge produces. The tiny model's special tokens and
    chat template."""
    from itertools import product

    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tina_sweep.trial.tiny import CHAT_TEMPLATE, SPECIALS

    def byte_level(tokenizer: Tokenizer) -> Tokenizer:
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tokenizer.decoder = decoders.ByteLevel()
        return tokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    regular = vocab_size - len(SPECIALS)
    learnt = byte_level(Tokenizer(models.BPE()))
    learnt.train_from_iterator(tokenizer_corpus(), trainers.BpeTrainer(
        vocab_size=regular, initial_alphabet=alphabet, show_progress=False))
    state = json.loads(learnt.to_str())["model"]
    vocab: dict[str, int] = dict(state["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    for length in (2, 3):
        for letters in product(alphabet, repeat=length):
            if len(vocab) >= regular:
                break
            vocab.setdefault("".join(letters), len(vocab))
    tokenizer = byte_level(Tokenizer(models.BPE(vocab=vocab, merges=merges)))
    tokenizer.add_special_tokens(SPECIALS)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<|pad|>", unk_token="<|unk|>",
                                   bos_token=None, eos_token="<|im_end|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def random_paper_model(target: Path, body: dict | None = None, vocab_size: int = PAPER_VOCAB_SIZE) -> dict:
    """DeepSeek-R1-Distill-Qwen-1.5B's architecture with random bf16 weights and the tokenizer above, saved as a
    loadable folder (on the GPU when there is one). ``body`` overrides the shape (tests use a tiny one)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_full_vocab_tokenizer(vocab_size)
    config = Qwen2Config(vocab_size=vocab_size, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=None, torch_dtype="bfloat16",
                         **(body or PAPER_SHAPE))
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    parameters = sum(p.numel() for p in model.parameters())
    save_model_dir(model, tokenizer, target)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {"parameters": parameters, "vocab_size": vocab_size, "hidden_size": config.hidden_size,
            "layers": config.num_hidden_layers}


# ------------------------------------------------------------------ measuring

def recipe_trial_spec(recipe: str):
    """The paper-scale trial spec our studies resolve for ``recipe`` (analysis/recipe_parity.py's RECIPE_TRIALS)."""
    study, point = RECIPE_TRIALS[recipe][0]
    return trial_for(study, point).spec.model_copy(deep=True)


def measure_training(model_dir: Path, trial_dir: Path, recipe: str, steps: int, rollouts: str = "vllm",
                     completion_cap: int | None = None) -> dict:
    """Time ``steps`` GRPO optimizer steps of ``recipe``'s trial on the model at ``model_dir``, prompts from the
    bundled LIMR set (the other recipes' sets are hub-only). ``completion_cap`` (tests) shortens completions: the
    measured shape then no longer matches the recipe, and ``project`` uses it for nothing."""
    import shutil

    from tina_sweep.trial.cost import current_device, peak_memory_gb
    from tina_sweep.trial.train.trainer import train_trial

    spec = recipe_trial_spec(recipe)
    spec.model.name = str(model_dir)
    spec.dataset.name, spec.dataset.limit = "limr", None
    spec.algorithm.use_vllm = rollouts == "vllm"
    if completion_cap is not None:
        spec.algorithm.max_completion_length = completion_cap
    spec.training.stop_at_step = None  # (validated on assignment: before max_steps shrinks below it)
    spec.training.max_steps, spec.training.save_steps = steps, steps
    shutil.rmtree(trial_dir, ignore_errors=True)
    wall: list[float] = []
    last = [time.perf_counter()]

    def on_step(step: int, total: int, logs: dict) -> None:
        now = time.perf_counter()
        wall.append(now - last[0])
        last[0] = now

    started = time.perf_counter()
    outcome = train_trial(spec, trial_dir, on_step=on_step)
    lengths = [e["completions/mean_length"] for e in outcome.log_history if "completions/mean_length" in e]
    device = current_device()
    return {
        "recipe": recipe, "device": device.name, "device_kind": device.kind, "device_count": device.count,
        "rollouts": rollouts,
        "shape": {"completions_per_step": outcome.global_batch.get("completions_per_step"),
                  "completion_cap": spec.algorithm.max_completion_length},
        "recipe_shape": recipe_shape(recipe).__dict__,
        "lora_rank": spec.lora.rank, "prompts": "limr (bundled)", "steps": outcome.steps,
        "step_seconds": wall, "trl_step_time": [e["step_time"] for e in outcome.log_history if "step_time" in e],
        "completion_mean_length": lengths, "generated_tokens": outcome.generated_tokens,
        "wall_seconds": time.perf_counter() - started, "peak_memory_gb": peak_memory_gb(),
        "global_batch": outcome.global_batch,
    }


def measure_eval(model_dir: Path, prompts: int, max_tokens: int, recipe: str = "limr",
                 overrides: dict | None = None) -> dict:
    """One vLLM generation pass at the paper's evaluation settings (the recipe's trial's eval spec: bf16,
    max_model_len, memory share, temperature 0.6, top-p 0.95): ``prompts`` MATH-500 problems in Tina's math
    template, each answer exactly ``max_tokens`` tokens (EOS ignored). Times the engine start apart. ``overrides``
    (tests on vLLM's CPU build) replaces eval spec fields, such as the memory share."""
    import torch
    from vllm import LLM, SamplingParams

    from tina_sweep.trial.evaluate.vllm_backend import engine_kwargs, sampling_kwargs
    from tina_sweep.trial.prompts import TINA_MATH_QUERY_TEMPLATE
    from tina_sweep.trial.models import load_tokenizer

    spec = recipe_trial_spec(recipe).eval.model_copy(update=overrides or {})
    tokenizer = load_tokenizer(str(model_dir))
    questions = [row["problem"] for row in read_rows(bundled_path(BENCHMARKS["math500"].location))][:prompts]
    texts = [tokenizer.apply_chat_template(
        [{"role": "user", "content": TINA_MATH_QUERY_TEMPLATE.replace("{question}", q)}],
        tokenize=False, add_generation_prompt=True) for q in questions]
    started = time.perf_counter()
    llm = LLM(**engine_kwargs(str(model_dir), spec, [], seed=0, eager=not torch.cuda.is_available()))
    engine_seconds = time.perf_counter() - started
    sampling = {**sampling_kwargs(spec, 0), "max_tokens": max_tokens, "ignore_eos": True, "n": 1}
    started = time.perf_counter()
    outputs = llm.generate(texts, SamplingParams(**sampling))
    seconds = time.perf_counter() - started
    generated = sum(len(o.outputs[0].token_ids) for o in outputs)
    return {"prompts": len(texts), "max_tokens": max_tokens, "engine_start_seconds": engine_seconds,
            "seconds": seconds, "generated_tokens": generated, "tokens_per_second": generated / seconds,
            "prompt_tokens_mean": statistics.mean(len(o.prompt_token_ids) for o in outputs),
            "max_model_length": spec.max_model_length, "gpu_memory_utilization": spec.gpu_memory_utilization,
            "temperature": spec.temperature, "top_p": spec.top_p}


# ``measure --plumbing``: a 2-layer model of a 4,096-token vocabulary and 8-token completions, to check the phases
# run on a machine (CPU included) in seconds; its steps are not the recipe's, so it is never projected
PLUMBING_BODY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                 "num_key_value_heads": 1}
PLUMBING_VOCAB_SIZE = 4096
PLUMBING_COMPLETION_CAP = 8
PLUMBING_EVAL_OVERRIDES = {"max_model_length": 2048, "gpu_memory_utilization": 0.05}  # vLLM's CPU build: RAM share


def measure(work: Path, recipe: str, steps: int, eval_prompts: int, eval_tokens: int, rollouts: str,
            phase_timeout: float, plumbing: bool = False) -> Path:
    """Build the random paper-shape model (once per WORK), then time the recipe's steps and the evaluation pass,
    each in its own process (a clean GPU for each vLLM engine), each within ``phase_timeout`` seconds."""
    import importlib.metadata as metadata
    import subprocess

    work.mkdir(parents=True, exist_ok=True)
    model_dir, built = work / MODEL_DIR, work / "model.json"
    if (not built.exists() or not (model_dir / "config.json").exists()
            or json.loads(built.read_text()).get("plumbing", False) != plumbing):
        model = (random_paper_model(model_dir, PLUMBING_BODY, PLUMBING_VOCAB_SIZE) if plumbing
                 else random_paper_model(model_dir))
        built.write_text(json.dumps({**model, "plumbing": plumbing}))
    result = {"model": json.loads(built.read_text()),
              "versions": {name: _version(metadata, name) for name in ("torch", "transformers", "trl", "peft", "vllm")}}
    phases = [("train", [recipe, str(steps), rollouts])]
    if eval_prompts:
        phases.append(("eval", [recipe, str(eval_prompts), str(eval_tokens)]))
    for name, extra in phases:
        part = work / f"{name}-{recipe}.json"
        part.unlink(missing_ok=True)
        command = [sys.executable, __file__, f"{name}-phase", str(work), *extra] + (["--plumbing"] if plumbing else [])
        try:
            subprocess.run(command, check=True, timeout=phase_timeout)
        except subprocess.TimeoutExpired:
            sys.exit(f"paper_cost: the {name} phase ran past --phase-timeout ({phase_timeout:g} s)")
        except subprocess.CalledProcessError as error:
            sys.exit(f"paper_cost: the {name} phase failed (exit {error.returncode}; its output is above)")
        result[name] = json.loads(part.read_text())
        print(json.dumps({name: result[name]}), flush=True)
    out = work / f"measured-{recipe}.json"
    out.write_text(json.dumps(result, indent=2))
    return out


def _version(metadata, name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


# ------------------------------------------------------------------ projecting

def seconds_per_step(train: dict) -> float:
    """The median wall seconds of an optimizer step, the first (CUDA and engine warm-up) left out when there are
    more."""
    steps = train["step_seconds"][1:] or train["step_seconds"]
    return statistics.median(steps)


def project(measurements: list[dict], prices: dict[str, float]) -> dict:
    """Every Tina recipe (the 21 of tina_recipes.csv) and every training row of the paper's cost table at the
    measured seconds per step of its shape (a shape not measured is left unprojected), and one evaluation pass of
    the six benchmarks."""
    by_shape: dict[Shape, dict] = {}
    for measured in measurements:
        train = measured["train"]
        if train["rollouts"] == "vllm" and train["shape"] == train["recipe_shape"]:
            by_shape.setdefault(Shape(**train["shape"]), train)
    row_of = {name: task for task, names in TASK_RECIPES.items() for name in names}
    per_recipe = {}
    for name in load_recipes():
        steps, how = recipe_steps(name)
        shape = recipe_shape(name)
        found = {"steps": steps, "how": how, "shape": shape, "task": row_of.get(name), "projected": None}
        if shape in by_shape:
            train = by_shape[shape]
            device = _device(train)
            gpu_hours = steps * seconds_per_step(train) * device.count / 3600
            found["projected"] = {"device": f"{device.count} x {device.name}", "gpu_hours": gpu_hours,
                                  "usd": gpu_hours * price_per_hour(device, prices)}
        per_recipe[name] = found
    rows = []
    for task in paper_tasks():
        missing = [s for s in task["shapes"] if s not in by_shape]
        row = {**task, "projected": None}
        if not missing:
            parts = [per_recipe[name]["projected"] for name in task["recipes"]]
            gpu_hours, usd = sum(p["gpu_hours"] for p in parts), sum(p["usd"] for p in parts)
            row["projected"] = {"device": parts[0]["device"], "gpu_hours": gpu_hours, "usd": usd,
                                "gpu_hours_ratio": gpu_hours / task["gpu_hours"], "usd_ratio": usd / task["train_usd"]}
        else:
            row["missing"] = [s.label() for s in missing]
        rows.append(row)
    return {"recipes": per_recipe, "tasks": rows, "measured": by_shape, "eval": project_eval(measurements, prices)}


def project_eval(measurements: list[dict], prices: dict[str, float]) -> dict | None:
    """One evaluation pass (the six benchmarks, one answer each) at the measured tokens per second, every answer
    at the 32,768-token cap (what a random model writes: an upper bound on a real model's tokens, and a lower
    bound on its speed at long contexts if the pass was measured shorter); with the mean answer length at which
    the pass would cost the paper's one-checkpoint evaluation ($1, "Best Ckpt. in Best-Performance Task")."""
    timed = [m for m in measurements if m.get("eval")]
    if not timed:
        return None
    measured, device = timed[0]["eval"], _device(timed[0]["train"])
    problems = benchmark_problems()
    rate = price_per_hour(device, prices)
    gpu_hours = sum(problems.values()) * PAPER_EVAL_CAP / measured["tokens_per_second"] * device.count / 3600
    one_checkpoint = next(r["eval_usd"] for r in paper_cost_rows()
                          if r["task"] == "Total: Best Ckpt. in Best-Performance Task")
    break_even = one_checkpoint / rate / device.count * 3600 * measured["tokens_per_second"] / sum(problems.values())
    return {"device": f"{device.count} x {device.name}", "problems": problems, "measured": measured,
            "gpu_hours_at_cap": gpu_hours, "usd_at_cap": gpu_hours * rate, "paper_one_checkpoint_usd": one_checkpoint,
            "tokens_per_problem_for_paper_usd": break_even}


def _device(train: dict) -> DeviceInfo:
    return DeviceInfo(train["device"], train["device_kind"], train["device_count"])


def print_projection(projection: dict) -> None:
    print(f"{'recipe':34} {'shape':11} {'steps':>6} {'ours GPU-h':>10} {'ours $':>7}  cost-table row")
    for name, found in projection["recipes"].items():
        got = found["projected"]
        ours = f"{got['gpu_hours']:10.1f} {got['usd']:7.1f}" if got else f"{'-':>10} {'-':>7}"
        epoch = "*" if found["how"].startswith("one epoch") else ""
        print(f"{name:34} {found['shape'].label():11} {str(found['steps']) + epoch:>6} {ours}  "
              f"{found['task'] or '(latest era only: not in the paper)'}")
    print()
    print(f"{'task':36} {'shape':11} {'steps':>6} {'paper $':>7} {'paper GPU-h':>11} {'ours GPU-h':>10} "
          f"{'ours $':>7} {'$ ratio':>7} {'GPU-h ratio':>11}")
    for row in projection["tasks"]:
        epoch = any(how.startswith("one epoch") for _, how in row["steps"].values())
        head = (f"{row['task']:36} {'; '.join(s.label() for s in row['shapes']):11} "
                f"{str(row['total_steps']) + ('*' if epoch else ''):>6} {row['train_usd']:7.0f} {row['gpu_hours']:11.0f}")
        got = row["projected"]
        if got:
            print(f"{head} {got['gpu_hours']:10.1f} {got['usd']:7.1f} {got['usd_ratio']:7.2f} "
                  f"{got['gpu_hours_ratio']:11.2f}")
        else:
            print(f"{head}  not measured: shape {', '.join(row['missing'])}")
    print("* one epoch (the recipe sets no max_steps): the paper's run was shorter, so this row's projection is an "
          "upper bound (docs/gpu.md)")
    for shape, train in projection["measured"].items():
        print(f"ours: {shape.label()} measured on {train['device_count']} x {train['device']}: "
              f"{seconds_per_step(train):.1f} s a step (median of {len(train['step_seconds'][1:]) or 1}); paper: "
              f"{PAPER_DEVICE.count} x {PAPER_DEVICE.name}")
    ev = projection["eval"]
    if ev:
        m = ev["measured"]
        print(f"evaluation pass ({sum(ev['problems'].values()):,} problems of {', '.join(ev['problems'])}): measured "
              f"{m['tokens_per_second']:,.0f} tokens/s ({m['prompts']} prompts x {m['max_tokens']:,} tokens); every "
              f"answer at the {PAPER_EVAL_CAP:,}-token cap: {ev['gpu_hours_at_cap']:.2f} GPU-hours, "
              f"${ev['usd_at_cap']:.2f} on {ev['device']}; the paper's one-checkpoint evaluation "
              f"(${ev['paper_one_checkpoint_usd']:.0f}) buys {ev['tokens_per_problem_for_paper_usd']:,.0f} tokens per "
              f"problem at this speed")


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("paper", help="the paper's cost table, its recipes' steps and implied GPU-seconds per step")
    run = sub.add_parser("measure", help="time a recipe's steps and an evaluation pass on this GPU")
    run.add_argument("work", type=Path)
    run.add_argument("--recipe", default="limr", choices=sorted({r for names in TASK_RECIPES.values() for r in names}))
    run.add_argument("--steps", type=positive, default=3, help="optimizer steps to time (the first is left out)")
    run.add_argument("--eval-prompts", type=int, default=128, help="0: no evaluation pass")
    run.add_argument("--eval-tokens", type=int, default=8192, help="tokens generated per answer (EOS ignored)")
    run.add_argument("--rollouts", choices=("vllm", "transformers"), default="vllm",
                     help="transformers: measured, but never projected (the recipes roll out with vLLM)")
    run.add_argument("--phase-timeout", type=float, default=600, help="seconds each phase may run")
    run.add_argument("--plumbing", action="store_true",
                     help="a 2-layer model and 8-token completions: check the phases run here; never projected")
    train_phase = sub.add_parser("train-phase")  # measure's own processes
    train_phase.add_argument("work", type=Path)
    train_phase.add_argument("recipe")
    train_phase.add_argument("steps", type=int)
    train_phase.add_argument("rollouts")
    train_phase.add_argument("--plumbing", action="store_true")
    eval_phase = sub.add_parser("eval-phase")
    eval_phase.add_argument("work", type=Path)
    eval_phase.add_argument("recipe")
    eval_phase.add_argument("prompts", type=int)
    eval_phase.add_argument("tokens", type=int)
    eval_phase.add_argument("--plumbing", action="store_true")
    proj = sub.add_parser("project", help="project the cost table from measure's files")
    proj.add_argument("measured", type=Path, nargs="+")
    proj.add_argument("--prices", type=Path, help="JSON {device name prefix: $ per device-hour}")
    args = parser.parse_args(argv)
    if args.command == "paper":
        print_paper()
    elif args.command == "measure":
        written = measure(args.work, args.recipe, args.steps, args.eval_prompts, args.eval_tokens, args.rollouts,
                          args.phase_timeout, args.plumbing)
        print(f"wrote {written}")
    elif args.command == "train-phase":
        measured = measure_training(args.work / MODEL_DIR, args.work / f"trial-{args.recipe}", args.recipe, args.steps,
                                    args.rollouts, PLUMBING_COMPLETION_CAP if args.plumbing else None)
        (args.work / f"train-{args.recipe}.json").write_text(json.dumps(measured, indent=2))
    elif args.command == "eval-phase":
        measured = measure_eval(args.work / MODEL_DIR, args.prompts, args.tokens, args.recipe,
                                PLUMBING_EVAL_OVERRIDES if args.plumbing else None)
        (args.work / f"eval-{args.recipe}.json").write_text(json.dumps(measured, indent=2))
    else:
        try:
            prices = load_prices(args.prices)
        except ValueError as error:
            sys.exit(f"--prices {args.prices}: {error}")
        print_projection(project([json.loads(p.read_text()) for p in args.measured], prices))


if __name__ == "__main__":
    main()
