"""Evaluation by the paper's protocol: merge the adapter into the base model, then LightEval with Tina's tasks.

Tina evaluated each checkpoint by merging it (PEFT ``merge_and_unload``, saved to a folder) and running
``lighteval vllm`` on that folder with its own custom tasks (scripts/eval/run_eval_custom_tasks.py), the model's
chat template, temperature 0.6, top-p 0.95 and up to 32,768 new tokens. Here, for LightEval 0.13:

- Every benchmark is a custom task ``tina_<benchmark>`` in a module we write next to the run
  (``custom_tasks_module_text``), built from Tina's own words (``data/reference/tina_source/lighteval.json``):
  its math (or GPQA) user turn, the dataset field its prompt function takes the gold from, and its
  extractive-match metric (one sample per problem; the parameters are Tina's, passed to LightEval 0.13's
  ``MultilingualExtractiveMatchMetric``). Each task reads a local folder (``train.jsonl``) that we write from
  our bundled files -- no hub at run time -- holding the first ``limit`` problems when a limit is set.
  GPQA-Diamond (gated) is fetched from the hub by our loader first, its option order seeded (Tina's is not).
- The model settings go to LightEval as a YAML file (``model_parameters``), so paths may hold ``=`` and ``,``
  (trial ids do), which its ``key=value,...`` string cannot.
- The engine: ``lighteval vllm`` on a CUDA machine (the paper's), ``lighteval accelerate`` (transformers) on CPU;
  ``TINA_LIGHTEVAL_ENGINE=vllm|accelerate`` chooses explicitly.
- Pass@1 is read from LightEval's ``results_*.json`` and checked against its per-sample details (parquet),
  which become our per-problem outcomes.

LightEval runs in its own environment (it pins latex2sympy2_extended 1.0.6, math-verify 0.9 needs newer): set
``TINA_LIGHTEVAL_PYTHON`` to that environment's python; by default the current interpreter is used.
"""

from __future__ import annotations

import ast
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tina_sweep.trial.spec import EvalSpec, ModelSpec, PromptSpec
from tina_sweep.trial.datasets import BENCHMARKS, _load_hub, bundled_path, load_benchmark, read_placed_rows
from tina_sweep.trial.evaluate.scoring import BenchmarkResult
from tina_sweep.trial.tina_source import quote

# our benchmark name -> the variable of Tina's task in run_eval_custom_tasks.py
TINA_TASKS = {"aime24": "aime24", "aime25": "aime25", "amc23": "amc23", "math500": "math_500",
              "minerva": "minerva", "gpqa_diamond": "gpqa_diamond"}
ENGINES = ("vllm", "accelerate")
METRIC_NAME = "extractive_match"  # what LightEval names an extractive-match metric in its results and details


def task_name(benchmark: str) -> str:
    """The LightEval task name of one of our benchmarks (``tina_`` + name: LightEval refuses custom tasks named
    like its built-in ones)."""
    return f"tina_{benchmark}"


@dataclass(frozen=True)
class TinaTask:
    """What Tina's LightEval task for a benchmark says: its prompt function, metric, fields and sizes."""

    benchmark: str
    prompt_function: str
    metric: str
    question_field: str | None  # the row field posed as ``{Question}`` (math tasks); None for GPQA
    gold_field: str | None  # the row field taken as the gold (math tasks); None for GPQA
    generation_size: int


def _call(text: str) -> ast.Call:
    """The call on the right of the single assignment (or the single statement) in ``text``."""
    node = ast.parse(text).body[0]
    value = node.value if isinstance(node, (ast.Assign, ast.Expr)) else None
    if not isinstance(value, ast.Call):
        raise ValueError(f"expected a call in {text.splitlines()[0]!r}")
    return value


def _keywords(call: ast.Call) -> dict[str, ast.expr]:
    return {k.arg: k.value for k in call.keywords}


