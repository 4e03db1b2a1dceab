"""Report tables and frames: the paper layout on hand-made data (bold, mean ± std, decimals), the writers
(LaTeX compiles with pdflatex when installed), a hand-made sweep folder read back (checkpoints, share of an
epoch), and `tina-sweep report` on a finished smoke study."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from conftest import STUDIES_DIR, smoke_spec
from test_report_stats import make_data
from typer.testing import CliRunner

from tina_sweep.cli import app
from tina_sweep.report import build_report
from tina_sweep.report.frame import StudyInfo, load_frame, load_outcomes
from tina_sweep.report.stats import arm_summary
from tina_sweep.report.tables import (Section, cost_table, differences_table, latex_document, pass_at_1_table,
                                      study_pass_at_1_table, study_sections, to_csv, to_latex, to_markdown, trial_costs)

RANKS = {"r4": 4, "r16": 16, "r64": 64}


def hand_summary() -> tuple[pl.DataFrame, pl.DataFrame]:
    """base, r4 (2 seeds), r16 and r64 on benchmarks a (4 problems) and b (2 problems)."""
    arms = {
        "base": [{"a": [1, 0, 0, 0], "b": [0, 0]}],
        "r4": [{"a": [1, 1, 0, 0], "b": [1, 0]}, {"a": [1, 0, 0, 0], "b": [1, 1]}],
        "r16": [{"a": [1, 1, 1, 0], "b": [0, 0]}],
        "r64": [{"a": [1, 1, 1, 0], "b": [1, 0]}],
    }
    frame, outcomes = make_data(arms, rank=RANKS)
    return frame, arm_summary(frame, outcomes, n_boot=200, seed=0)


def cells(table, section: int = 0) -> list[list[tuple[str, bool]]]:
    return [[(c.text, c.bold) for c in row] for row in table.sections[section][1]]


def test_pass_at_1_table_layout_bold_and_mean_std():
    _, summary = hand_summary()
    info = StudyInfo("hand", "cpu", "grid", {"lora.rank": [64, 16, 4]}, {}, [40, 41])
    table = study_pass_at_1_table(summary, info)
    assert table.headers == ["LoRA rank", "Steps (% of 1 epoch)", "a", "b", "Avg"]
    rows = cells(table)
    # base first, then the study's order of axis values
    assert [r[0][0] for r in rows] == ["base model", "64", "16", "4"]
    base, r64, r16, r4 = rows
    assert base[1:] == [("–", False), ("25.00", False), ("0.00", False), ("12.50", False)]
    # r4: a = (50 + 25) / 2 ± std, b = (50 + 100) / 2; Avg = mean of the columns, ± the std of seed averages
    assert r4[1] == ("5", False)
    assert r4[2] == ("37.50 ± 17.68", False)
    assert r4[3] == ("75.00 ± 35.36", True)
    assert r4[4] == ("56.25 ± 8.84", False)
    # best per column bold, ties both bold: a = 75 for r16 and r64; Avg best is r64 (62.50)
    assert r16[2] == ("75.00", True) and r64[2] == ("75.00", True)
    assert r64[4] == ("62.50", True) and r16[4] == ("37.50", False)
    assert "n = 1–2 seeds per arm" in table.caption and "final checkpoint" in table.caption


def test_bold_is_per_section_and_single_rows_are_not_bold():
    _, summary = hand_summary()
    sections = [Section("first", ["base", "r4"]), Section("second", ["r64"])]
    table = pass_at_1_table(summary, sections, keys=[("Arm", "label")], name="t", caption="c")
    first, second = cells(table, 0), cells(table, 1)
    assert first[0][2] == ("25.00", False) and first[1][2][1] is True  # r4 beats base on a within the section
    assert not any(bold for _, bold in second[0])


def test_writers():
    _, summary = hand_summary()
    table = study_pass_at_1_table(summary, StudyInfo("my_study", None, "grid", {"lora.rank": [4, 16, 64]}, {}, []))
    latex = to_latex(table)
    assert r"\toprule" in latex and r"\bottomrule" in latex and r"\midrule" in latex
    assert r"\textbf{75.00}" in latex and r"$\pm$" in latex and r"my\_study" in latex and "±" not in latex
    markdown = to_markdown(table)
    assert "| LoRA rank | Steps (% of 1 epoch) | a | b | Avg |" in markdown
    assert ("| 4 | 5 | 37.50 ± 17.68 [0.00, 87.50] | **75.00 ± 35.36** [0.00, 100.00] | 56.25 ± 8.84 [25.00, 87.50] |"
            in markdown)  # every Pass@1 carries its bootstrap interval, outside the bold
    assert r"\textbf{75.00 $\pm$ 35.36} {\scriptsize [0.00, 100.00]}" in latex
    rows = list(csv.reader(io.StringIO(to_csv(table))))
    assert rows[0] == ["section", "LoRA rank", "Steps (% of 1 epoch)", "a", "b", "Avg"]
    assert rows[1][1:] == ["base model", "–", "25.00 [0.00, 75.00]", "0.00 [0.00, 0.00]", "12.50 [0.00, 37.50]"]


def test_differences_table_marks_intervals_that_exclude_zero():
    frame, outcomes = make_data({"base": [{"a": [0.0] * 10}], "good": [{"a": [1.0] * 10}],
                                 "same": [{"a": [0.0] * 10}]}, rank={"good": 4, "same": 8})
    table = differences_table(arm_summary(frame, outcomes, n_boot=100), confidence=0.95, n_boot=100)
    vs_base = {r[0][0]: r[1:] for r in cells(table, 0)}
    assert vs_base["lora.rank=4"][0] == ("+100.00 [+100.00, +100.00]", True)
    assert vs_base["lora.rank=8"][0] == ("+0.00 [+0.00, +0.00]", False)
    assert table.sections[1][0] == "minus the best arm (lora.rank=4)"
    assert "95% paired bootstrap" in table.caption


def test_cost_table_totals_and_decimals():
    frame, _ = make_data({"base": [{"a": [0.0]}], "x": [{"a": [1.0]}, {"a": [1.0]}]}, rank={"x": 2})
    rows = trial_costs(frame)
    assert rows["label"].to_list() == ["base model", "lora.rank=2, seed 40", "lora.rank=2, seed 41"]
    table = cost_table(rows, caption="c")
    assert cells(table, 1) == [[("Total: all trials", False), ("2.00", False), ("1.50", False), ("3.50", False)]]
    whole = cost_table(pl.DataFrame({"label": ["t"], "train_usd": [3.0], "eval_usd": [1.0], "total_usd": [4.0]}),
                       caption="c")
    assert cells(whole)[0][1:] == [("3", False), ("1", False), ("4", False)]
    tiny = cost_table(pl.DataFrame({"label": ["t"], "train_usd": [0.0123], "eval_usd": [0.002],
                                    "total_usd": [0.0143]}), caption="c")
    assert cells(tiny)[0][1:] == [("0.0123", False), ("0.0020", False), ("0.0143", False)]


def test_one_at_a_time_sections_vary_one_axis_around_the_centre():
    summary = pl.DataFrame({
        "arm": ["base", "c", "r8", "lr", "both"], "label": ["base model", "c", "r8", "lr", "both"],
        "kind": ["baseline"] + ["trial"] * 4, "lora.rank": [None, 4, 8, 4, 8],
        "training.learning_rate": [None, 1e-4, 1e-4, 1e-5, 1e-5], "benchmark": ["a"] * 5})
    info = StudyInfo("s", None, "one_at_a_time", {"lora.rank": [4, 8], "training.learning_rate": [1e-4, 1e-5]},
                     {}, [])
    sections = study_sections(summary, info)
    assert sections == [Section("LoRA rank", ["base", "c", "r8"]), Section("Learning rate", ["base", "c", "lr"])]


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_document_compiles(tmp_path):
    frame, summary = hand_summary()
    info = StudyInfo("hand_made", "cpu", "grid", {"lora.rank": [4, 16, 64]}, {}, [])
    tables = [study_pass_at_1_table(summary, info), differences_table(summary, confidence=0.95, n_boot=200),
              cost_table(trial_costs(frame), caption="Cost & more: 100% of $ in_total")]
    (tmp_path / "t.tex").write_text(latex_document(tables))
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "t.pdf").is_file()


# ---------------------------------------------------------------- a hand-made sweep folder

def write_sweep(root: Path, *, checkpoints: bool = True) -> Path:
    """A finished study of two arms (rank 2 with seeds 1 and 2, rank 4 with seed 1) and the base model; the
    rank-2 seed-1 trial also has checkpoint-5 (better) and checkpoint-10 (= final); a stale trial from an
    earlier study version and a running trial (no result.json) sit beside them."""
    sweep = root / "hand"
    train_file = root / "train.jsonl"
    train_file.write_text("".join(json.dumps({"question": f"q{i}", "answer": str(i)}) + "\n" for i in range(40)))
    jobs, specs = [], {}
    for trial_id, rank, seed in (("rank=2-s1-aaa", 2, 1), ("rank=2-s2-bbb", 2, 2), ("rank=4-s1-ccc", 4, 1),
                                 ("rank=4-s2-running", 4, 2)):
        spec = smoke_spec(**{"lora.rank": rank, "seed": seed, "training.prompts_per_step": 2,
                             "training.gradient_accumulation_steps": 2, "dataset.path": str(train_file),
                             "dataset.name": "mine", "dataset.limit": 20}).model_dump(mode="json")
        specs[trial_id] = spec
        jobs.append({"trial_id": trial_id, "kind": "trial", "axes": {"lora.rank": rank, "seed": seed}, "spec": spec})
    jobs.insert(0, {"trial_id": "base-x", "kind": "baseline", "axes": {}, "spec": {}})
    study = {"name": "hand", "axes": {"lora.rank": [2, 4]}, "seeds": [1, 2], "design": "grid", "base": {},
             "scales": {"smoke": {"base": {}, "axes": {"lora.rank": [4, 2]}, "seeds": None}}}
    sweep.mkdir(parents=True)
    (sweep / "study.json").write_text(json.dumps({"study": study, "scale": "smoke", "jobs": jobs}))
    outcomes = {"base-x": [1, 0, 0, 0], "rank=2-s1-aaa": [1, 1, 0, 0], "rank=2-s2-bbb": [1, 1, 1, 0],
                "rank=4-s1-ccc": [0, 0, 0, 0], "stale-old": [1, 1, 1, 1]}
    for trial_id, correct in outcomes.items():
        kind = "baseline" if trial_id.startswith("base") else "trial"
        job = next((j for j in jobs if j["trial_id"] == trial_id), {"axes": {"lora.rank": 2, "seed": 1}})
        result = {"trial_id": trial_id, "kind": kind, "axes": job["axes"],
                  "pass_at_1": {"arithmetic": sum(correct) / 4}, "average": sum(correct) / 4,
                  "benchmarks": {"arithmetic": {"problems": 4, "samples_per_problem": 1}},
                  "train_steps": 0 if kind == "baseline" else 10,
                  "cost": {"train_seconds": 10.0, "eval_seconds": 2.0, "device": "cpu", "device_count": 1,
                           "device_hours": 0.004, "train_usd": 0.01, "eval_usd": 0.002, "total_usd": 0.012}}
        eval_dirs = {"eval": correct}
        if checkpoints and trial_id == "rank=2-s1-aaa":
            result["checkpoints"] = {
                "checkpoint-5": {"step": 5, "pass_at_1": {"arithmetic": 1.0}, "average": 1.0,
                                 "eval_dir": "eval/checkpoint-5"},
                "checkpoint-10": {"step": 10, "pass_at_1": {"arithmetic": 0.5}, "average": 0.5,
                                  "eval_dir": "eval/checkpoint-10"}}
            eval_dirs |= {"eval/checkpoint-5": [1, 1, 1, 1], "eval/checkpoint-10": correct}
        trial_dir = sweep / "trials" / trial_id
        for folder, values in eval_dirs.items():
            (trial_dir / folder).mkdir(parents=True)
            (trial_dir / folder / "arithmetic.jsonl").write_text("".join(
                json.dumps({"id": f"p{i}", "answers": ["1"], "correct": [bool(v)], "success_rate": float(v)}) + "\n"
                for i, v in enumerate(values)))
        (trial_dir / "result.json").write_text(json.dumps(result))
    (sweep / "trials" / "rank=4-s2-running").mkdir(parents=True)
    return sweep


def test_load_frame_reads_finished_trials_of_the_current_study(tmp_path):
    sweep = write_sweep(tmp_path)
    frame = load_frame(sweep)
    assert frame["trial_id"].to_list() == ["base-x", "rank=2-s1-aaa", "rank=2-s2-bbb", "rank=4-s1-ccc"]
    assert frame["arm"].to_list() == ["base", "rank=2", "rank=2", "rank=4"]
    assert frame["label"].to_list() == ["base model", "lora.rank=2", "lora.rank=2", "lora.rank=4"]
    assert frame["lora.rank"].to_list() == [None, 2, 2, 4] and frame["seed"].to_list() == [None, 1, 2, 1]
    assert frame["study"].unique().to_list() == ["hand"] and frame["checkpoint"].unique().to_list() == ["final"]
    # 10 steps x 2 prompts x 2 accumulation over the 20 problems dataset.limit keeps of the file's 40
    assert frame["steps_pct_epoch"].to_list() == [None, 200.0, 200.0, 200.0]
    for column in ("problems", "samples_per_problem", "train_seconds", "eval_seconds", "device", "device_count",
                   "device_hours", "train_usd", "eval_usd", "total_usd", "train_steps", "pass_at_1", "benchmark"):
        assert column in frame.columns
    outcomes = load_outcomes(sweep)
    assert outcomes.columns == ["trial_id", "arm", "seed", "benchmark", "problem_id", "success_rate", "samples",
                                "format_failures", "wrong_answers", "truncated"]
    assert outcomes.height == 16


def test_best_checkpoint_is_chosen_by_average(tmp_path):
    sweep = write_sweep(tmp_path)
    best = load_frame(sweep, "best")
    chosen = best.filter(pl.col("trial_id") == "rank=2-s1-aaa").row(0, named=True)
    assert (chosen["checkpoint"], chosen["pass_at_1"], chosen["train_steps"]) == ("checkpoint-5", 1.0, 5)
    assert chosen["steps_pct_epoch"] == 100.0
    assert best.filter(pl.col("trial_id") != "rank=2-s1-aaa")["checkpoint"].unique().to_list() == ["final"]
    outcomes = load_outcomes(sweep, "best").filter(pl.col("trial_id") == "rank=2-s1-aaa")
    assert outcomes["success_rate"].to_list() == [1.0] * 4
    out = build_report(sweep, which="best", n_boot=100)
    assert "best checkpoint of each trial" in (out / "pass_at_1.md").read_text()
    assert "87.50 ± 17.68" in (out / "pass_at_1.md").read_text()  # rank 2: seeds at 100 (checkpoint-5) and 75


def test_report_command_errors(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code != 0 and "no such folder" in missing.output
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["report", str(tmp_path / "empty")])
    assert empty.exit_code != 0 and "no finished trial" in empty.output
    assert len(empty.output.strip().splitlines()) == 1


def test_report_on_a_finished_smoke_study(tmp_path, tiny_model_dir):
    runner = CliRunner()
    run = runner.invoke(app, ["run", str(STUDIES_DIR / "smoke.py"), "--scale", "smoke", "--sweeps-dir",
                              str(tmp_path)], env={"COLUMNS": "240"})
    assert run.exit_code == 0, run.output + repr(run.exception)
    sweep = tmp_path / "smoke"
    assert "Report:" in run.output and (sweep / "report" / "pass_at_1.md").is_file()
    shutil.rmtree(sweep / "report")
    result = runner.invoke(app, ["report", str(sweep)], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = sweep / "report"
    for name in ("frame.parquet", "frame.csv", "summary.parquet", "summary.csv", "tables.tex", "tables.md"):
        assert (report / name).is_file(), name
    for table in ("pass_at_1", "differences", "cost"):
        for suffix in (".tex", ".md", ".csv"):
            assert (report / f"{table}{suffix}").is_file(), table + suffix
    frame = pl.read_parquet(report / "frame.parquet")
    assert frame.height == 3 and set(frame["arm"]) == {"base", "rank=2", "rank=4"}
    summary = pl.read_parquet(report / "summary.parquet")
    assert set(summary["benchmark"]) == {"arithmetic", "average"}
    markdown = (report / "pass_at_1.md").read_text()
    assert "| base model |" in markdown and "| 2 |" in markdown and "| 4 |" in markdown
