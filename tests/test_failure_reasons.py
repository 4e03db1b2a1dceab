"""Issue 13: golds as written and as compared in every outcome row, a regular-expression answer format, samples
cut off at max_new_tokens (``truncated``), and the report's shares of format failures vs wrong answers per arm."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import torch
from test_golds import write_jsonl
from test_report_tables import write_sweep
from typer.testing import CliRunner

from tina_sweep.cli import app
from tina_sweep.trial.spec import DataSpec, EvalSpec, ModelSpec
from tina_sweep.trial.datasets import Problem, gold_answers, load_benchmark, load_file
from tina_sweep.trial.evaluate.local import generate, load_eval_model
from tina_sweep.trial.evaluate.scoring import problem_outcome
from tina_sweep.trial.grading import grade, normalised_gold
from tina_sweep.report import build_report
from tina_sweep.report.frame import load_outcomes
from tina_sweep.report.stats import failure_shares

# ---------------------------------------------------------------- answer_format regex

APPLES = [{"question": "Tom has 4 apples and buys 5 more. How many apples?", "answer": "Answer: 9 apples"},
          {"question": "A box holds 15 balls. How many balls?", "answer": "Answer: 15 balls"}]


def test_regex_reads_the_gold_from_its_one_group(tmp_path):
    data = write_jsonl(tmp_path / "apples.jsonl", APPLES)
    problems = load_file(data, "question", "answer", "regex", "apples", r"Answer:\s*(\d+)")
    assert [p.answers for p in problems] == [("9",), ("15",)]
    assert [p.raw_answer for p in problems] == ["Answer: 9 apples", "Answer: 15 balls"]
    assert grade("so \\boxed{9}", list(problems[0].answers)) and not grade("\\boxed{15}", list(problems[0].answers))
    spec = DataSpec(name="apples", path=str(data), answer_format="regex", answer_pattern=r"Answer:\s*(\d+)")
    assert [p.answers for p in load_benchmark(spec)] == [("9",), ("15",)]


def test_regex_that_finds_nothing_names_the_row(tmp_path):
    with pytest.raises(ValueError, match="finds no answer in 'nine apples'"):
        gold_answers("nine apples", "regex", r"(\d+)")
    data = write_jsonl(tmp_path / "apples.jsonl", APPLES + [{"question": "q?", "answer": "none"}])
    with pytest.raises(ValueError, match="apples: line 3: unreadable answer"):
        load_file(data, "question", "answer", "regex", "apples", r"Answer:\s*(\d+)")


@pytest.mark.parametrize("fields, message", [
    ({"answer_format": "regex"}, "eval.benchmarks.0.answer_pattern: answer_format regex needs a regular expression "
                                 "with one group"),
    ({"answer_format": "regex", "answer_pattern": r"(\d+) (\w+)"}, "must have exactly one group (the gold), has 2"),
    ({"answer_format": "regex", "answer_pattern": r"(\d+"}, "answer_pattern: not a regular expression"),
    ({"answer_format": "number", "answer_pattern": r"(\d+)"}, "answer_pattern: only read with answer_format regex"),
])
def test_bad_regex_settings_are_one_line_errors(tmp_path, fields, message):
    data = write_jsonl(tmp_path / "apples.jsonl", APPLES)
    study = tmp_path / "apples_study.py"
    benchmark = {"name": "apples", "path": str(data), **fields}
    study.write_text("from tina_sweep import Study\n"
                     "study = Study(name='apples', description='regex golds', axes={'lora.rank': [2]},\n"
                     f"              base={{'eval.benchmarks': [{benchmark!r}]}})\n")
    result = CliRunner().invoke(app, ["run", str(study), "--scale", "smoke", "--sweeps-dir", str(tmp_path / "sweeps")],
                                env={"COLUMNS": "240"})
    assert result.exit_code not in (0, None)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "sweeps").exists()


def test_a_user_file_with_unit_golds_and_the_regex_format_passes_preflight(tmp_path):
    from tina_sweep.run.preflight import check_data_file

    data = write_jsonl(tmp_path / "apples.jsonl", APPLES)
    spec = DataSpec(name="apples", path=str(data), answer_format="regex", answer_pattern=r"(\d+) \w+$")
    assert check_data_file(spec, "eval.benchmarks.0.path") == 2
    plain = DataSpec(name="apples", path=str(data))
    with pytest.raises(ValueError, match="2 of 2 golds cannot be graded"):
        check_data_file(plain, "eval.benchmarks.0.path")


# ---------------------------------------------------------------- golds as written and as compared

@pytest.mark.parametrize("gold, compared", [("1{,}000", "1000"), ("\\frac{1}{2}", "0.5"), ("27.0", "27"),
                                            ("\\$18", "18"), ("\\frac{\\sqrt3}{2}", "sqrt(3)/2"), ("20\\%", "20")])
def test_normalised_gold(gold, compared):
    assert normalised_gold(gold) == compared


def test_outcome_rows_keep_the_gold_as_written_and_as_compared():
    problem = Problem("apples-0", "How many apples?", ("9",), raw_answer="Answer: 9 apples")
    outcome = problem_outcome(problem, ["\\boxed{9}", "no box"], "strict", [False, True])
    assert outcome["answer_written"] == "Answer: 9 apples" and outcome["answers"] == ["9"]
    assert outcome["answers_compared"] == ["9"] and outcome["reasons"] == [None, "truncated"]
    math = problem_outcome(Problem("m-0", "q", ("\\dfrac{1}{4}",)), ["\\boxed{0.25}"], "math_verify")
    assert math["answers_compared"] == ["1/4"] and "answer_written" not in math and "reasons" not in math


def test_a_box_written_before_the_cut_is_graded_by_its_content():
    outcome = problem_outcome(Problem("p", "q", ("55",)), ["\\boxed{54} and then on and on", "\\boxed{55"],
                              "strict", [True, True])
    assert outcome["reasons"] == ["wrong_value", "truncated"]


# ---------------------------------------------------------------- truncation, from the engines

def test_transformers_generation_flags_samples_cut_at_max_new_tokens(tiny_model_dir):
    model, tokenizer = load_eval_model(ModelSpec(name="tiny-random-qwen2"), None, "float32")
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                             add_generation_prompt=True) for q in ("What is 1 + 1?", "What is 2 + 3?")]
    spec = EvalSpec(max_new_tokens=5, samples_per_problem=2, temperature=0.7)
    original = model.generation_config.eos_token_id
    try:
        model.generation_config.eos_token_id = None  # nothing ends a sample: every one runs to the limit
        texts, tokens, cut = generate(model, tokenizer, prompts, spec, seed=0)
        assert cut == [[True, True], [True, True]] and tokens == 2 * 2 * 5
        model.generation_config.eos_token_id = list(range(len(tokenizer)))  # any token ends it at once
        texts, tokens, cut = generate(model, tokenizer, prompts, spec, seed=0)
        assert cut == [[False, False], [False, False]]
    finally:
        model.generation_config.eos_token_id = original
    assert torch.is_grad_enabled()


# ---------------------------------------------------------------- the report: format failures vs wrong answers

def _explain(sweep: Path, trial_id: str, reasons: list[str | None]) -> None:
    """Give a trial's outcome rows these per-problem reasons (one sample each)."""
    path = sweep / "trials" / trial_id / "eval" / "arithmetic.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["correct"] == [True] for r in rows] == [reason is None for reason in reasons]
    path.write_text("".join(json.dumps({**row, "reasons": [reason]}) + "\n" for row, reason in zip(rows, reasons)))


