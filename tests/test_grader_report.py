"""Which grader produced each number: result.json names it per benchmark; the report's frame carries it, the
Pass@1 caption says it (and that published rows were graded by LightEval's math-verify extraction); the results
table says it too."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from test_report_tables import hand_summary, write_sweep

from tina_sweep.report import build_report
from tina_sweep.report.frame import StudyInfo, load_frame
from tina_sweep.report.paper import paper_tables
from tina_sweep.report.tables import PUBLISHED_GRADER, Section, study_pass_at_1_table
from tina_sweep.report.results import results_frame, to_markdown
from tina_sweep.trial.result import TrialResult


def _set_grader(sweep: Path, grader_of: dict[str, str | None], backend: str | None = None) -> list[dict]:
    """Write ``grader`` into each trial's result.json (None: leave it out, as results before graders did)."""
    results = []
    for path in sorted((sweep / "trials").glob("*/result.json")):
        result = json.loads(path.read_text())
        grader = grader_of.get(result["trial_id"], grader_of.get("*"))
        for detail in result["benchmarks"].values():
            if grader is not None:
                detail["grader"] = grader
        if backend:
            result["spec"] = {"eval": {"backend": backend}}
        result["cost"].update(train_tokens=1, eval_tokens=1, peak_memory_gb=1.0)  # what the results table reads
        path.write_text(json.dumps(result))
        results.append(result)
    return results


def _caption(sweep: Path) -> str:
    out = build_report(sweep, published=None, n_boot=50)
    return (out / "pass_at_1.md").read_text(encoding="utf-8").splitlines()[0]


def test_results_without_a_grader_were_strict(tmp_path):
    sweep = write_sweep(tmp_path, checkpoints=False)
    assert set(load_frame(sweep)["grader"].to_list()) == {"strict"}
    assert "Graded by strict (ours: the last \\boxed{} only" in _caption(sweep)


def test_math_verify_numbers_say_so(tmp_path):
    sweep = write_sweep(tmp_path, checkpoints=False)
    results = _set_grader(sweep, {"*": "math_verify"})
    assert set(load_frame(sweep)["grader"].to_list()) == {"math_verify"}
    assert "Graded by math_verify (the paper's: Tina's LightEval math-verify extraction)." in _caption(sweep)
    tex = (sweep / "report" / "pass_at_1.tex").read_text(encoding="utf-8")
    assert "Graded by math\\_verify" in tex
    frame = results_frame([TrialResult.parse(r) for r in results if r["trial_id"] != "stale-old"], ["lora.rank"])
    assert set(frame["grader"].to_list()) == {"math_verify"}
    markdown = to_markdown(frame)
    assert "Pass@1 per benchmark (math_verify grading)" in markdown and "grader" not in markdown.splitlines()[0]


def test_mixed_graders_are_named_per_benchmark_and_per_row(tmp_path):
    sweep = write_sweep(tmp_path, checkpoints=False)
    results = _set_grader(sweep, {"base-x": "strict", "*": "math_verify"})
    caption = _caption(sweep)
    assert "Graded by Arithmetic: strict and math_verify" in caption
    assert "strict (ours" in caption and "math_verify (the paper's" in caption
    frame = results_frame([TrialResult.parse(r) for r in results if r["trial_id"] != "stale-old"], ["lora.rank"])
    markdown = to_markdown(frame)
    header = markdown.splitlines()[0].split(" | ")
    assert "graded by: strict, math_verify" in markdown and header[-1] == "grader |"


def test_lighteval_backend_results_name_lighteval(tmp_path):
    sweep = write_sweep(tmp_path, checkpoints=False)
    _set_grader(sweep, {"*": None}, backend="lighteval")
    assert set(load_frame(sweep)["grader"].to_list()) == {"lighteval"}
    assert "Graded by LightEval's own metrics (lighteval backend)." in _caption(sweep)


def test_published_rows_name_their_grader():
    _, summary = hand_summary()
    info = StudyInfo("hand", "paper", "grid", {"lora.rank": [64, 16, 4]}, {}, [40])
    published = summary.filter(pl.col("arm") == "r4").with_columns(arm=pl.lit("published:x"))
    table = study_pass_at_1_table(summary, info, extra=[(Section("published", ["published:x"]), published)],
                                  grading="Graded by strict.")
    assert table.caption.endswith(f"Graded by strict. Published rows: graded by {PUBLISHED_GRADER}.")
    assert "Published rows" not in study_pass_at_1_table(summary, info).caption
    for table in paper_tables()[:-1]:  # the Pass@1 tables (the last is cost)
        assert f"graded by {PUBLISHED_GRADER}" in table.caption, table.name
