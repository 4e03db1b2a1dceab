"""The lighteval backend end to end, for real: a LoRA adapter trained for two steps on the tiny model, merged into
a folder whose path holds '=' and ',' (as trial ids do), evaluated by LightEval itself (its transformers engine,
offline) on the bundled AIME24/AIME25/AMC23/MATH-500/Minerva with Tina's task definitions; the Pass@1 we report
is checked against LightEval's results file and its per-sample details.

LightEval lives in its own environment: set TINA_LIGHTEVAL_PYTHON to its python (``.ci/lighteval`` builds it);
without it the test skips. The engine is LightEval's transformers model without CUDA, vLLM with it (or as
TINA_LIGHTEVAL_ENGINE says)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

import pytest

from tina_sweep.trial.tina_source import quote

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = ("aime24", "aime25", "amc23", "math500", "minerva")
LIMIT = 2
# which bundled field Tina's prompt function poses as the question, and which it takes as the gold
FIELDS = {"aime24": ("problem", "answer"), "aime25": ("question", "answer"), "amc23": ("problem", "answer"),
          "math500": ("problem", "solution"), "minerva": ("problem", "solution")}
FILES = {"aime24": "aime24.jsonl", "aime25": "aime25.jsonl", "amc23": "amc23.jsonl", "math500": "math500.jsonl",
         "minerva": "minerva_math.json"}


def _why_not() -> str | None:
    """Why LightEval cannot run here, or None."""
    python = os.environ.get("TINA_LIGHTEVAL_PYTHON")
    if not python:
        return "LightEval runs in its own environment: set TINA_LIGHTEVAL_PYTHON to its python (.ci/lighteval)"
    try:
        imports = subprocess.run([python, "-c", "import lighteval"], capture_output=True).returncode == 0
    except OSError:
        imports = False
    return None if imports else f"TINA_LIGHTEVAL_PYTHON={python} cannot import lighteval"


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))


def _bundled_rows(benchmark: str) -> list[dict]:
    path = REPO / "tina_sweep" / "data" / "benchmarks" / FILES[benchmark]
    text = path.read_text()
    rows = json.loads(text) if path.suffix == ".json" else [json.loads(line) for line in text.splitlines()]
    return rows[:LIMIT]


def _tina_math_query(question: str) -> str:
    node = ast.parse(quote("lighteval.math_query_template").text).body[0].value  # """...""".strip()
    return ast.literal_eval(node.func.value).strip().format(Question=question)


def test_lighteval_evaluates_a_trained_adapter_with_tinas_tasks(tmp_path, tiny_model_dir):
    import pyarrow.parquet as pq
    import yaml
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from conftest import smoke_spec
    from tina_sweep.trial.evaluate.lighteval_backend import lighteval_engine
    from tina_sweep.trial.evaluate.vllm_backend import lora_b_norm
    from tina_sweep.trial.datasets import load_benchmark
    from tina_sweep.trial.evaluate import evaluate_model
    from tina_sweep.trial.train.trainer import train_trial

    # the random model is never right, so accuracy alone gives zero advantages: the length reward makes the
    # update non-zero
    spec = smoke_spec(**{"lora.rank": 2, "training.learning_rate": 5e-3, "training.save_steps": 2,
                         "algorithm.rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "length", "weight": 1.0}],
                         "eval.backend": "lighteval", "eval.max_new_tokens": 12, "eval.gpu_memory_utilization": 0.1,
                         "eval.benchmarks": [{"name": b, "limit": LIMIT} for b in BENCHMARKS]})
    trial = tmp_path / "sweeps" / "s" / "trials" / "lora.rank=2,seed=0"  # '=' and ',' as in trial ids
    adapter = train_trial(spec, trial).adapter_dir
    assert lora_b_norm(adapter) > 0  # trained: B starts at zero

    out = trial / "eval"
    results = evaluate_model(spec.model, spec.prompt, spec.eval, adapter, out, seed=0)

    work = out / "lighteval"
    config = yaml.safe_load((work / "model_config.yaml").read_text())["model_parameters"]
    merged = Path(config["model_name"])
    assert merged == (work / "merged").resolve() and "=" in str(merged) and "," in str(merged)
    assert json.loads((work / "command.json").read_text())[3] == lighteval_engine()  # accelerate without CUDA
    base_w, merged_w = (load_file(str(d / "model.safetensors")) for d in (tiny_model_dir, merged))
    changed = [k for k in base_w if "q_proj.weight" in k and not (base_w[k] == merged_w[k]).all()]
    assert changed  # the adapter is in the merged weights

    raw = json.loads(next((work / "output" / "results").rglob("results_*.json")).read_text())["results"]
    tokenizer = AutoTokenizer.from_pretrained(merged)  # what LightEval loaded
    assert [r.benchmark for r in results] == list(BENCHMARKS)
    for result in results:
        task = f"tina_{result.benchmark}"
        details = next((work / "output" / "details").rglob(f"details_{task}|0_*.parquet"))
        samples = sorted(pq.read_table(details).to_pylist(), key=lambda r: int(r["doc"]["id"]))
        scores = [r["metric"]["extractive_match"] for r in samples]
        # the number we report is LightEval's, and equals the mean of its per-sample scores
        assert result.pass_at_1 == raw[f"{task}|0"]["extractive_match"] == sum(scores) / len(scores)
        assert result.problems == len(samples) == LIMIT and result.samples_per_problem == 1
        question, gold = FIELDS[result.benchmark]
        for row, sample in zip(_bundled_rows(result.benchmark), samples):
            doc = sample["doc"]
            assert doc["query"] == _tina_math_query(row[question])  # Tina's user turn
            assert list(doc["choices"]) == [str(row[gold])] and doc["gold_index"] == 0  # where Tina takes the gold
            assert doc["specific"]["extracted_golds"]  # Tina's metric reads the gold
            chat = tokenizer.apply_chat_template([{"role": "user", "content": doc["query"]}], tokenize=True,
                                                 add_generation_prompt=True, return_dict=False)
            ids = list(sample["model_response"]["input_tokens"])  # left-padded to the batch's longest
            start = ids.index(chat[0])
            assert ids[start:] == list(chat) and len(set(ids[:start])) <= 1  # the chat template, no system turn
            assert len(sample["model_response"]["output_tokens"][0]) <= 12
        outcomes = [json.loads(line) for line in (out / f"{result.benchmark}.jsonl").read_text().splitlines()]
        assert [o["success_rate"] for o in outcomes] == scores
        benchmark = next(b for b in spec.eval.benchmarks if b.name == result.benchmark)
        assert [o["id"] for o in outcomes] == [p.id for p in load_benchmark(benchmark)]
        assert result.generated_tokens == sum(len(s["model_response"]["output_tokens"][0]) for s in samples) > 0
        assert [o["completions"] for o in outcomes] == [list(s["model_response"]["text"]) for s in samples]
