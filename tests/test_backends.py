"""The vllm and lighteval evaluation backends, everything but the GPU kernels: engine arguments, LoRA requests,
sampling parameters, one-call multi-adapter evaluation and grading (with stand-ins for vLLM's classes), the
adapter sanity check, LightEval's task list, model-args string, custom task module and its offline data, the
cost of the paper's own table, and the GPU check script's syntax."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fake_vllm import LoRARequest as FakeRequest
from fake_vllm import SamplingParams as FakeParams
from fake_vllm import _Choice, _Output
from tina_sweep.backends import lighteval_backend as le
from tina_sweep.backends import vllm_backend as vb
from tina_sweep.config import EvalSpec, PromptSpec
from tina_sweep.evaluate import evaluation_prompt
from tina_sweep.scales import scale_preset

REPO = Path(__file__).resolve().parents[1]
PAPER_EVAL = EvalSpec.model_validate(scale_preset("paper")["eval"])


def _adapter(folder: Path, rank: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank, "lora_alpha": 4 * rank}))
    return folder


# ------------------------------------------------------------------ vLLM: arguments

def test_engine_kwargs_size_lora_to_the_studys_largest_rank():
    kwargs = vb.engine_kwargs("/m", PAPER_EVAL, [4, 32, 128, 16], seed=3)
    assert kwargs == {"model": "/m", "tokenizer": "/m", "dtype": "bfloat16", "seed": 3, "gpu_memory_utilization": 0.7,
                      "enable_prefix_caching": True, "max_model_len": 32768, "enable_lora": True,
                      "max_lora_rank": 128, "max_loras": 4, "max_cpu_loras": 4}
    assert vb.vllm_max_lora_rank([4]) == 8 and vb.vllm_max_lora_rank([100]) == 128 and vb.vllm_max_lora_rank([]) == 1
    assert vb.vllm_max_lora_rank([300]) == 320
    with pytest.raises(ValueError, match="exceeds"):
        vb.vllm_max_lora_rank([600])
    many = vb.engine_kwargs("/m", PAPER_EVAL, [8] * 12, seed=0)
    assert many["max_loras"] == vb.MAX_RESIDENT_LORAS and many["max_cpu_loras"] == 12
    assert "enable_lora" not in vb.engine_kwargs("/m", PAPER_EVAL, [], seed=0)


def test_lora_requests_have_unique_ids_and_absolute_paths(tmp_path):
    jobs = [vb.AdapterJob("base", None, tmp_path / "b"),
            vb.AdapterJob("r4", _adapter(tmp_path / "a4", 4), tmp_path / "o4"),
            vb.AdapterJob("r8", _adapter(tmp_path / "a8", 8), tmp_path / "o8")]
    args = vb.lora_request_args(jobs)
    assert list(args) == ["r4", "r8"]
    assert [a["lora_int_id"] for a in args.values()] == [1, 2]
    assert args["r8"] == {"lora_name": "r8", "lora_int_id": 2, "lora_path": str((tmp_path / "a8").resolve())}
    with pytest.raises(ValueError, match="two adapters"):
        vb.lora_request_args(jobs + [vb.AdapterJob("r4", tmp_path / "a8", tmp_path / "x")])


def test_sampling_kwargs_follow_the_spec():
    assert vb.sampling_kwargs(PAPER_EVAL, 5) == {"n": 1, "temperature": 0.6, "top_p": 0.95, "max_tokens": 32768,
                                                 "seed": 5}
    spec = PAPER_EVAL.model_copy(update={"samples_per_problem": 8, "top_k": 20, "max_new_tokens": 100})
    assert vb.sampling_kwargs(spec, 0) == {"n": 8, "temperature": 0.6, "top_p": 0.95, "max_tokens": 100, "seed": 0,
                                           "top_k": 20}
    assert vb.sampling_kwargs(spec, 1, greedy_tokens=16) == {"n": 1, "temperature": 0.0, "max_tokens": 16, "seed": 1}


def test_paper_evaluation_prompt_is_tinas_math_template():
    from tina_sweep.prompts import TINA_MATH_QUERY_TEMPLATE

    trial_prompt = PromptSpec.model_validate(scale_preset("paper")["prompt"])
    prompt = evaluation_prompt(trial_prompt, PAPER_EVAL)
    assert prompt.system is None and prompt.template == TINA_MATH_QUERY_TEMPLATE and prompt.chat_template is None
    assert evaluation_prompt(trial_prompt, PAPER_EVAL.model_copy(update={"prompt": None})) is trial_prompt


# ------------------------------------------------------------------ vLLM: one engine, every adapter (stand-ins)
# the request, sampling and output classes are tests/fake_vllm.py's

class FakeLLM:
    """Answers 2 under adapter "good", 3 under "bad", and nothing without an adapter."""

    instances: list = []

    def __init__(self, **kwargs):
        self.kwargs, self.calls = kwargs, []
        FakeLLM.instances.append(self)

    def generate(self, prompts, params, lora_request=None, use_tqdm=False):
        requests = lora_request if isinstance(lora_request, list) else [lora_request] * len(prompts)
        self.calls.append((list(prompts), params.kwargs, list(requests)))
        text = {"good": "so \\boxed{2}", "adapter": "so \\boxed{2}", "bad": "so \\boxed{3}", None: "no idea"}
        return [_Output([_Choice(text[r.lora_name if r else None], [1, 2, 3]) for _ in range(params.kwargs["n"])])
                for r in requests]


@pytest.fixture()
def two_problem_benchmark(tmp_path) -> dict:
    path = tmp_path / "two.jsonl"
    path.write_text('{"question": "1 + 1?", "answer": "2"}\n{"question": "4 - 2?", "answer": "2"}\n')
    return {"name": "two", "path": str(path)}


def test_one_generate_call_evaluates_every_adapter(tmp_path, tiny_model_dir, two_problem_benchmark):
    from tina_sweep.config import ModelSpec

    spec = EvalSpec(benchmarks=[two_problem_benchmark], samples_per_problem=2, temperature=0.6, top_p=0.95,
                    max_new_tokens=9, dtype="bfloat16")
    jobs = [vb.AdapterJob("base", None, tmp_path / "base"),
            vb.AdapterJob("good", _adapter(tmp_path / "good", 4), tmp_path / "t1"),
            vb.AdapterJob("bad", _adapter(tmp_path / "bad", 16), tmp_path / "t2")]
    FakeLLM.instances = []
    evaluator = vb.VLLMEvaluator(ModelSpec(name="tiny-random-qwen2"), spec, jobs, seed=7, llm_factory=FakeLLM,
                                 lora_request_class=FakeRequest, sampling_class=FakeParams)
    results = evaluator.evaluate_all(PromptSpec(instruction="", system="S"))
    (llm,) = FakeLLM.instances  # the base model loaded once
    assert llm.kwargs["enable_lora"] and llm.kwargs["max_lora_rank"] == 16 and llm.kwargs["max_loras"] == 2
    assert llm.kwargs["model"] == str(tiny_model_dir)
    (call,) = llm.calls  # one generate call for the whole study
    prompts, params, requests = call
    assert len(prompts) == 6 and params == {"n": 2, "temperature": 0.6, "top_p": 0.95, "max_tokens": 9, "seed": 7}
    assert [r.lora_int_id if r else None for r in requests] == [None, None, 1, 1, 2, 2]
    assert prompts[0].startswith("<|im_start|>system\nS<|im_end|>") and "1 + 1?" in prompts[0]
    assert {name: [r.pass_at_1 for r in rs] for name, rs in results.items()} == \
        {"base": [0.0], "good": [1.0], "bad": [0.0]}
    outcome = json.loads((tmp_path / "t1" / "two.jsonl").read_text().splitlines()[0])
    assert outcome["correct"] == [True, True] and outcome["extracted"] == ["2", "2"]
    assert results["good"][0].generated_tokens == 2 * 2 * 3


def test_adapter_check_judgement():
    ok = vb.judge_adapter_check("a", base=["x", "y", "z", "w"], adapter=["x", "Y", "Z", "W"],
                                merged=["x", "Y", "Z", "w2"])
    assert ok.passed and ok.differs_from_base == 3 and ok.matches_merged == 3
    same_as_base = vb.judge_adapter_check("a", base=["x", "y"], adapter=["x", "y"], merged=["x", "y"])
    assert not same_as_base.passed  # the LoRA changed nothing: it did not load
    unlike_merged = vb.judge_adapter_check("a", base=["x", "y"], adapter=["p", "q"], merged=["r", "s"])
    assert not unlike_merged.passed


def test_check_adapter_sends_base_and_adapter_greedy(tmp_path, tiny_model_dir, two_problem_benchmark):
    from tina_sweep.config import ModelSpec
    from tina_sweep.data import load_benchmark

    spec = EvalSpec(benchmarks=[two_problem_benchmark], temperature=0.6, samples_per_problem=1)
    jobs = [vb.AdapterJob("good", _adapter(tmp_path / "good", 8), tmp_path / "o")]
    FakeLLM.instances = []
    evaluator = vb.VLLMEvaluator(ModelSpec(name="tiny-random-qwen2"), spec, jobs, llm_factory=FakeLLM,
                                 lora_request_class=FakeRequest, sampling_class=FakeParams)
    problems = load_benchmark(spec.benchmarks[0])
    check = evaluator.check_adapter(jobs[0], PromptSpec(instruction=""), ["so \\boxed{2}"] * 2, problems, tokens=12)
    assert check.passed and check.prompts == 2
    prompts, params, requests = FakeLLM.instances[0].calls[0]
    assert params == {"n": 1, "temperature": 0.0, "max_tokens": 12, "seed": 0}
    assert [r.lora_name if r else None for r in requests] == [None, None, "good", "good"]


def test_evaluate_model_dispatches_to_the_vllm_backend(tmp_path, tiny_model_dir, two_problem_benchmark, monkeypatch):
    from tina_sweep.config import ModelSpec
    from tina_sweep.evaluate import evaluate_model

    monkeypatch.setattr(vb, "_default_classes", lambda: (FakeLLM, FakeRequest, FakeParams))
    spec = EvalSpec(backend="vllm", benchmarks=[two_problem_benchmark], temperature=0.6)
    results = evaluate_model(ModelSpec(name="tiny-random-qwen2"), PromptSpec(instruction=""), spec,
                             _adapter(tmp_path / "good", 4), tmp_path / "eval", seed=0)
    assert [r.pass_at_1 for r in results] == [1.0]
    assert (tmp_path / "eval" / "two.jsonl").is_file()


# ------------------------------------------------------------------ LightEval

def test_lighteval_tasks_and_task_argument():
    assert le.task_argument(PAPER_EVAL) == "aime24|0,aime25|0,tina_amc23|0,math_500|0,gpqa:diamond|0,tina_minerva|0"
    with pytest.raises(ValueError, match="no LightEval task"):
        le.lighteval_tasks(EvalSpec(benchmarks=[{"name": "gsm8k"}]))
    with pytest.raises(ValueError, match="one sample per problem"):
        le.lighteval_tasks(PAPER_EVAL.model_copy(update={"samples_per_problem": 4}))
    assert le.lighteval_tasks(EvalSpec(benchmarks=[{"name": "amc23"}], samples_per_problem=4, temperature=0.6)) == \
        ["tina_amc23"]
    with pytest.raises(ValueError, match="no path, no limit"):
        le.lighteval_tasks(EvalSpec(benchmarks=[{"name": "aime24", "limit": 3}]))


def test_lighteval_model_args_string(tmp_path):
    text = le.model_args(tmp_path / "merged", PAPER_EVAL, seed=42, data_parallel_size=2)
    assert text == (f"model_name={(tmp_path / 'merged').resolve()},dtype=bfloat16,data_parallel_size=2,"
                    "gpu_memory_utilization=0.7,seed=42,max_model_length=32768,"
                    "generation_parameters={max_new_tokens:32768,temperature:0.6,top_p:0.95,seed:42}")
    with pytest.raises(ValueError, match="plain path"):
        le.model_args(Path("/a,b"), PAPER_EVAL, seed=0)
    command = le.lighteval_command("py", tmp_path / "m", PAPER_EVAL, 1, tmp_path / "t.py", tmp_path / "out")
    assert command[:4] == ["py", "-m", "lighteval", "vllm"] and command[5] == le.task_argument(PAPER_EVAL)
    assert command[6:] == ["--custom-tasks", str(tmp_path / "t.py"), "--output-dir", str(tmp_path / "out"),
                           "--save-details"]


def test_custom_task_data_loads_offline_as_lighteval_loads_it(tmp_path):
    from datasets import load_dataset

    folders = le.write_custom_data(tmp_path)
    amc = load_dataset(path=str(folders["tina_amc23"]), name="default", revision=None)  # LightEval's call
    minerva = load_dataset(path=str(folders["tina_minerva"]), name="default", revision=None)
    assert amc["train"].num_rows == 40 and minerva["train"].num_rows == 272
    assert amc["train"][0]["answers"] and isinstance(minerva["train"][0]["answers"], list)


def _stub_lighteval(monkeypatch):
    """Just enough of LightEval's API for the generated module to import (when LightEval itself is absent)."""
    import types

    @dataclass
    class Doc:
        task_name: str
        query: str
        choices: list
        gold_index: object

    class LightevalTaskConfig:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)

    class Metrics:
        @staticmethod
        def pass_at_k_math(sample_params):
            return ("pass_at_k_math", tuple(sorted(sample_params.items())))

    for name, attrs in {"lighteval": {}, "lighteval.metrics": {}, "lighteval.metrics.metrics": {"Metrics": Metrics},
                        "lighteval.tasks": {},
                        "lighteval.tasks.lighteval_task": {"LightevalTaskConfig": LightevalTaskConfig},
                        "lighteval.tasks.requests": {"Doc": Doc}}.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)