def _line_field(node: ast.expr) -> str:
    """``line["x"]`` -> ``x``."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    raise ValueError(f"expected line[\"field\"], got {ast.unparse(node)}")


def tina_task(benchmark: str) -> TinaTask:
    """Tina's task for ``benchmark``, read from the quoted task config and prompt function."""
    if benchmark not in TINA_TASKS:
        raise ValueError(f"eval.benchmarks: {benchmark}: no LightEval task (supported: {', '.join(TINA_TASKS)})")
    config = _keywords(_call(quote(f"lighteval.task.{TINA_TASKS[benchmark]}").text))
    function = config["prompt_function"].id
    metric = config["metric"].elts[0].id
    size = ast.literal_eval(config["generation_size"])
    body = ast.parse(quote(f"lighteval.prompt.{function}").text).body[0].body
    doc = _keywords(body[-1].value)  # return Doc(...)
    if function == "gpqa_prompt_fn":
        return TinaTask(benchmark, function, metric, None, None, size)
    question = _line_field(_keywords(doc["query"])["Question"])  # MATH_QUERY_TEMPLATE.format(Question=line[...])
    gold = _line_field(doc["choices"].elts[0])  # choices=[line[...]]
    return TinaTask(benchmark, function, metric, question, gold, size)


def template(key: str) -> str:
    """A quoted ``NAME = \"\"\"...\"\"\".strip()`` template, as Python evaluates it."""
    node = ast.parse(quote(key).text).body[0].value
    return ast.literal_eval(node.func.value).strip()


def metric_arguments(metric: str) -> str:
    """The keyword arguments of Tina's ``multilingual_extractive_match_metric(...)`` call, as source text."""
    return ", ".join(ast.unparse(k) for k in _call(quote(f"lighteval.metric.{metric}").text).keywords)


def lighteval_tasks(spec: EvalSpec) -> list[str]:
    """LightEval task names for the spec's benchmarks; one sample per problem, as Tina's tasks score."""
    if spec.samples_per_problem != 1:
        raise ValueError(f"eval.samples_per_problem: the lighteval backend scores one sample per problem, as "
                         f"Tina's tasks do, got {spec.samples_per_problem}")
    names = []
    for benchmark in spec.benchmarks:
        if benchmark.path is not None:
            raise ValueError(f"eval.benchmarks: {benchmark.name}: the lighteval backend runs catalog benchmarks "
                             "(no path)")
        tina_task(benchmark.name)  # raises for a benchmark Tina has no task for
        names.append(task_name(benchmark.name))
    return names


def task_argument(spec: EvalSpec) -> str:
    """The TASKS argument of ``lighteval``: ``task|fewshot`` items joined by commas (zero-shot)."""
    return ",".join(f"{task}|0" for task in lighteval_tasks(spec))


def lighteval_engine(cuda: bool | None = None) -> str:
    """``TINA_LIGHTEVAL_ENGINE`` when set, else ``vllm`` with a CUDA GPU (``cuda``; None: ask torch) and
    ``accelerate`` (LightEval's transformers model) without."""
    chosen = os.environ.get("TINA_LIGHTEVAL_ENGINE", "").strip()
    if chosen:
        if chosen not in ENGINES:
            raise ValueError(f"TINA_LIGHTEVAL_ENGINE: expected one of {', '.join(ENGINES)}, got {chosen!r}")
        return chosen
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    return "vllm" if cuda else "accelerate"


