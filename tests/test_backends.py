"""The vllm and lighteval evaluation backends, everything but the GPU kernels: engine arguments, LoRA requests,
sampling parameters, one-call multi-adapter evaluation and grading (with stand-ins for vLLM's classes), the
adapter sanity check, LightEval's task list, model-args string, custom task module and its offline data, the
cost of the paper's own table, and the GPU check script's syntax."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from fake_vllm import LoRARequest as FakeRequest
from fake_vllm import SamplingParams as FakeParams
from fake_vllm import _Choice, _Output
from tina_sweep.trial.evaluate import lighteval_backend as le
from tina_sweep.trial.evaluate import vllm_backend as vb
from tina_sweep.trial.spec import EvalSpec, PromptSpec
from tina_sweep.trial.datasets import load_benchmark
from tina_sweep.trial.evaluate import evaluation_prompt
from tina_sweep.study.recipes import preset as scale_preset

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
    jobs = [vb.EvalTarget("base", None, tmp_path / "b"),
            vb.EvalTarget("r4", _adapter(tmp_path / "a4", 4), tmp_path / "o4"),
            vb.EvalTarget("r8", _adapter(tmp_path / "a8", 8), tmp_path / "o8")]
    args = vb.lora_request_args(jobs)
    assert list(args) == ["r4", "r8"]
    assert [a["lora_int_id"] for a in args.values()] == [1, 2]
    assert args["r8"] == {"lora_name": "r8", "lora_int_id": 2, "lora_path": str((tmp_path / "a8").resolve())}
    with pytest.raises(ValueError, match="two adapters"):
        vb.lora_request_args(jobs + [vb.EvalTarget("r4", tmp_path / "a8", tmp_path / "x")])


def test_sampling_kwargs_follow_the_spec():
    assert vb.sampling_kwargs(PAPER_EVAL, 5) == {"n": 1, "temperature": 0.6, "top_p": 0.95, "max_tokens": 32768,
                                                 "seed": 5}
    spec = PAPER_EVAL.model_copy(update={"samples_per_problem": 8, "top_k": 20, "max_new_tokens": 100})
    assert vb.sampling_kwargs(spec, 0) == {"n": 8, "temperature": 0.6, "top_p": 0.95, "max_tokens": 100, "seed": 0,
                                           "top_k": 20}
    assert vb.sampling_kwargs(spec, 1, greedy_tokens=16) == {"n": 1, "temperature": 0.0, "max_tokens": 16, "seed": 1}


def test_paper_evaluation_prompt_is_tinas_math_template():
    from tina_sweep.trial.prompts import TINA_MATH_QUERY_TEMPLATE

    trial_prompt = PromptSpec.model_validate(scale_preset("paper")["prompt"])
    prompt = evaluation_prompt(trial_prompt, PAPER_EVAL)
    assert prompt.system is None and prompt.template == TINA_MATH_QUERY_TEMPLATE and prompt.chat_template is None
    assert evaluation_prompt(trial_prompt, PAPER_EVAL.model_copy(update={"prompt": None})) is trial_prompt


# ------------------------------------------------------------------ vLLM: one engine, every adapter (stand-ins)
# the request, sampling and output classes are tests/fake_vllm.py's

class FakeLLM:
    """Answers 2 under adapter "good", 3 under "bad", and nothing without an adapter (cut at max_tokens)."""

    instances: list = []

    def __init__(self, **kwargs):
        self.kwargs, self.calls = kwargs, []
        FakeLLM.instances.append(self)

    def generate(self, prompts, params, lora_request=None, use_tqdm=False):
        requests = lora_request if isinstance(lora_request, list) else [lora_request] * len(prompts)
        self.calls.append((list(prompts), params.kwargs, list(requests)))
        text = {"good": "so \\boxed{2}", "adapter": "so \\boxed{2}", "bad": "so \\boxed{3}", None: "no idea"}
        return [_Output([_Choice(text[r.lora_name if r else None], [1, 2, 3], "length" if r is None else "stop")
                         for _ in range(params.kwargs["n"])]) for r in requests]


@pytest.fixture()
def two_problem_benchmark(tmp_path) -> dict:
    path = tmp_path / "two.jsonl"
    path.write_text('{"question": "1 + 1?", "answer": "2"}\n{"question": "4 - 2?", "answer": "2"}\n')
    return {"name": "two", "path": str(path)}


def test_one_generate_call_evaluates_every_adapter(tmp_path, tiny_model_dir, two_problem_benchmark):
    from tina_sweep.trial.spec import ModelSpec

    spec = EvalSpec(benchmarks=[two_problem_benchmark], samples_per_problem=2, temperature=0.6, top_p=0.95,
                    max_new_tokens=9, dtype="bfloat16")
    jobs = [vb.EvalTarget("base", None, tmp_path / "base"),
            vb.EvalTarget("good", _adapter(tmp_path / "good", 4), tmp_path / "t1"),
            vb.EvalTarget("bad", _adapter(tmp_path / "bad", 16), tmp_path / "t2")]
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
    assert outcome["truncated"] == [False, False] and outcome["reasons"] == [None, None]
    base = json.loads((tmp_path / "base" / "two.jsonl").read_text().splitlines()[0])  # vLLM's finish_reason "length"
    assert base["truncated"] == [True, True] and base["reasons"] == ["truncated", "truncated"]
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
    from tina_sweep.trial.spec import ModelSpec
    from tina_sweep.trial.datasets import load_benchmark

    spec = EvalSpec(benchmarks=[two_problem_benchmark], temperature=0.6, samples_per_problem=1)
    jobs = [vb.EvalTarget("good", _adapter(tmp_path / "good", 8), tmp_path / "o")]
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
    from tina_sweep.trial.spec import ModelSpec
    from tina_sweep.trial.evaluate import evaluate_model

    monkeypatch.setattr(vb, "_default_classes", lambda: (FakeLLM, FakeRequest, FakeParams))
    spec = EvalSpec(backend="vllm", benchmarks=[two_problem_benchmark], temperature=0.6)
    results = evaluate_model(ModelSpec(name="tiny-random-qwen2"), PromptSpec(instruction=""), spec,
                             _adapter(tmp_path / "good", 4), tmp_path / "eval", seed=0)
    assert [r.pass_at_1 for r in results] == [1.0]
    assert (tmp_path / "eval" / "two.jsonl").is_file()


# ------------------------------------------------------------------ LightEval

def _tina_math_query(question: str) -> str:
    """Tina's MATH_QUERY_TEMPLATE (the quoted ``\"\"\"...\"\"\".strip()``, evaluated) around a question."""
    import ast

    from tina_sweep.trial.tina_source import quote

    node = ast.parse(quote("lighteval.math_query_template").text).body[0].value
    return ast.literal_eval(node.func.value).strip().format(Question=question)


