"""Evaluation: Pass@1 arithmetic and real generation with the tiny model."""

from __future__ import annotations

import json

import pytest
import torch

from tina_sweep.trial.spec import DataSpec, EvalSpec, ModelSpec, PromptSpec
from tina_sweep.trial.evaluate import evaluate_model, summary
from tina_sweep.trial.evaluate.scoring import pass_at_1

TINY = ModelSpec(name="tiny-random-qwen2")
PROMPT = PromptSpec(system="Give only the final number inside \\boxed{}.", instruction="")


def test_pass_at_1_hand_made():
    assert pass_at_1([]) == 0.0
    assert pass_at_1([[True], [False], [True], [True]]) == 0.75
    assert pass_at_1([[True, False], [False, False]]) == 0.25
    assert pass_at_1([[True, True, True], [True, False, False], [False, False, False]]) == pytest.approx(4 / 9)
    # mean over problems of per-problem rates, not the pooled rate
    assert pass_at_1([[True], [False, False, False]]) == 0.5


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def greedy(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("eval-greedy")
    spec = EvalSpec(benchmarks=[DataSpec(name="arithmetic", limit=4)], max_new_tokens=8, batch_size=8)
    progress = []
    results = evaluate_model(TINY, PROMPT, spec, None, out, seed=0,
                             on_progress=lambda name, done, total: progress.append((name, done, total)))
    return out, results, progress


def test_greedy_eval_writes_per_problem_rows(greedy):
    out, results, progress = greedy
    rows = _rows(out / "arithmetic.jsonl")
    assert len(rows) == 4
    for row in rows:
        assert {"id", "correct", "success_rate", "answers", "extracted", "completions", "grader"} <= set(row)
        assert row["grader"] == "strict" and "choices" not in row
        assert row["id"].startswith("What is ")
        assert len(row["correct"]) == len(row["completions"]) == 1
        assert row["success_rate"] == sum(row["correct"]) / len(row["correct"])
        assert isinstance(row["completions"][0], str)
    [result] = results
    assert result.benchmark == "arithmetic" and result.problems == 4 and result.samples_per_problem == 1
    assert result.pass_at_1 == pytest.approx(sum(r["success_rate"] for r in rows) / 4)
    assert 0 < result.generated_tokens <= 4 * 8
    assert progress == [("arithmetic", 4, 4)]
    numbers = summary(results)["arithmetic"]
    assert numbers["problems"] == 4 and "outcomes" not in numbers and numbers["grader"] == "strict"
    # where generation ran is recorded (on a GPU machine the model is moved to "cuda:0")
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert result.device == expected and numbers["device"] == expected


def test_greedy_eval_is_deterministic(greedy, tmp_path):
    out, _, _ = greedy
    spec = EvalSpec(benchmarks=[DataSpec(name="arithmetic", limit=4)], max_new_tokens=8, batch_size=8)
    evaluate_model(TINY, PROMPT, spec, None, tmp_path, seed=123)
    first = [r["completions"] for r in _rows(out / "arithmetic.jsonl")]
    again = [r["completions"] for r in _rows(tmp_path / "arithmetic.jsonl")]
    assert again == first  # greedy: the seed does not change the text


def test_sampled_eval_has_n_completions_per_problem(tmp_path, tiny_model_dir):
    spec = EvalSpec(benchmarks=[DataSpec(name="arithmetic", limit=4), DataSpec(name="mawps", limit=2)],
                    samples_per_problem=3, temperature=1.0, max_new_tokens=6, batch_size=6)
    results = evaluate_model(TINY, PROMPT, spec, None, tmp_path, seed=0)
    assert [r.benchmark for r in results] == ["arithmetic", "mawps"]
    for result, count in zip(results, (4, 2)):
        rows = _rows(tmp_path / f"{result.benchmark}.jsonl")
        assert len(rows) == count == result.problems
        for row in rows:
            assert len(row["completions"]) == len(row["correct"]) == len(row["extracted"]) == 3
            assert row["success_rate"] in (0, 1 / 3, 2 / 3, 1)
        assert result.samples_per_problem == 3
        assert 0 < result.generated_tokens <= count * 3 * 6


def test_eval_with_trained_adapter(trained_dr_grpo, tmp_path):
    spec = EvalSpec(benchmarks=[DataSpec(name="arithmetic", limit=2)], max_new_tokens=4, batch_size=2)
    [result] = evaluate_model(TINY, PROMPT, spec, trained_dr_grpo.outcome.adapter_dir, tmp_path, seed=0)
    assert result.problems == 2
    assert len(_rows(tmp_path / "arithmetic.jsonl")) == 2


def test_graded_rows_use_the_strict_grader(tmp_path, tiny_model_dir, monkeypatch):
    """Force the model's text: the row's `correct` follows the last box, not the bare number."""
    import tina_sweep.trial.evaluate.local as evaluate

    texts = {"What is 1 + 1?": "\\boxed{2}", "What is 2 + 2?": "2 + 2 = 4"}

    def fake_generate(model, tokenizer, prompts, spec, seed):
        return [[texts[q]] for q in order[:len(prompts)]], 3, [[False], [True]][:len(prompts)]

    order = list(texts)
    monkeypatch.setattr(evaluate, "generate", fake_generate)
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps({"question": q, "answer": a}) for q, a in zip(order, ["2", "4"])) + "\n")
    spec = EvalSpec(benchmarks=[DataSpec(name="mine", path=str(path))], batch_size=8)
    [result] = evaluate_model(TINY, PROMPT, spec, None, tmp_path / "out", seed=0)
    rows = _rows(tmp_path / "out" / "mine.jsonl")
    assert [r["correct"] for r in rows] == [[True], [False]]
    assert [r["extracted"] for r in rows] == [["2"], [None]]
    assert result.pass_at_1 == 0.5 and result.generated_tokens == 3
    # the unboxed answer ran to max_new_tokens: a format failure, truncated; the golds as compared are saved
    assert [r["truncated"] for r in rows] == [[False], [True]] and [r["reasons"] for r in rows] == [[None], ["truncated"]]
    assert [r["answers_compared"] for r in rows] == [["2"], ["4"]]