def model_parameters(model_path: Path, spec: EvalSpec, seed: int, engine: str, cache_dir: Path,
                     data_parallel_size: int = 1) -> dict[str, Any]:
    """LightEval 0.13's model config (VLLMModelConfig or TransformersModelConfig) for the ``model_parameters`` of
    its YAML file. The chat template is forced on (Tina's ``--use-chat-template``); samples are cached per run."""
    generation: dict[str, Any] = {"temperature": spec.temperature, "top_p": spec.top_p}
    if engine == "vllm":  # as Tina; LightEval 0.13's transformers model takes max_new_tokens as the prompt's
        generation.update(max_new_tokens=spec.max_new_tokens, seed=seed)  # budget too: there the task's size rules
    if spec.top_k:
        generation["top_k"] = spec.top_k
    parameters: dict[str, Any] = {"model_name": str(Path(model_path).resolve()), "dtype": spec.dtype,
                                  "override_chat_template": True, "cache_dir": str(Path(cache_dir).resolve())}
    if engine == "vllm":
        parameters.update(data_parallel_size=data_parallel_size,
                          gpu_memory_utilization=spec.gpu_memory_utilization, seed=seed)
        if spec.max_model_length is not None:
            parameters["max_model_length"] = spec.max_model_length
    elif engine == "accelerate":
        parameters["batch_size"] = spec.batch_size
        if spec.max_model_length is not None:
            parameters["max_length"] = spec.max_model_length
    else:
        raise ValueError(f"LightEval engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    parameters["generation_parameters"] = generation
    return parameters


def write_model_config(path: Path, parameters: dict[str, Any]) -> Path:
    """The YAML file LightEval reads as MODEL_ARGS (its ``*.yaml`` form)."""
    import yaml

    path.write_text(yaml.safe_dump({"model_parameters": parameters}, sort_keys=False, allow_unicode=True))
    return path


def task_rows(benchmark, seed: int) -> list[dict[str, Any]]:
    """The rows of one benchmark under the field names Tina's prompt function reads (the first ``limit``)."""
    task = tina_task(benchmark.name)
    source = BENCHMARKS[benchmark.name]
    if source.kind == "hub":  # GPQA-Diamond: its gold's place among the options, seeded
        raw = _load_hub(source)
        rng = random.Random(seed)
        rows = [{"Question": r["Question"], "Correct Answer": r["Correct Answer"],
                 "Incorrect Answer 1": r["Incorrect Answer 1"], "Incorrect Answer 2": r["Incorrect Answer 2"],
                 "Incorrect Answer 3": r["Incorrect Answer 3"], "gold_index": rng.randint(0, 3)} for r in raw]
    else:
        raw, _ = read_placed_rows(bundled_path(source.location))
        rows = [{task.question_field: r[source.question_field], task.gold_field: str(r[task.gold_field])}
                for r in raw]
    return rows[: benchmark.limit] if benchmark.limit else rows


def write_task_data(spec: EvalSpec, data_dir: Path, seed: int) -> dict[str, Path]:
    """Each benchmark's rows as ``<data_dir>/<task>/train.jsonl`` (what ``datasets.load_dataset(folder)`` reads)."""
    folders = {}
    for benchmark in spec.benchmarks:
        folder = data_dir / task_name(benchmark.name)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "train.jsonl", "w") as handle:
            for row in task_rows(benchmark, seed):
                handle.write(json.dumps(row) + "\n")
        folders[benchmark.name] = folder
    return folders


CUSTOM_TASKS_TEMPLATE = '''"""LightEval custom tasks written by tina_sweep.trial.evaluate.lighteval_backend from Tina's
scripts/eval/run_eval_custom_tasks.py (LightEval 0.13 API), reading local data folders."""

import numpy as np

from lighteval.metrics.dynamic_metrics import MultilingualExtractiveMatchMetric
from lighteval.metrics.utils.extractive_match_utils import (
    ExprExtractionConfig, IndicesExtractionConfig, LatexExtractionConfig)
from lighteval.metrics.utils.metric_utils import SampleLevelMetric
from lighteval.tasks.lighteval_task import LightevalTaskConfig
from lighteval.tasks.requests import Doc, SamplingMethod
from lighteval.utils.language import Language

MATH_QUERY_TEMPLATE = {math_template!r}
GPQA_QUERY_TEMPLATE = {gpqa_template!r}


def extractive_match(**arguments):
    """Tina's multilingual_extractive_match_metric(...) as LightEval 0.13 builds its own (expr_gold_metric)."""
    return SampleLevelMetric(metric_name={metric_name!r},
                             sample_level_fn=MultilingualExtractiveMatchMetric(**arguments),
                             category=SamplingMethod.GENERATIVE, corpus_level_fn=np.mean, higher_is_better=True)


METRICS = {{
{metrics}
}}


def math_prompt(question_field, gold_field):
    """Tina's math prompt functions: the question in MATH_QUERY_TEMPLATE, one gold."""
    def prompt(line, task_name: str = None):
        return Doc(task_name=task_name, query=MATH_QUERY_TEMPLATE.format(Question=line[question_field]),
                   choices=[line[gold_field]], gold_index=0)
    return prompt


def gpqa_prompt(line, task_name: str = None):
    """Tina's gpqa_prompt_fn with the gold's place chosen (seeded) when the data was written."""
    gold_index = line["gold_index"]
    choices = [line["Incorrect Answer 1"], line["Incorrect Answer 2"], line["Incorrect Answer 3"]]
    choices.insert(gold_index, line["Correct Answer"])
    query = GPQA_QUERY_TEMPLATE.format(A=choices[0], B=choices[1], C=choices[2], D=choices[3],
                                       Question=line["Question"])
    return Doc(task_name=task_name, query=query, choices=["A", "B", "C", "D"], gold_index=gold_index,
               instruction=query)


def task(name, folder, prompt_function, metric, generation_size):
    return LightevalTaskConfig(name=name, prompt_function=prompt_function, hf_repo=folder, hf_subset="default",
                               hf_avail_splits=["train"], evaluation_splits=["train"], few_shots_split=None,
                               few_shots_select=None, generation_size=generation_size, metrics=[METRICS[metric]],
                               stop_sequence=[], version=1)


TASKS_TABLE = [
{tasks}
]
'''