def test_tina_tasks_are_read_from_tinas_task_definitions():
    """Prompt function, gold field and metric of each task, as run_eval_custom_tasks.py defines them."""
    expected = {"aime24": ("aime_prompt_fn", "expr_gold_metric", "problem", "answer"),
                "aime25": ("aime_prompt_fn", "expr_gold_metric", "problem", "answer"),
                "amc23": ("amc_prompt_fn", "expr_gold_metric", "problem", "answer"),
                "math500": ("math_prompt_fn", "latex_gold_metric", "problem", "solution"),
                "minerva": ("minerva_prompt_fn", "latex_gold_metric", "problem", "solution"),
                "gpqa_diamond": ("gpqa_prompt_fn", "gpqa_metric", None, None)}
    for benchmark, (function, metric, question, gold) in expected.items():
        task = le.tina_task(benchmark)
        assert (task.prompt_function, task.metric, task.question_field, task.gold_field) == \
            (function, metric, question, gold), benchmark
        assert task.generation_size == 32768
    assert le.metric_arguments("latex_gold_metric") == (
        "language=Language.ENGLISH, fallback_mode='first_match', precision=5, "
        "gold_extraction_target=(LatexExtractionConfig(),), "
        "pred_extraction_target=(ExprExtractionConfig(), LatexExtractionConfig(boxed_match_priority=0)), "
        "aggregation_function=max")
    assert le.template("lighteval.math_query_template").endswith("Think step by step before answering.\n\n{Question}")
    assert _tina_math_query("Q?").count("\\boxed{ANSWER}") == 1  # Tina's doubled braces, after format
    from tina_sweep.trial.prompts import TINA_MATH_QUERY_TEMPLATE  # the other backends' paper-scale user turn: the same

    assert _tina_math_query("Q?") == TINA_MATH_QUERY_TEMPLATE.replace("{question}", "Q?")


