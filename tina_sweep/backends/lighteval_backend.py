"""Evaluation by the paper's protocol: merge the adapter into the base model, then LightEval's vLLM backend.

Tina evaluated each checkpoint by merging it (PEFT ``merge_and_unload``, saved to a folder) and running
``lighteval vllm`` on that folder with temperature 0.6, top-p 0.95 and up to 32,768 new tokens. Here, for
LightEval 0.13:

- AIME24, AIME25, MATH-500 and GPQA-Diamond are LightEval's built-in tasks (``aime24``, ``aime25``,
  ``math_500``, ``gpqa:diamond``: loaded from the hub when LightEval runs, scored by LightEval's metrics).
- AMC23 and Minerva are custom tasks (``tina_amc23``, ``tina_minerva``) in a module we write next to the run
  (``custom_tasks_module_text``), reading our bundled files offline: they are copied as ``train.jsonl`` into
  folders that ``datasets.load_dataset(path=folder, name="default")`` -- the call LightEval makes -- reads with no
  network. Their user turn is Tina's math template, their metric LightEval's ``pass_at_k_math`` (k = 1 over n
  samples), as its built-in AIME tasks.

LightEval runs in its own environment (it pins latex2sympy2_extended 1.0.6, math-verify 0.9 needs newer): set
``TINA_LIGHTEVAL_PYTHON`` to that environment's python; by default the current interpreter is used. The merged
folder is per adapter (LightEval caches samples under the model path, keyed on the config, not the weights).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tina_sweep.config import EvalSpec, ModelSpec, PromptSpec
from tina_sweep.data import BENCHMARKS, load_benchmark
from tina_sweep.evaluate import BenchmarkResult

# our benchmark name -> LightEval task name (the custom ones are defined by custom_tasks_module_text)
BUILTIN_TASKS = {"aime24": "aime24", "aime25": "aime25", "math500": "math_500", "gpqa_diamond": "gpqa:diamond"}
CUSTOM_TASKS = {"amc23": "tina_amc23", "minerva": "tina_minerva"}


def lighteval_tasks(spec: EvalSpec) -> list[str]:
    """LightEval task names for the spec's benchmarks (zero-shot)."""
    names = []
    for benchmark in spec.benchmarks:
        if benchmark.path is not None or benchmark.limit is not None:
            raise ValueError(f"eval.benchmarks: {benchmark.name}: the lighteval backend runs whole catalog "
                             "benchmarks (no path, no limit)")
        task = BUILTIN_TASKS.get(benchmark.name) or CUSTOM_TASKS.get(benchmark.name)
        if task is None:
            raise ValueError(f"eval.benchmarks: {benchmark.name}: no LightEval task (supported: "
                             f"{', '.join(list(BUILTIN_TASKS) + list(CUSTOM_TASKS))})")
        if task in BUILTIN_TASKS.values() and spec.samples_per_problem != 1:
            raise ValueError(f"eval.samples_per_problem: LightEval's built-in {task} scores one sample per "
                             f"problem, got {spec.samples_per_problem}")
        names.append(task)
    return names


def task_argument(spec: EvalSpec) -> str:
    """The TASKS argument of ``lighteval vllm``: ``task|fewshot`` items joined by commas."""
    return ",".join(f"{task}|0" for task in lighteval_tasks(spec))


def model_args(model_path: Path, spec: EvalSpec, seed: int, data_parallel_size: int = 1) -> str:
    """LightEval 0.13's VLLMModelConfig as its ``key=value,...`` string (``generation_parameters={k:v,...}``)."""
    path = str(Path(model_path).resolve())
    if "," in path or "=" in path:
        raise ValueError(f"{path}: LightEval's model-args parser splits on ',' and '=': use a plain path")
    generation = {"max_new_tokens": spec.max_new_tokens, "temperature": spec.temperature, "top_p": spec.top_p,
                  "seed": seed}
    if spec.top_k:
        generation["top_k"] = spec.top_k
    parts = [f"model_name={path}", f"dtype={spec.dtype}", f"data_parallel_size={data_parallel_size}",
             f"gpu_memory_utilization={spec.gpu_memory_utilization}", f"seed={seed}"]
    if spec.max_model_length is not None:
        parts.append(f"max_model_length={spec.max_model_length}")
    parts.append("generation_parameters={" + ",".join(f"{k}:{v}" for k, v in generation.items()) + "}")
    return ",".join(parts)


