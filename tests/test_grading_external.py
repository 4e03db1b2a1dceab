"""The strict grader against others' expectations (issue 13 item 5): cases from the tests of Math-Verify
(huggingface/Math-Verify, tests/) and of LightEval's math extraction (huggingface/lighteval,
tests/metrics/test_extractive_match.py), kept in ``tests/data/external_grading_cases.json``.

Each case names its source (repository, commit, file, line and the quoted line(s)), the source's gold and prediction,
and the gold and completion graded here: the source's text, or -- where a test is about a bare or inline LaTeX answer --
that answer put in a ``\\boxed{}`` (``completion_from: boxed``) or the gold's math or box (``gold_from``). Where the
strict grader disagrees on purpose, the case says why (``disagreement``) and the README's grading section lists it.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from tina_sweep.trial.grading import grade, last_boxed

ROOT = Path(__file__).resolve().parent.parent
CASES = json.loads((ROOT / "tests" / "data" / "external_grading_cases.json").read_text(encoding="utf-8"))
SOURCES = {"huggingface/Math-Verify", "huggingface/lighteval"}
README_TABLE = "Where strict grading disagrees with Math-Verify's and LightEval's tests, on purpose"


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_external_case(case):
    """Their verdict, except where the case says why strict grading differs on purpose."""
    want = case["expected"] if "disagreement" not in case else not case["expected"]
    assert grade(case["completion"], [case["gold"]]) is want


def test_cases_are_many_and_from_both_sources():
    assert len(CASES) >= 60
    assert {case["source"]["repo"] for case in CASES} == SOURCES
    assert len({case["id"] for case in CASES}) == len(CASES)
    assert {True, False} <= {case["expected"] for case in CASES}


def _as_written(text: str) -> list[str]:
    """``text`` as a Python string literal in the source may spell it: raw, or with escapes."""
    escaped = text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return [text, escaped]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_quote_holds_what_the_case_claims(case):
    """A cheap check of the transcription: the quoted source holds the gold or the prediction, a parametrized tuple
    holds both and the verdict; and what is graded here is the source's text, or its answer put in a box."""
    source, quote = case["source"], case["source"]["quote"]
    assert source["repo"] in SOURCES and source["path"].startswith("tests/") and source["line"] > 0
    assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    assert any(form in quote for text in (case["source_gold"], case["source_prediction"]) for form in _as_written(text))
    if quote.lstrip().startswith("("):  # a parametrized case: (gold, pred, [match types,] expected, ...)
        row = ast.literal_eval("[" + quote.strip() + "\n]")[0]
        assert row[0] == case["source_gold"] and row[1] == case["source_prediction"]
        assert bool(next(value for value in row[2:] if isinstance(value, int))) is case["expected"]

    gold, source_gold = case["gold"], case["source_gold"]
    assert {"verbatim": gold == source_gold, "math": source_gold.strip().startswith(f"${gold}$"),
            "box": gold == last_boxed(source_gold)}[case["gold_from"]]
    completion, prediction = case["completion"], case["source_prediction"]
    if case["completion_from"] == "verbatim":
        assert completion == prediction
    else:
        box = last_boxed(completion)
        assert case["completion_from"] == "boxed" and box is not None
        assert completion.replace(f"\\boxed{{{box}}}", box, 1) == prediction


def _readme_disagreements() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Grading"):]
    section = section[:section.index("\n## ", 1)]
    table = section[section.index(README_TABLE):]
    rows = [line for line in table.split("\n\n", 2)[1].splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]  # past header and rule


def test_readme_lists_exactly_the_disagreements():
    rows = _readme_disagreements()
    by_id = {case["id"]: case for case in CASES}
    listed = [row[0].strip("`") for row in rows]
    assert sorted(listed) == sorted(case["id"] for case in CASES if "disagreement" in case)
    for row in rows:
        case = by_id[row[0].strip("`")]
        theirs, ours = ("right" if case["expected"] else "wrong"), ("wrong" if case["expected"] else "right")
        assert row[-3:-1] == [theirs, ours], row