def test_lighteval_tasks_and_task_argument():
    assert le.task_argument(PAPER_EVAL) == ("tina_aime24|0,tina_aime25|0,tina_amc23|0,tina_math500|0,"
                                            "tina_gpqa_diamond|0,tina_minerva|0")
    with pytest.raises(ValueError, match="gsm8k: no LightEval task"):
        le.lighteval_tasks(EvalSpec(benchmarks=[{"name": "gsm8k"}]))
    with pytest.raises(ValueError, match="one sample per problem, as Tina's tasks do, got 4"):
        le.lighteval_tasks(PAPER_EVAL.model_copy(update={"samples_per_problem": 4}))
    with pytest.raises(ValueError, match="no path"):
        le.lighteval_tasks(EvalSpec(benchmarks=[{"name": "aime24", "path": "x.jsonl"}]))
    assert le.lighteval_tasks(EvalSpec(benchmarks=[{"name": "aime24", "limit": 3}])) == ["tina_aime24"]


def test_paper_scale_model_parameters_are_tinas_lighteval_arguments(tmp_path):
    """eval_post_train.sh's MODEL_ARGS (DeepSeek-R1-Distill branch) and ours at paper scale, key by key."""
    import re

    from tina_sweep.trial.tina_source import quote

    script = quote("lighteval.script.model_args").text
    sizes = dict(line.strip().split("=") for line in quote("lighteval.script.max_lengths").text.splitlines())
    tina = dict(re.findall(r"(\w+)=([^,{]+)(?:,|$)", script.split('"')[1].split("generation_parameters")[0]))
    generation = dict(re.findall(r"(\w+):([^,}]+)", script.split("generation_parameters=")[1]))
    ours = le.model_parameters(tmp_path / "merged", PAPER_EVAL, seed=42, engine="vllm", cache_dir=tmp_path,
                               data_parallel_size=2)
    assert ours["dtype"] == tina["dtype"] and ours["gpu_memory_utilization"] == float(tina["gpu_memory_utilization"])
    assert ours["max_model_length"] == int(sizes["MAX_MODEL_LENGTH"]) and ours["data_parallel_size"] == 2
    assert ours["generation_parameters"]["max_new_tokens"] == int(sizes["MAX_NEW_TOKENS"])
    assert ours["generation_parameters"]["temperature"] == float(generation["temperature"])
    assert ours["generation_parameters"]["top_p"] == float(generation["top_p"])
    assert "--use-chat-template" in quote("lighteval.script.command").text and ours["override_chat_template"] is True
    cpu = le.model_parameters(tmp_path / "merged", PAPER_EVAL, seed=42, engine="accelerate", cache_dir=tmp_path)
    assert "max_new_tokens" not in cpu["generation_parameters"] and cpu["max_length"] == 32768  # the task's size
    with pytest.raises(ValueError, match="LightEval engine: expected one of vllm, accelerate, got 'tgi'"):
        le.model_parameters(tmp_path, PAPER_EVAL, seed=0, engine="tgi", cache_dir=tmp_path)


def test_model_config_file_keeps_paths_with_equals_and_commas(tmp_path):
    """Trial ids hold '=' (sweeps/<study>/trials/<id>): the YAML form of MODEL_ARGS takes any path."""
    import yaml

    merged = tmp_path / "trials" / "lr=1e-06,rank=32" / "merged"
    config = le.write_model_config(tmp_path / "m.yaml", le.model_parameters(
        merged, PAPER_EVAL, seed=1, engine="vllm", cache_dir=tmp_path / "c=1"))
    loaded = yaml.safe_load(config.read_text())["model_parameters"]
    assert loaded["model_name"] == str(merged.resolve()) and loaded["cache_dir"] == str((tmp_path / "c=1").resolve())
    command = le.lighteval_command("py", "vllm", config, PAPER_EVAL, tmp_path / "t.py", tmp_path / "out")
    assert command == ["py", "-m", "lighteval", "vllm", str(config), le.task_argument(PAPER_EVAL), "--custom-tasks",
                       str(tmp_path / "t.py"), "--output-dir", str(tmp_path / "out"), "--save-details"]