def custom_tasks_module_text(folders: dict[str, Path], spec: EvalSpec) -> str:
    """The custom-task module LightEval imports (``--custom-tasks``): one task per benchmark in ``folders``.
    ``generation_size`` is ``eval.max_new_tokens`` (Tina's 32,768 at paper scale)."""
    tasks = {name: tina_task(name) for name in folders}
    metrics = "\n".join(f"    {m!r}: extractive_match({metric_arguments(m)}),"
                        for m in sorted({t.metric for t in tasks.values()}))
    lines = []
    for name, folder in folders.items():
        task = tasks[name]
        prompt = "gpqa_prompt" if task.question_field is None else \
            f"math_prompt({task.question_field!r}, {task.gold_field!r})"
        lines.append(f"    task({task_name(name)!r}, {str(folder.resolve())!r}, {prompt}, {task.metric!r}, "
                     f"{spec.max_new_tokens}),")
    return CUSTOM_TASKS_TEMPLATE.format(math_template=template("lighteval.math_query_template"),
                                        gpqa_template=template("lighteval.gpqa_query_template"),
                                        metric_name=METRIC_NAME, metrics=metrics, tasks="\n".join(lines))


def lighteval_command(python: str, engine: str, model_config: Path, spec: EvalSpec, custom_tasks: Path,
                      output_dir: Path) -> list[str]:
    """``python -m lighteval ENGINE MODEL_CONFIG.yaml TASKS --custom-tasks FILE --output-dir DIR --save-details``."""
    return [python, "-m", "lighteval", engine, str(model_config), task_argument(spec), "--custom-tasks",
            str(custom_tasks), "--output-dir", str(output_dir), "--save-details"]


def merge_adapter(model: ModelSpec, adapter_dir: Path, merged_dir: Path, dtype: str = "bfloat16") -> Path:
    """The base model with the adapter merged in (PEFT merge_and_unload), saved with its tokenizer to
    ``merged_dir``; reused when ``merged_dir`` already holds this adapter's merge."""
    marker = merged_dir / "tina_merged_from.json"
    stamp = {"model": model.name, "adapter": str(Path(adapter_dir).resolve()), "dtype": dtype,
             "adapter_mtime": (Path(adapter_dir) / "adapter_config.json").stat().st_mtime}
    if marker.is_file() and json.loads(marker.read_text()) == stamp:
        return merged_dir
    from peft import PeftModel

    from tina_sweep.trial.models import load_model_and_tokenizer

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


def parse_results(results: dict) -> dict[str, float]:
    """Our benchmark name -> Pass@1 from a LightEval ``results_*.json`` payload (``results`` ->
    ``tina_<benchmark>|0`` -> ``extractive_match``)."""
    found = {}
    for key, block in results.get("results", {}).items():
        name = key.split("|")[0]
        if name.startswith("tina_") and METRIC_NAME in block:
            found[name.removeprefix("tina_")] = float(block[METRIC_NAME])
    return found


