"""Issue 13: a benchmark whose golds carry units is either read right (``answer_format: number``) or refused
before anything runs, in one line -- never a silent Pass@1 of 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tina_sweep.cli import app
from tina_sweep.trial.datasets import gold_answers, load_file
from tina_sweep.trial.grading import grade, ungradable_gold

WORD_PROBLEMS = [{"question": "Tom has 4 apples and buys 5 more. How many apples?", "answer": "9 (apples)"},
                 {"question": "A box holds 15 balls. How many balls?", "answer": "15 (balls)"},
                 {"question": "How long is the rod?", "answer": "5 cm"}]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def study_with_benchmark(tmp_path: Path, data: Path, answer_format: str) -> Path:
    study = tmp_path / "units.py"
    study.write_text(
        "from tina_sweep import Study\n"
        "study = Study(name='units', description='a benchmark of unit-annotated golds', axes={'lora.rank': [2]},\n"
        f"              base={{'eval.benchmarks': [{{'name': 'word_problems', 'path': {str(data)!r}, "
        f"'answer_format': {answer_format!r}}}]}})\n")
    return study


def test_unit_golds_are_refused_in_one_line_before_anything_runs(tmp_path):
    data = write_jsonl(tmp_path / "word_problems.jsonl", WORD_PROBLEMS)
    result = CliRunner().invoke(app, ["run", str(study_with_benchmark(tmp_path, data, "plain")), "--scale", "smoke",
                                      "--sweeps-dir", str(tmp_path / "sweeps")], env={"COLUMNS": "240"})
    assert result.exit_code not in (0, None)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "eval.benchmarks.0: word_problems: 3 of 3 golds cannot be graded, e.g. '9 (apples)'" in lines[0]
    assert "answer_format" in lines[0] and "number" in lines[0]
    assert not (tmp_path / "sweeps").exists()


def test_unit_golds_grade_right_with_answer_format_number(tmp_path):
    data = write_jsonl(tmp_path / "word_problems.jsonl", WORD_PROBLEMS)
    problems = load_file(data, "question", "answer", "number", "word_problems")
    assert [p.answers for p in problems] == [("9",), ("15",), ("5",)]
    assert all(ungradable_gold(gold) is None for p in problems for gold in p.answers)
    assert [grade(f"So the answer is \\boxed{{{n}}}.", list(p.answers)) for p, n in zip(problems, (9, 15, 5))] == \
        [True, True, True]
    assert not grade("\\boxed{10}", list(problems[0].answers))


@pytest.mark.parametrize("gold, reason", [("9 (apples)", "unit or label"), ("5 cm", "unit or label"),
                                          ("1,000 dollars", "unit or label"), ("nine apples", "words"),
                                          ("Answer: 9 apples", "a number among words"),
                                          ("about 12 eggs", "a number among words")])
def test_golds_that_cannot_be_graded_say_why(gold, reason):
    assert reason in ungradable_gold(gold)


@pytest.mark.parametrize("gold", ["9", "$18", "20\\%", "90^\\circ", "1{,}000", "\\frac{1}{2}", "x^2 + 1", "2k",
                                  "s^2 + bs + 1", "\\sin 3x + abc", "\\frac{1}{LCs^2 + RCs + 1}", "28 percent",
                                  "\\begin{pmatrix} -7 \\\\ 16 \\end{pmatrix}", "5 \\text{ cm}",
                                  "\\text{(C)}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "odd"])
def test_golds_people_write_are_gradable(gold):
    assert ungradable_gold(gold) is None


@pytest.mark.parametrize("raw, fmt, expect", [
    ("9 (apples)", "number", ("9",)), ("$18", "number", ("18",)), ("1,000 dollars", "number", ("1000",)),
    ("-2.5 degrees", "number", ("-2.5",)), ("2/3 cup", "number", ("2/3",)),
    ("(C)", "choice", ("C",)), ("\\text{(C)}", "choice", ("C",)), ("b", "choice", ("B",)), ("C.", "choice", ("C",)),
])
def test_answer_formats_read_the_gold(raw, fmt, expect):
    assert gold_answers(raw, fmt) == expect


@pytest.mark.parametrize("raw, fmt", [("nine apples", "number"), ("apples 9", "number"), ("CD", "choice"),
                                      ("9", "choice")])
def test_answer_formats_refuse_what_they_cannot_read(raw, fmt):
    with pytest.raises(ValueError):
        gold_answers(raw, fmt)


@pytest.mark.parametrize("name", ["aime24", "aime25", "amc23", "math500", "minerva", "gsm8k", "mawps", "svamp"])
def test_no_bundled_benchmark_gold_is_refused(name):
    """The refusal rules (units, labels, words beside a number) leave every gold of the catalog's benchmarks alone."""
    from tina_sweep.trial.spec import DataSpec
    from tina_sweep.trial.datasets import load_benchmark
    from tina_sweep.run.preflight import check_golds

    check_golds(name, load_benchmark(DataSpec(name=name)), "eval.benchmarks.0")