def test_report_shows_per_arm_shares_of_format_failures_and_wrong_answers(tmp_path):
    sweep = write_sweep(tmp_path, checkpoints=False)
    _explain(sweep, "base-x", [None, "no_box", "truncated", "wrong_value"])
    _explain(sweep, "rank=2-s1-aaa", [None, None, "not_a_number", "wrong_value"])
    _explain(sweep, "rank=2-s2-bbb", [None, None, None, "empty_box"])
    _explain(sweep, "rank=4-s1-ccc", ["truncated", "truncated", "no_box", "truncated"])
    shares = failure_shares(load_outcomes(sweep))
    by_arm = {row["arm"]: row for row in shares.iter_rows(named=True)}
    assert by_arm["base"]["samples"] == 4 and by_arm["base"]["correct_share"] == 0.25
    assert by_arm["base"]["format_failures_share"] == 0.5 and by_arm["base"]["truncated_share"] == 0.25
    rank2 = by_arm["rank=2"]  # two seeds pooled: 8 samples
    assert rank2["samples"] == 8 and rank2["correct_share"] == 5 / 8
    assert rank2["format_failures_share"] == 1 / 8 and rank2["wrong_answers_share"] == 2 / 8
    assert by_arm["rank=4"]["format_failures_share"] == 1.0 and by_arm["rank=4"]["truncated_share"] == 0.75
    out = build_report(sweep, published=None, n_boot=50)
    table = pl.read_csv(out / "failures.csv")
    assert table.columns == ["section", "Arm", "Samples", "Correct", "Format failures", "of which truncated",
                                 "Wrong answers"]
    assert table.row(by_predicate=pl.col("Arm").str.contains("4"), named=True)["Format failures"] == 100.0
    markdown = (out / "failures.md").read_text(encoding="utf-8")
    assert "Why samples fail" in markdown and "62.5" in markdown  # rank 2: 5 of 8 correct
    assert "Why samples fail" in (out / "index.md").read_text(encoding="utf-8")


def test_no_failures_table_without_reasons(tmp_path):
    sweep = write_sweep(tmp_path, checkpoints=False)  # rows written before reasons existed (or another grader)
    assert failure_shares(load_outcomes(sweep)).is_empty()
    out = build_report(sweep, published=None, n_boot=50)
    assert not (out / "failures.md").exists()