def test_engine_follows_the_gpu_or_the_setting(monkeypatch):
    monkeypatch.delenv("TINA_LIGHTEVAL_ENGINE", raising=False)
    assert le.lighteval_engine(cuda=True) == "vllm" and le.lighteval_engine(cuda=False) == "accelerate"
    monkeypatch.setenv("TINA_LIGHTEVAL_ENGINE", "accelerate")
    assert le.lighteval_engine(cuda=True) == "accelerate"
    monkeypatch.setenv("TINA_LIGHTEVAL_ENGINE", "vlm")
    with pytest.raises(ValueError, match="^TINA_LIGHTEVAL_ENGINE: expected one of vllm, accelerate, got 'vlm'$"):
        le.lighteval_engine()


def test_preflight_lets_lighteval_run_on_cpu_unless_vllm_is_asked_for(monkeypatch):
    import tina_sweep.run.preflight as preflight
    from conftest import smoke_spec

    spec = smoke_spec(**{"eval.backend": "lighteval", "eval.benchmarks": [{"name": "amc23", "limit": 2}]})
    monkeypatch.setattr(preflight, "lighteval_importable", lambda python: True)
    monkeypatch.setattr(preflight, "cuda_available", lambda: False)
    monkeypatch.delenv("TINA_LIGHTEVAL_ENGINE", raising=False)
    preflight.check_backends(spec)
    monkeypatch.setenv("TINA_LIGHTEVAL_ENGINE", "vllm")
    with pytest.raises(preflight.ConfigError, match="TINA_LIGHTEVAL_ENGINE=vllm cannot run here: it needs a CUDA"):
        preflight.check_backends(spec)


def test_task_data_holds_tinas_fields_and_loads_offline_as_lighteval_loads_it(tmp_path):
    from datasets import load_dataset

    spec = EvalSpec(benchmarks=[{"name": "aime25", "limit": 3}, {"name": "math500", "limit": 2}, {"name": "minerva"}])
    folders = le.write_task_data(spec, tmp_path, seed=0)
    aime = load_dataset(path=str(folders["aime25"]), name="default")["train"]  # LightEval's call
    math = load_dataset(path=str(folders["math500"]), name="default")["train"]
    minerva = load_dataset(path=str(folders["minerva"]), name="default")["train"]
    assert (aime.num_rows, math.num_rows, minerva.num_rows) == (3, 2, 272)
    raw = [json.loads(line) for line in (REPO / "tina_sweep/data/benchmarks/aime25.jsonl").read_text().splitlines()]
    assert aime[0] == {"problem": raw[0]["question"], "answer": raw[0]["answer"]}  # ours says question, Tina problem
    math_raw = json.loads((REPO / "tina_sweep/data/benchmarks/math500.jsonl").read_text().splitlines()[1])
    assert math[1] == {"problem": math_raw["problem"], "solution": math_raw["solution"]}  # Tina's gold: the solution
    assert all("\\boxed" in row["solution"] for row in minerva)


def test_gpqa_rows_place_the_gold_by_seed(monkeypatch):
    rows = [{"Question": f"q{i}", "Correct Answer": "right", "Incorrect Answer 1": "w1", "Incorrect Answer 2": "w2",
             "Incorrect Answer 3": "w3", "Explanation": "x"} for i in range(40)]
    monkeypatch.setattr(le, "_load_hub", lambda source: rows)
    benchmark = EvalSpec(benchmarks=[{"name": "gpqa_diamond", "limit": 30}]).benchmarks[0]
    first, again, other = (le.task_rows(benchmark, seed) for seed in (0, 0, 1))
    assert first == again and first != other and len(first) == 30
    assert {row["gold_index"] for row in first} == {0, 1, 2, 3} and "Explanation" not in first[0]