def test_custom_tasks_module_structure(tmp_path, monkeypatch):
    from tina_sweep.prompts import TINA_MATH_QUERY_TEMPLATE

    folders = le.write_custom_data(tmp_path / "data")
    spec = PAPER_EVAL.model_copy(update={"samples_per_problem": 4})
    text = le.custom_tasks_module_text(folders, spec)
    _stub_lighteval(monkeypatch)
    namespace: dict = {}
    exec(compile(text, "tina_custom_tasks.py", "exec"), namespace)
    tasks = {t.name: t for t in namespace["TASKS_TABLE"]}
    assert sorted(tasks) == ["tina_amc23", "tina_minerva"]
    amc = tasks["tina_amc23"]
    assert amc.hf_repo == str(folders["tina_amc23"].resolve()) and amc.hf_subset == "default"
    assert amc.evaluation_splits == ["train"] and amc.generation_size == 32768
    assert amc.metrics == [("pass_at_k_math", (("k", 1), ("n", 4)))]
    row = json.loads((folders["tina_minerva"] / "train.jsonl").read_text().splitlines()[0])
    doc = tasks["tina_minerva"].prompt_function(row, "tina_minerva")
    assert doc.query == TINA_MATH_QUERY_TEMPLATE.replace("{question}", row["problem"])
    assert doc.choices == [a.strip() for a in row["answers"]] and doc.gold_index == list(range(len(row["answers"])))