def latest_results_file(output_dir: Path) -> Path:
    files = sorted((output_dir / "results").rglob("results_*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"{output_dir}: LightEval wrote no results_*.json")
    return files[-1]


def details_file(output_dir: Path, benchmark: str) -> Path:
    """The newest per-sample details of one task (``details/<model>/<date>/details_<task>|0_<date>.parquet``)."""
    files = sorted((output_dir / "details").rglob(f"details_{task_name(benchmark)}|0_*.parquet"),
                   key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"{output_dir}: LightEval wrote no details for {task_name(benchmark)}")
    return files[-1]


def outcomes_from_details(path: Path, ids: list[str]) -> list[dict[str, Any]]:
    """Our per-problem outcomes, in benchmark order, from one LightEval details file (``ids``: our problem ids by
    row): the gold, LightEval's score of the sample, its extracted answers and the completion."""
    import pyarrow.parquet as pq

    outcomes = []
    for row in sorted(pq.read_table(path).to_pylist(), key=lambda r: int(r["doc"]["id"])):
        doc, response = row["doc"], row["model_response"]
        specific = doc.get("specific") or {}
        score = float(row["metric"][METRIC_NAME])
        outcomes.append({"id": ids[int(doc["id"])], "answers": list(doc["choices"]), "gold_index": doc["gold_index"],
                         "correct": [score == 1.0], "success_rate": score,
                         "extracted": specific.get("extracted_predictions"), "completions": list(response["text"]),
                         "tokens": sum(len(tokens) for tokens in response["output_tokens"])})
    return outcomes


def failure_reason(log: str) -> str:
    """One line on why LightEval failed, from its output."""
    if "tinyBenchmarks.pkl" in log:  # LightEval 0.13 imports every task module; this one downloads at import
        return ("it downloads tinyBenchmarks.pkl when it lists its tasks and cannot here: create an empty "
                "lighteval/tasks/tasks/tinyBenchmarks.pkl in its environment (docs/gpu.md)")
    lines = [line.strip() for line in log.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def evaluate_with_lighteval(model: ModelSpec, prompt: PromptSpec, spec: EvalSpec, adapter_dir: Path | None,
                            out_dir: Path, seed: int,
                            on_progress: Callable[[str, int, int], None] | None = None) -> list[BenchmarkResult]:
    """Merge (when there is an adapter), run LightEval in a subprocess, read its Pass@1 per benchmark and check it
    against the per-sample details. The prompt is Tina's (its tasks build it), not ``prompt``."""
    import torch

    from tina_sweep.trial.models import resolve_model

    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "lighteval"
    engine = lighteval_engine()
    task_argument(spec)  # a spec LightEval cannot run fails here, before the merge
    if adapter_dir is None:
        model_path = Path(resolve_model(model.name))
        if not model_path.is_dir():  # a hub id: a local copy, since LightEval runs offline
            from huggingface_hub import snapshot_download

            model_path = Path(snapshot_download(str(model_path)))
    else:
        model_path = merge_adapter(model, adapter_dir, work / "merged", spec.dtype)
    module = work / "tina_custom_tasks.py"
    module.write_text(custom_tasks_module_text(write_task_data(spec, work / "data", seed), spec))
    output = work / "output"
    shutil.rmtree(output, ignore_errors=True)
    parameters = model_parameters(model_path, spec, seed, engine, work / "cache", max(torch.cuda.device_count(), 1))
    config = write_model_config(work / "model_config.yaml", parameters)
    python = os.environ.get("TINA_LIGHTEVAL_PYTHON", sys.executable)
    command = lighteval_command(python, engine, config, spec, module, output)
    (work / "command.json").write_text(json.dumps(command, indent=2))
    started = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    run = subprocess.run(command, capture_output=True, text=True, env=env)
    (work / "lighteval.log").write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        raise RuntimeError(f"lighteval exited {run.returncode} (log: {work / 'lighteval.log'}): "
                           f"{failure_reason(run.stdout + run.stderr)}")
    seconds = time.perf_counter() - started
    scores = parse_results(json.loads(latest_results_file(output).read_text()))
    results = []
    for benchmark in spec.benchmarks:
        if benchmark.name not in scores:
            raise RuntimeError(f"lighteval results have no {METRIC_NAME} for {task_name(benchmark.name)}")
        ids = [problem.id for problem in load_benchmark(benchmark)]
        outcomes = outcomes_from_details(details_file(output, benchmark.name), ids)
        recomputed = sum(o["success_rate"] for o in outcomes) / len(outcomes) if outcomes else 0.0
        if not math.isclose(recomputed, scores[benchmark.name], abs_tol=1e-9):
            raise RuntimeError(f"lighteval {benchmark.name}: results say Pass@1 {scores[benchmark.name]}, its "
                               f"details {recomputed}")
        with open(out_dir / f"{benchmark.name}.jsonl", "w") as handle:
            for outcome in outcomes:
                handle.write(json.dumps(outcome) + "\n")
        tokens = sum(o["tokens"] for o in outcomes)
        results.append(BenchmarkResult(benchmark.name, scores[benchmark.name], len(outcomes), 1, tokens,
                                       seconds / len(spec.benchmarks), outcomes,
                                       device="cuda" if torch.cuda.is_available() else "cpu"))
        if on_progress:
            on_progress(benchmark.name, len(outcomes), len(outcomes))
    return results