@pytest.mark.parametrize("grader,expected", [("strict", [[False], [True], [True]]),
                                             ("math_verify", [[True], [False], [True]])])
def test_eval_grader_decides_and_is_recorded(tmp_path, tiny_model_dir, monkeypatch, grader, expected):
    """The same forced completions graded by each grader: an unboxed final answer, a first-vs-last box, and a
    plain box; every row and the result name the grader."""
    import tina_sweep.trial.evaluate.local as evaluate

    texts = {"q1": "So the answer is 2", "q2": "\\boxed{5} or rather \\boxed{3}", "q3": "\\boxed{\\frac{1}{2}}"}

    def fake_generate(model, tokenizer, prompts, spec, seed):
        return [[texts[q]] for q in list(texts)[:len(prompts)]], 3, [[False]] * len(prompts)

    monkeypatch.setattr(evaluate, "generate", fake_generate)
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in zip(texts, ["2", "3", "0.5"])))
    spec = EvalSpec(benchmarks=[DataSpec(name="mine", path=str(path))], batch_size=8, grader=grader)
    [result] = evaluate_model(TINY, PROMPT, spec, None, tmp_path / "out", seed=0)
    rows = _rows(tmp_path / "out" / "mine.jsonl")
    assert [r["correct"] for r in rows] == expected
    assert {r["grader"] for r in rows} == {grader} and result.grader == grader
    assert summary([result])["mine"]["grader"] == grader


def test_lighteval_results_are_labelled_lighteval(tmp_path, monkeypatch):
    from tina_sweep.trial.evaluate import lighteval_backend
    from tina_sweep.trial.evaluate import BenchmarkResult

    monkeypatch.setattr(lighteval_backend, "evaluate_with_lighteval",
                        lambda *args: [BenchmarkResult("aime24", 0.3, 30, 1, 0, 1.0)])
    spec = EvalSpec(backend="lighteval", benchmarks=[DataSpec(name="aime24")], grader="math_verify")
    [result] = evaluate_model(TINY, PROMPT, spec, None, tmp_path, seed=0)
    assert result.grader == "lighteval"  # LightEval's own metrics graded it, whatever eval.grader says


def test_eval_grader_is_checked_in_one_line_and_keeps_trial_ids():
    from pydantic import ValidationError

    from tina_sweep.trial.spec import TrialSpec, first_error_line

    with pytest.raises(ValidationError) as error:
        TrialSpec.model_validate({"eval": {"grader": "x"}})
    assert first_error_line(error.value) == "eval.grader: must be one of strict, math_verify, got 'x'"
    # the default grader is left out of the spec's JSON: trial ids from before eval.grader are unchanged
    assert TrialSpec().trial_hash() == "69fcb8f288"  # main at 516aba2, before eval.grader existed
    assert "grader" not in TrialSpec().canonical_json()
    other = TrialSpec.model_validate({"eval": {"grader": "math_verify"}})
    assert other.trial_hash() != TrialSpec().trial_hash()
    assert TrialSpec.model_validate_json(other.canonical_json()).eval.grader == "math_verify"