def _lighteval_pythonpath() -> str | None:
    """Where an installed LightEval can be imported from (``TINA_LIGHTEVAL_PYTHONPATH``), if anywhere."""
    for candidate in [os.environ.get("TINA_LIGHTEVAL_PYTHONPATH"), ""]:
        if candidate is None:
            continue
        env = {**os.environ, "PYTHONPATH": candidate} if candidate else dict(os.environ)
        probe = subprocess.run([sys.executable, "-c", "import lighteval.tasks.registry"], env=env,
                               capture_output=True)
        if probe.returncode == 0:
            return candidate
    return None


PROBE = r"""
import json, sys
from lighteval.models.vllm.vllm_model import VLLMModelConfig
from lighteval.tasks.registry import Registry
config = VLLMModelConfig.from_args(sys.argv[1])
tasks = Registry(tasks=sys.argv[2], custom_tasks=sys.argv[3]).load_tasks()
docs = {name: [[d.query, d.get_golds()] for d in task.eval_docs()[:2]] for name, task in tasks.items()}
print(json.dumps({"model_name": config.model_name, "dtype": config.dtype, "dp": config.data_parallel_size,
                  "mem": config.gpu_memory_utilization, "len": config.max_model_length,
                  "gen": config.generation_parameters.model_dump(exclude_none=True), "docs": docs,
                  "counts": {name: len(task.eval_docs()) for name, task in tasks.items()}}))
"""