def write_custom_data(data_dir: Path) -> dict[str, Path]:
    """Our bundled AMC23 and Minerva as ``<data_dir>/<task>/train.jsonl`` rows {problem, answers}."""
    folders = {}
    for ours, task in CUSTOM_TASKS.items():
        folder = data_dir / task
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "train.jsonl", "w") as handle:
            for problem in load_benchmark(_catalog_spec(ours)):
                handle.write(json.dumps({"problem": problem.question, "answers": list(problem.answers)}) + "\n")
        folders[task] = folder
    return folders


def _catalog_spec(name: str):
    from tina_sweep.config import DataSpec

    return DataSpec(name=name)


CUSTOM_TASKS_TEMPLATE = '''"""LightEval custom tasks written by tina_sweep.backends.lighteval_backend: AMC23, Minerva (bundled)."""

from lighteval.metrics.metrics import Metrics
from lighteval.tasks.lighteval_task import LightevalTaskConfig
from lighteval.tasks.requests import Doc

# Tina's math user turn (scripts/eval/run_eval_custom_tasks.py), the same as LightEval's AIME tasks
MATH_QUERY_TEMPLATE = {template!r}


def tina_math_prompt(line, task_name: str = None):
    answers = [str(a).strip() for a in line["answers"]]
    return Doc(task_name=task_name, query=MATH_QUERY_TEMPLATE.replace("{{question}}", line["problem"]),
               choices=answers, gold_index=list(range(len(answers))))


def _task(name, folder):
    return LightevalTaskConfig(
        name=name,
        prompt_function=tina_math_prompt,
        hf_repo=folder,
        hf_subset="default",
        hf_avail_splits=["train"],
        evaluation_splits=["train"],
        few_shots_split=None,
        few_shots_select=None,
        generation_size={generation_size},
        metrics=[Metrics.pass_at_k_math(sample_params={{"k": 1, "n": {n}}})],
        version=1,
    )


TASKS_TABLE = [
{tasks}
]
'''


def custom_tasks_module_text(folders: dict[str, Path], spec: EvalSpec) -> str:
    """The custom-task module LightEval imports (``--custom-tasks``)."""
    from tina_sweep.prompts import TINA_MATH_QUERY_TEMPLATE

    tasks = "\n".join(f"    _task({name!r}, {str(folder.resolve())!r})," for name, folder in folders.items())
    return CUSTOM_TASKS_TEMPLATE.format(template=TINA_MATH_QUERY_TEMPLATE, generation_size=spec.max_new_tokens,
                                        n=spec.samples_per_problem, tasks=tasks)


def lighteval_command(python: str, model_path: Path, spec: EvalSpec, seed: int, custom_tasks: Path, output_dir: Path,
                      data_parallel_size: int = 1) -> list[str]:
    """``python -m lighteval vllm MODEL_ARGS TASKS --custom-tasks FILE --output-dir DIR --save-details``."""
    return [python, "-m", "lighteval", "vllm", model_args(model_path, spec, seed, data_parallel_size),
            task_argument(spec), "--custom-tasks", str(custom_tasks), "--output-dir", str(output_dir),
            "--save-details"]


