"""Spec validation: every invalid value fails with one line naming the field and the value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from conftest import smoke_tree
from tina_sweep.trial.spec import ConfigError, DataSpec, EvalSpec, LoraSpec, TrialSpec, first_error_line
from tina_sweep.study.study import Study, resolve

KNOWN_BENCHMARKS = "arithmetic, aime24, aime25, amc23, math500, minerva, gsm8k, mawps, svamp, gpqa_diamond"

# (dotted field, bad value, the exact one-line message)
INVALID = [
    ("lora.rank", 0, "lora.rank: must be a positive integer, got 0"),
    ("lora.rank", -3, "lora.rank: must be a positive integer, got -3"),
    ("lora.rank", 2.5, "lora.rank: must be an integer, got 2.5"),
    ("lora.rank", "8", "lora.rank: must be an integer, got '8'"),
    ("algorithm.scale_reward", True, "algorithm.scale_reward: unknown field (check its spelling)"),
    ("lora.rnak", 8, "lora.rnak: unknown field (check its spelling)"),
    ("algorithm.name", "ppo", "algorithm.name: must be 'grpo', 'dr_grpo' or 'dapo', got 'ppo'"),
    ("training.learning_rate", -1e-4, "training.learning_rate: must be positive, got -0.0001"),
    ("training.learning_rate", 0, "training.learning_rate: must be positive, got 0"),
    ("training.learning_rate", "fast", "training.learning_rate: must be a number, got 'fast'"),
    ("training.learning_rate", "1e-4", "training.learning_rate: must be a number, got '1e-4'"),
    ("training.learning_rate", True, "training.learning_rate: must be a number, got True"),
    ("training.learning_rate", float("inf"), "training.learning_rate: must be a finite number, got inf"),
    ("training.learning_rate", float("nan"), "training.learning_rate: must be a finite number, got nan"),
    ("algorithm.temperature", "0.7", "algorithm.temperature: must be a number, got '0.7'"),
    ("eval.top_p", False, "eval.top_p: must be a number, got False"),
    ("lora.dropout", float("nan"), "lora.dropout: must be a finite number, got nan"),
    ("algorithm.rewards", [{"name": "accuracy", "weight": float("nan")}],
     "algorithm.rewards.0.weight: must be a finite number, got nan"),
    ("algorithm.rewards", [{"name": "accuracy", "weight": True}], "algorithm.rewards.0.weight: must be a number, got True"),
    ("algorithm.rewards", [{"name": "repetition_penalty", "params": {"max_penalty": float("-inf")}}],
     "algorithm.rewards.0.params.max_penalty: must be a finite number, got -inf"),
    ("prompt.template", "no question here", "prompt.template: must contain {question}, got 'no question here'"),
    ("training.max_steps", 0, "training.max_steps: must be a positive integer, got 0"),
    ("algorithm.num_generations", 1, "algorithm.num_generations: must be greater than or equal to 2, got 1"),
    ("algorithm.beta", -0.1, "algorithm.beta: must be greater than or equal to 0, got -0.1"),
    ("algorithm.top_p", 0, "algorithm.top_p: must be positive, got 0"),
    ("algorithm.temperature", 0, "algorithm.temperature: must be positive, got 0"),
    ("eval.benchmarks", [], "eval.benchmarks: must not be empty, got []"),
    ("eval.benchmarks", [{"name": "nope"}],
     f"eval.benchmarks.0.name: unknown benchmark 'nope' (known: {KNOWN_BENCHMARKS}; or set its path to a JSONL file)"),
    ("eval.benchmarks", [{"name": "aime24"}, {"name": "aime2024"}],
     f"eval.benchmarks.1.name: unknown benchmark 'aime2024' (known: {KNOWN_BENCHMARKS}; "
     "or set its path to a JSONL file)"),
    ("eval.benchmarks", [{"name": "aime24"}, {"name": "aime24"}],
     "eval.benchmarks: benchmark 'aime24' is listed twice, got [{'name': 'aime24'}, {'name': 'aime24'}]"),
    ("eval.benchmarks", [{"limit": 3}], "eval.benchmarks.0.name: required field is missing"),
    ("eval.benchmarks", [{"name": "aime24"}, {"name": "AIME24", "path": "/tmp/a.jsonl"}],
     "eval.benchmarks: benchmark 'aime24' is listed twice (as 'aime24' and 'AIME24'), "
     "got [{'name': 'aime24'}, {'name': 'AIME24', 'path': '/tmp/a.jsonl'}]"),
    ("eval.benchmarks", [{"name": "../x", "path": "/tmp/x.jsonl"}],
     "eval.benchmarks.0.name: must be a plain file name (letters, digits, '_', '-', '+' and '.', no '/' and no '..'), "
     "got '../x'"),
    ("eval.benchmarks", [{"name": "/etc/passwd", "path": "/tmp/x.jsonl"}],
     "eval.benchmarks.0.name: must be a plain file name (letters, digits, '_', '-', '+' and '.', no '/' and no '..'), "
     "got '/etc/passwd'"),
    ("dataset.name", "nope",
     "dataset.name: unknown training set 'nope' (known: arithmetic, limr, gsm8k_train, aime_1983_2023, deepscaler, "
     "still3, open_rs, open_s1, open_r1, open_thoughts, ii_thought, fastcurl; or set dataset.path to a JSONL file)"),
    ("lora.dropout", 1.0, "lora.dropout: must be less than 1, got 1.0"),
    ("lora.dropout", -0.1, "lora.dropout: must be greater than or equal to 0, got -0.1"),
    ("lora.target_modules", [], "lora.target_modules: must not be empty, got []"),
    ("lora.alpha_per_rank", 0, "lora.alpha_per_rank: must be positive, got 0"),
    ("eval.samples_per_problem", 3,
     "eval.samples_per_problem: greedy decoding (eval.temperature 0) gives one distinct completion, so n must be 1 "
     "or the temperature > 0, got 3"),
    ("algorithm.rewards", [{"name": "bogus"}],
     "algorithm.rewards.0.name: must be 'accuracy', 'boxed_format', 'format', 'tag_count', 'cosine', 'length', "
     "'length_l1_exact', 'length_l1_max', 'reasoning_steps', 'repetition_penalty' or 'overlong', got 'bogus'"),
    ("algorithm.rewards", [{"name": "accuracy"}, {"name": "accuracy"}],
     "algorithm.rewards: reward 'accuracy' is listed twice, got [{'name': 'accuracy'}, {'name': 'accuracy'}]"),
    ("algorithm.rewards", [], "algorithm.rewards: must not be empty, got []"),
    ("model.dtype", "float16", "model.dtype: must be 'float32', 'bfloat16' or 'auto', got 'float16'"),
    ("lora", 2, "lora: must be a mapping of fields, got 2"),
]


def _ids(case):
    return f"{case[0]}={case[1]!r}"


@pytest.mark.parametrize("field,value,message", INVALID, ids=[_ids(c) for c in INVALID])
def test_invalid_spec_first_error_line(field, value, message):
    with pytest.raises(ValidationError) as caught:
        TrialSpec.model_validate(smoke_tree(**{field: value}))
    line = first_error_line(caught.value)
    assert line == message
    assert "\n" not in line


@pytest.mark.parametrize("field,value,message", INVALID, ids=[_ids(c) for c in INVALID])
@pytest.mark.parametrize("where", ["base", "axis"])
def test_invalid_spec_through_resolve(field, value, message, where):
    study = (Study(name="bad-study", base={field: value}, axes={"training.save_steps": [5, 10]})
             if where == "base" else Study(name="bad-study", axes={field: [value]}))
    with pytest.raises(ConfigError) as caught:
        resolve(study, "cpu")
    text = str(caught.value)
    assert text == f"bad-study: {message}"
    assert text.startswith(f"bad-study: {field}")  # names the field
    if not isinstance(value, (list, dict)) and "unknown field" not in text:
        assert repr(value) in text  # and the value
    assert "\n" not in text


def test_valid_smoke_and_cpu_presets_resolve():
    spec = TrialSpec.model_validate(smoke_tree())
    assert spec.model.name == "tiny-random-qwen2"
    assert spec.algorithm.name == "dr_grpo"
    assert spec.lora.rank == 4 and spec.lora.resolved_alpha == 16
    [trial] = resolve(Study(name="ok", axes={"lora.rank": [8]}), "cpu")
    assert trial.spec.model.name == "smollm2-135m-instruct"
    assert [b.name for b in trial.spec.eval.benchmarks] == ["arithmetic", "mawps"]


def test_user_benchmark_file_needs_no_catalog_name(tmp_path):
    spec = TrialSpec.model_validate(smoke_tree(**{"eval.benchmarks": [{"name": "mine", "path": str(tmp_path / "x.jsonl")}],
                                                  "dataset": {"name": "mytrain", "path": str(tmp_path / "t.jsonl")}}))
    assert spec.eval.benchmarks[0].name == "mine"
    assert spec.dataset.path.endswith("t.jsonl")


def test_sampling_eval_allows_several_samples():
    spec = TrialSpec.model_validate(smoke_tree(**{"eval.samples_per_problem": 4, "eval.temperature": 0.7}))
    assert spec.eval.samples_per_problem == 4


def test_validate_assignment_rejects_bad_value():
    spec = TrialSpec.model_validate(smoke_tree())
    with pytest.raises(ValidationError) as caught:
        spec.lora.rank = 0
    assert first_error_line(caught.value, "lora.") == "lora.rank: must be a positive integer, got 0"


# ------------------------------------------------------------------ Study-level errors

STUDY_INVALID = [
    (dict(name="x", axes={"lora.rank": []}), "Study.axes: axis 'lora.rank' has no values, got {'lora.rank': []}"),
    (dict(name="x", axes={}), "Study.axes: must not be empty, got {}"),
    (dict(name="x", axes={"lora.rank": [2, 2]}),
     "Study.axes: axis 'lora.rank' repeats a value: [2, 2], got {'lora.rank': [2, 2]}"),
    (dict(name="x", axes={"lora.rank": [2]}, scales={"gpu": {}}),
     "Study.scales: unknown scale 'gpu' (known: smoke, cpu, paper), got {'gpu': {}}"),
    (dict(name="bad name!", axes={"lora.rank": [2]}),
     "Study.name: string should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]*$', got 'bad name!'"),
    (dict(name="-leading-dash", axes={"lora.rank": [2]}),
     "Study.name: string should match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]*$', got '-leading-dash'"),
    (dict(name="x", axes={"lora.rank": [2]}, desing="grid"), "Study.desing: unknown field (check its spelling)"),
    (dict(name="x", axes={"lora.rank": [2]}, design="random"),
     "Study.design: must be 'grid' or 'one_at_a_time', got 'random'"),
    (dict(name="x", axes={"lora.rank": [2]}, seeds=[]), "Study.seeds: must not be empty, got []"),
    (dict(name="x", axes={"lora.rank": [2]}, scales={"cpu": {"axis": {}}}),
     "Study.scales.cpu.axis: unknown field (check its spelling)"),
    (dict(axes={"lora.rank": [2]}), "Study.name: required field is missing"),
]


@pytest.mark.parametrize("kwargs,message", STUDY_INVALID, ids=[m.split(":")[0] + str(i) for i, (_, m)
                                                                in enumerate(STUDY_INVALID)])
def test_invalid_study(kwargs, message):
    with pytest.raises(ValidationError) as caught:
        Study(**kwargs)
    assert first_error_line(caught.value, "Study.") == message


def test_bad_field_inside_scale_override_is_reported_on_resolve():
    study = Study(name="scaled", axes={"lora.rank": [2]}, scales={"cpu": {"axes": {"lora.rank": [0]}}})
    resolve(study, "smoke")  # the override applies only at its own scale
    with pytest.raises(ConfigError, match=r"^scaled: lora\.rank: must be a positive integer, got 0$"):
        resolve(study, "cpu")


def test_dotted_path_through_a_value_is_a_config_error():
    with pytest.raises(ConfigError, match=r"lora\.rank\.x: 'rank' is a value, not a section"):
        resolve(Study(name="x", axes={"lora.rank.x": [2]}), "smoke")


# ------------------------------------------------------------------ LoRA alpha rule

@pytest.mark.parametrize("rank,per_rank,alpha,expected", [
    (8, None, None, 32),        # default rule: 4 x rank
    (1, None, None, 4),
    (32, None, None, 128),
    (16, 2.0, None, 32),
    (3, 1.5, None, 4),          # round(4.5) -> 4 (banker's rounding of 4.5)
    (8, 4.0, 7, 7),             # an explicit alpha wins
    (64, 0.5, None, 32),
])
def test_lora_alpha_rule(rank, per_rank, alpha, expected):
    kwargs = {"rank": rank}
    if per_rank is not None:
        kwargs["alpha_per_rank"] = per_rank
    if alpha is not None:
        kwargs["alpha"] = alpha
    spec = LoraSpec(**kwargs)
    assert spec.alpha_per_rank == (per_rank if per_rank is not None else 4.0)
    assert spec.resolved_alpha == expected
    assert isinstance(spec.resolved_alpha, int)


def test_lora_alpha_follows_rank_axis_at_each_scale():
    trials = resolve(Study(name="alpha", axes={"lora.rank": [2, 16]}), "paper")
    assert [(t.spec.lora.rank, t.spec.lora.resolved_alpha, t.spec.lora.alpha) for t in trials] == \
        [(2, 8, None), (16, 64, None)]


@pytest.mark.parametrize("rank,per_rank", [(2, 0.1), (1, 0.4), (1, 0.5), (3, 0.1)])
def test_alpha_rule_that_rounds_alpha_to_zero_is_rejected(rank, per_rank):
    with pytest.raises(ValidationError) as caught:
        LoraSpec(rank=rank, alpha_per_rank=per_rank)
    assert first_error_line(caught.value, "lora.") == (f"lora.alpha_per_rank: {per_rank:g} x rank {rank} rounds "
                                                       f"lora_alpha to 0 (raise alpha_per_rank or set alpha), "
                                                       f"got {per_rank!r}")
    assert LoraSpec(rank=rank, alpha_per_rank=per_rank, alpha=1).resolved_alpha == 1  # an explicit alpha: fine
    with pytest.raises(ConfigError, match=r"^alpha: lora\.alpha_per_rank: .* rounds lora_alpha to 0"):
        resolve(Study(name="alpha", base={"lora.alpha_per_rank": per_rank}, axes={"lora.rank": [rank]}), "smoke")


def test_numbers_still_accept_ints():
    spec = TrialSpec.model_validate(smoke_tree(**{"training.learning_rate": 1, "algorithm.rewards": [
        {"name": "cosine", "weight": 2, "params": {"max_len": 3584}}]}))
    assert spec.training.learning_rate == 1.0 and isinstance(spec.training.learning_rate, float)
    assert spec.algorithm.rewards[0].weight == 2.0
    assert spec.algorithm.rewards[0].params == {"max_len": 3584}  # reward params keep their type
    assert isinstance(spec.algorithm.rewards[0].params["max_len"], int)


def test_lora_alpha_zero_rejected():
    with pytest.raises(ValidationError) as caught:
        LoraSpec(rank=4, alpha=0)
    assert first_error_line(caught.value, "lora.") == "lora.alpha: must be a positive integer, got 0"


def test_eval_spec_defaults_and_dataspec():
    spec = EvalSpec()
    assert [b.name for b in spec.benchmarks] == ["arithmetic"] and spec.benchmarks[0].limit == 100
    with pytest.raises(ValidationError) as caught:
        DataSpec(name="x", limit=0)
    assert first_error_line(caught.value) == "limit: must be a positive integer, got 0"


def test_trial_hash_changes_with_any_field():
    base = TrialSpec.model_validate(smoke_tree())
    same = TrialSpec.model_validate(smoke_tree())
    assert base.trial_hash() == same.trial_hash() and len(base.trial_hash()) == 10
    variants = [smoke_tree(**{"lora.rank": 8}), smoke_tree(**{"seed": 1}), smoke_tree(**{"algorithm.name": "grpo"}),
                smoke_tree(**{"training.learning_rate": 2e-3}), smoke_tree(**{"eval.max_new_tokens": 9}),
                smoke_tree(**{"prompt.instruction": "x"})]
    hashes = {TrialSpec.model_validate(v).trial_hash() for v in variants}
    assert len(hashes) == len(variants) and base.trial_hash() not in hashes
    baseline = base.baseline()
    assert baseline.trial_hash() != base.trial_hash()
    # the baseline depends on model, prompt and eval only, not on training fields
    assert TrialSpec.model_validate(smoke_tree(**{"lora.rank": 8})).baseline().trial_hash() == baseline.trial_hash()


def test_fields_added_later_keep_earlier_trial_ids():
    """stop_at_step, global_batch_processes and eval.grader at their "as before" values are left out of the spec's
    text, so trials hashed before they existed keep their ids; any other value is part of the id."""
    base = TrialSpec()
    assert base.trial_hash() == "69fcb8f288"  # main at 516aba2, before these fields existed
    for change in ({"training": {"stop_at_step": 5}}, {"training": {"global_batch_processes": 2}},
                   {"eval": {"grader": "math_verify"}}):
        changed = TrialSpec.model_validate(change)
        assert changed.trial_hash() != base.trial_hash()
        assert TrialSpec.model_validate_json(changed.canonical_json()) == changed