def test_parse_lighteval_results():
    """The layout of a real LightEval 0.13 results file (tests/test_lighteval_e2e.py reads one)."""
    payload = {"results": {
        "tina_aime24|0": {"extractive_match": 0.25, "extractive_match_stderr": 0.1},
        "tina_math500|0": {"extractive_match": 0.5, "extractive_match_stderr": 0.2},
        "tina_gpqa_diamond|0": {"extractive_match": 0.0, "extractive_match_stderr": 0.0},
        "all": {"extractive_match": 0.25, "extractive_match_stderr": 0.1}}}
    assert le.parse_results(payload) == {"aime24": 0.25, "math500": 0.5, "gpqa_diamond": 0.0}


def test_failure_reason_is_one_line():
    assert "create an empty lighteval/tasks/tasks/tinyBenchmarks.pkl" in le.failure_reason(
        "...\nurl = .../tinyBenchmarks.pkl\nConnectionError: x")
    assert le.failure_reason("a\nTypeError: boom\n\n") == "TypeError: boom" and le.failure_reason("") == "no output"


def _lighteval_python() -> str | None:
    """The python of LightEval's own environment (``TINA_LIGHTEVAL_PYTHON``), when it imports lighteval."""
    python = os.environ.get("TINA_LIGHTEVAL_PYTHON")
    if not python:
        return None
    try:
        probe = subprocess.run([python, "-c", "import lighteval.tasks.registry"], capture_output=True)
    except OSError:
        return None
    return python if probe.returncode == 0 else None


PROBE = r"""
import json, sys
from lighteval.models.transformers.transformers_model import TransformersModelConfig
from lighteval.models.vllm.vllm_model import VLLMModelConfig
from lighteval.tasks.registry import Registry
vllm = VLLMModelConfig.from_path(sys.argv[1])
cpu = TransformersModelConfig.from_path(sys.argv[2])
registry = Registry(tasks=sys.argv[3], custom_tasks=sys.argv[4])
tasks = registry.load_tasks()
out = {"vllm": vllm.model_dump(include={"model_name", "dtype", "data_parallel_size", "gpu_memory_utilization",
                                        "max_model_length", "override_chat_template"}),
       "vllm_gen": vllm.generation_parameters.model_dump(exclude_none=True),
       "cpu": cpu.model_dump(include={"model_name", "override_chat_template", "max_length"}),
       "cpu_gen": cpu.generation_parameters.model_dump(exclude_none=True), "tasks": {}}
for name, task in tasks.items():
    metric = task.config.metrics[0]
    fn = metric.sample_level_fn
    docs = task.eval_docs()
    out["tasks"][name] = {"count": len(docs), "query": docs[0].query, "golds": docs[0].get_golds(),
                          "size": task.config.generation_size, "metric_name": metric.metric_name,
                          "metric": [fn.precision, fn.fallback_mode, repr(fn.gold_extraction_target),
                                     repr(fn.pred_extraction_target), fn.aggregation_function.__name__]}
from lighteval.models.model_output import ModelResponse
answers = json.loads(sys.argv[5])
for name, task in tasks.items():  # Tina's metric on the first problem: its right answer boxed, and a wrong one
    doc, fn = task.eval_docs()[0], task.config.metrics[0].sample_level_fn
    right = "Therefore, the final answer is: $\\boxed{" + answers[name] + "}$. I hope it is correct"
    out["tasks"][name]["scores"] = [fn.compute(doc=doc, model_response=ModelResponse(text=[t]))
                                    for t in (right, right.replace(answers[name], "-98765"))]
gpqa = [t for t in registry._task_registry.values() if t.name == "tina_gpqa_diamond"][0]
row = {"Question": "Q", "Correct Answer": "R", "Incorrect Answer 1": "W1", "Incorrect Answer 2": "W2",
       "Incorrect Answer 3": "W3", "gold_index": 2}
doc = gpqa.prompt_function(row, "tina_gpqa_diamond")
out["gpqa"] = [doc.query, doc.choices, doc.gold_index]
print(json.dumps(out))
"""