def merge_adapter(model: ModelSpec, adapter_dir: Path, merged_dir: Path, dtype: str = "bfloat16") -> Path:
    """The base model with the adapter merged in (PEFT merge_and_unload), saved with its tokenizer to
    ``merged_dir``; reused when ``merged_dir`` already holds this adapter's merge."""
    marker = merged_dir / "tina_merged_from.json"
    stamp = {"model": model.name, "adapter": str(Path(adapter_dir).resolve()), "dtype": dtype,
             "adapter_mtime": (Path(adapter_dir) / "adapter_config.json").stat().st_mtime}
    if marker.is_file() and json.loads(marker.read_text()) == stamp:
        return merged_dir
    from peft import PeftModel

    from tina_sweep.train import load_model_and_tokenizer

    base, tokenizer = load_model_and_tokenizer(model.name, dtype)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    partial = merged_dir.with_name(merged_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    merged.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    (partial / marker.name).write_text(json.dumps(stamp))
    shutil.rmtree(merged_dir, ignore_errors=True)
    partial.rename(merged_dir)
    return merged_dir


def _task_of(key: str) -> str:
    """``aime24|0`` / ``custom|tina_amc23|0`` / ``lighteval:aime24:0`` -> the task name."""
    parts = key.replace(":0", "|0").split("|")
    parts = [p for p in parts if p and not p.isdigit() and p not in ("custom", "lighteval")]
    return parts[-1] if parts else key


def _pass_at_1(metrics: dict) -> float | None:
    """The pass@1-like metric of a task's results block (names carry their sample parameters in 0.13)."""
    ranked = sorted(metrics, key=lambda name: (not name.startswith(("pass@k", "pass@1")), "k=1" not in name, name))
    for name in ranked:
        if name.endswith("_stderr"):
            continue
        if name.startswith(("pass@", "extractive_match", "gpqa_pass@")) and isinstance(metrics[name], (int, float)):
            return float(metrics[name])
    return None


def parse_results(results: dict) -> dict[str, float]:
    """Our benchmark name -> Pass@1 from a LightEval ``results_*.json`` payload."""
    by_task = {_task_of(key): block for key, block in results.get("results", {}).items() if key != "all"}
    ours = {**{v: k for k, v in BUILTIN_TASKS.items()}, **{v: k for k, v in CUSTOM_TASKS.items()}}
    found = {}
    for task, block in by_task.items():
        value = _pass_at_1(block)
        if task in ours and value is not None:
            found[ours[task]] = value
    return found


def latest_results_file(output_dir: Path) -> Path:
    files = sorted((output_dir / "results").rglob("results_*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"{output_dir}: LightEval wrote no results_*.json")
    return files[-1]


def evaluate_with_lighteval(model: ModelSpec, prompt: PromptSpec, spec: EvalSpec, adapter_dir: Path | None,
                            out_dir: Path, seed: int,
                            on_progress: Callable[[str, int, int], None] | None = None) -> list[BenchmarkResult]:
    """Merge (when there is an adapter), run LightEval in a subprocess, read its Pass@1 per benchmark. The
    prompt is LightEval's (its tasks build it), not ``prompt``."""
    import torch

    from tina_sweep.models import resolve_model

    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "lighteval"
    model_path = Path(resolve_model(model.name)) if adapter_dir is None else \
        merge_adapter(model, adapter_dir, work / "merged", spec.dtype)
    folders = write_custom_data(work / "data")
    module = work / "tina_custom_tasks.py"
    module.write_text(custom_tasks_module_text(folders, spec))
    python = os.environ.get("TINA_LIGHTEVAL_PYTHON", sys.executable)
    gpus = max(torch.cuda.device_count(), 1)
    command = lighteval_command(python, model_path, spec, seed, module, work / "output", gpus)
    (work / "command.json").write_text(json.dumps(command, indent=2))
    started = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    (work / "lighteval.log").write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        raise RuntimeError(f"lighteval exited {run.returncode}: {(run.stderr or run.stdout).strip()[-400:]}")
    seconds = time.perf_counter() - started
    scores = parse_results(json.loads(latest_results_file(work / "output").read_text()))
    results = []
    for benchmark in spec.benchmarks:
        if benchmark.name not in scores:
            raise RuntimeError(f"lighteval results have no score for {benchmark.name}")
        count = len(load_benchmark(benchmark)) if BENCHMARKS[benchmark.name].kind == "bundled" else 0
        results.append(BenchmarkResult(benchmark.name, scores[benchmark.name], count, spec.samples_per_problem, 0,
                                       seconds / len(spec.benchmarks)))
        if on_progress:
            on_progress(benchmark.name, count, count)
    return results