def test_lighteval_itself_reads_our_model_args_and_custom_tasks_offline(tmp_path):
    """Runs only where LightEval imports (its own environment: TINA_LIGHTEVAL_PYTHONPATH)."""
    pythonpath = _lighteval_pythonpath()
    if pythonpath is None:
        pytest.skip("LightEval is not importable (set TINA_LIGHTEVAL_PYTHONPATH to its site-packages)")
    folders = le.write_custom_data(tmp_path / "data")
    module = tmp_path / "tina_custom_tasks.py"
    module.write_text(le.custom_tasks_module_text(folders, PAPER_EVAL))
    args = le.model_args(tmp_path / "merged", PAPER_EVAL, seed=42, data_parallel_size=2)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    run = subprocess.run([sys.executable, "-c", PROBE, args, "tina_amc23|0,tina_minerva|0", str(module)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["model_name"] == str((tmp_path / "merged").resolve()) and report["dp"] == 2
    assert report["len"] == 32768 and report["mem"] == 0.7 and report["dtype"] == "bfloat16"
    assert report["gen"]["max_new_tokens"] == 32768 and report["gen"]["temperature"] == 0.6
    assert report["gen"]["top_p"] == 0.95
    assert report["counts"] == {"tina_amc23|0": 40, "tina_minerva|0": 272}
    query, golds = report["docs"]["tina_amc23|0"][0]
    assert query.startswith("Solve the following math problem efficiently") and golds


def test_parse_lighteval_results():
    payload = {"results": {
        "aime24|0": {"pass@k:k=1": 0.3, "pass@k:k=1_stderr": 0.08, "avg@n:n=1": 0.3},
        "custom|tina_amc23|0": {"pass@k:k=1&n=1": 0.75},
        "gpqa:diamond|0": {"gpqa_pass@k:k=1": 0.35},
        "math_500|0": {"pass@k:k=1&n=1": 0.846},
        "all": {"pass@k:k=1": 0.5}}}
    assert le.parse_results(payload) == {"aime24": 0.3, "amc23": 0.75, "gpqa_diamond": 0.35, "math500": 0.846}


# ------------------------------------------------------------------ the GPU check script

def test_gpu_check_script_parses():
    script = REPO / "benchmarks" / "gpu_check.sh"
    assert script.is_file()
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