def test_lighteval_itself_reads_our_model_config_and_tinas_tasks_offline(tmp_path, monkeypatch):
    """Runs only in LightEval's own environment (TINA_LIGHTEVAL_PYTHON); the module is LightEval 0.13's."""
    python = _lighteval_python()
    if python is None:
        pytest.skip("LightEval is not importable: set TINA_LIGHTEVAL_PYTHON to its python (.ci/lighteval)")
    rows = [{"Question": "q", "Correct Answer": "r", "Incorrect Answer 1": "a", "Incorrect Answer 2": "b",
             "Incorrect Answer 3": "c"}]
    monkeypatch.setattr(le, "_load_hub", lambda source: rows)  # GPQA is gated: one made-up row stands in
    spec = PAPER_EVAL.model_copy(update={"benchmarks": [*PAPER_EVAL.benchmarks[:4], PAPER_EVAL.benchmarks[5]]})
    folders = le.write_task_data(PAPER_EVAL, tmp_path / "data", seed=0)
    module = tmp_path / "tina_custom_tasks.py"
    module.write_text(le.custom_tasks_module_text(folders, PAPER_EVAL))
    merged = tmp_path / "trials" / "id=1,2" / "merged"
    vllm = le.write_model_config(tmp_path / "vllm.yaml",
                                 le.model_parameters(merged, PAPER_EVAL, 42, "vllm", tmp_path, 2))
    cpu = le.write_model_config(tmp_path / "cpu.yaml",
                                le.model_parameters(merged, PAPER_EVAL, 42, "accelerate", tmp_path))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    answers = {}  # each benchmark's first answer, as our catalog reads it
    for benchmark in spec.benchmarks:
        answers[f"{le.task_name(benchmark.name)}|0"] = load_benchmark(benchmark)[0].answers[0].strip()
    run = subprocess.run([python, "-c", PROBE, str(vllm), str(cpu), le.task_argument(spec), str(module),
                          json.dumps(answers)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["vllm"] == {"model_name": str(merged.resolve()), "dtype": "bfloat16", "data_parallel_size": 2,
                              "gpu_memory_utilization": 0.7, "max_model_length": 32768, "override_chat_template": True}
    assert report["vllm_gen"] == {"max_new_tokens": 32768, "temperature": 0.6, "top_p": 0.95, "seed": 42}
    assert report["cpu"] == {"model_name": str(merged.resolve()), "override_chat_template": True, "max_length": 32768}
    assert report["cpu_gen"] == {"temperature": 0.6, "top_p": 0.95}
    tasks = report["tasks"]
    assert {name: t["count"] for name, t in tasks.items()} == {
        "tina_aime24|0": 30, "tina_aime25|0": 30, "tina_amc23|0": 40, "tina_math500|0": 500, "tina_minerva|0": 272}
    math500 = json.loads((REPO / "tina_sweep/data/benchmarks/math500.jsonl").read_text().splitlines()[0])
    assert tasks["tina_math500|0"]["query"] == _tina_math_query(math500["problem"])
    assert tasks["tina_math500|0"]["golds"] == [math500["solution"]]
    amc = json.loads((REPO / "tina_sweep/data/benchmarks/amc23.jsonl").read_text().splitlines()[0])
    assert tasks["tina_amc23|0"]["golds"] == [str(amc["answer"])]
    expr, latex = tasks["tina_aime24|0"]["metric"], tasks["tina_minerva|0"]["metric"]
    assert expr[:2] == latex[:2] == [5, "first_match"] and expr[4] == latex[4] == "max"  # Tina's precision, fallback
    assert "ExprExtractionConfig" in expr[2] and "LatexExtractionConfig" in latex[2]  # the gold's kind
    assert expr[3] == latex[3] and "boxed_match_priority=0" in expr[3]
    assert all(t["metric_name"] == "extractive_match" and t["size"] == 32768 for t in tasks.values())
    assert {name: t["scores"] for name, t in tasks.items()} == {name: [1.0, 0.0] for name in tasks}
    query, choices, gold = report["gpqa"]
    assert choices == ["A", "B", "C", "D"] and gold == 2 and "A) W1\nB) W2\nC) R\nD) W3" in query


# ------------------------------------------------------------------ the GPU check script

def test_gpu_check_script_parses():
    script = REPO / "benchmarks" / "gpu_check.sh"
    assert script.is_file()
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
