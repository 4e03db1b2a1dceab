"""The Tina paper's published tables rebuilt through the report's table code: the computed Avg matches the
published avg for every row, the computed cost total matches the published one, and the LaTeX compiles."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tina_sweep.report.paper import (PAPER_BENCHMARKS, load_published_cost, load_published_pass1, paper_tables,
                                     published_rows, published_section_for, published_summary, write_paper_tables)
from tina_sweep.report.tables import pass_at_1_table, to_markdown

REPO = Path(__file__).resolve().parents[1]


def test_every_published_row_is_rebuilt_and_its_avg_matches():
    published = load_published_pass1()
    tables = {t.name: t for t in paper_tables()}
    shown: dict[tuple[str, str], list[str]] = {}
    for name, table in tables.items():
        if name == "paper_cost":
            continue
        for _, rows in table.sections:
            for row in rows:
                shown[(name, row[0].text)] = [c.text for c in row]
    checked = 0
    for record in published.iter_rows(named=True):
        table = "paper_main" if record["section"] in ("baseline", "main") else f"paper_{record['section']}"
        cells = shown[(table, record["model"])]
        values = [float(c) for c in cells[-7:]]  # six benchmarks, then Avg
        assert values[:6] == [record[b] for b in PAPER_BENCHMARKS], record["model"]
        assert abs(values[6] - record["avg"]) <= 0.01 + 1e-9, (record["model"], values[6], record["avg"])
        assert cells[-1] == f"{record['avg']:.2f}", record["model"]  # identical once rounded, for every row
        checked += 1
    assert checked == published.height == 28


def test_table_avg_is_computed_from_the_benchmarks_not_copied():
    summary = published_summary(["ablation_lora_rank"]).with_columns(
        pl.when(pl.col("benchmark") == "average").then(0.0).otherwise(pl.col("mean")).alias("mean"))
    from tina_sweep.report.tables import Section

    arms = summary["arm"].unique(maintain_order=True).to_list()
    table = pass_at_1_table(summary, [Section("r", arms)], keys=[("Model", "label")], name="t", caption="c",
                            benchmarks=PAPER_BENCHMARKS)
    assert table.sections[0][1][0][-1].text == "46.95"  # rank 64, although the "average" rows were zeroed


def test_published_cost_total_is_recomputed():
    cost = load_published_cost()
    table = next(t for t in paper_tables() if t.name == "paper_cost")
    tasks, totals = table.sections
    assert len(tasks[1]) == cost.filter(~pl.col("task").str.starts_with("Total:")).height == 12
    computed = [c.text for c in totals[1][0]]
    published = cost.filter(pl.col("task") == "Total: All Tasks").row(0, named=True)
    assert computed == ["Total: All Tasks", f"{published['train_usd']:.0f}", f"{published['eval_usd']:.0f}",
                        f"{published['total_usd']:.0f}"]
    assert [r[0].text for r in totals[1][1:]] == ["Total: Main Tasks", "Total: Best Ckpt. in Each Main Task",
                                                  "Total: All Ckpt. in Best-Performance Task",
                                                  "Total: Best Ckpt. in Best-Performance Task"]


def test_published_rows_beside_a_study():
    assert published_section_for(["lora.rank"]) == "ablation_lora_rank"
    assert published_section_for(["training.learning_rate"]) == "ablation_learning_rate"
    assert published_section_for(["lora.rank", "training.learning_rate"]) is None
    assert published_rows("ablation_lora_rank", ["arithmetic"]) is None
    section, rows = published_rows("ablation_lora_rank", ["aime24", "math500", "arithmetic"])
    assert section.title.startswith("published")
    assert set(rows["benchmark"]) == {"aime24", "math500"}  # the published average covers six: dropped
    assert rows.filter(pl.col("kind") == "baseline")["label"].unique().to_list() == [
        "DeepSeek-R1-Distill-Qwen-1.5B (published)"]
    assert sorted(rows["lora.rank"].drop_nulls().unique().to_list()) == [4, 8, 16, 32, 64]
    assert all(label.endswith("(published)") for label in rows["label"])


def test_analysis_script_writes_every_table(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "analysis" / "paper_tables.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("paper_main", "paper_ablation_dataset", "paper_ablation_learning_rate", "paper_ablation_lora_rank",
                 "paper_ablation_rl_algorithm", "paper_cost"):
        for suffix in (".tex", ".md", ".csv"):
            assert (tmp_path / f"{name}{suffix}").is_file()
    assert "| Tina-Open-RS2 | 51 | 43.33 | 26.67 | 77.50 | 87.00 | 36.36 | 32.72 | 50.60 |" in done.stdout.replace(
        "**", "")
    assert to_markdown(paper_tables()[0]) in done.stdout


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_paper_tables_compile(tmp_path):
    write_paper_tables(tmp_path)
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper_tables.tex"],
                          cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "Overfull" not in done.stdout


def test_a_study_table_places_published_rows_in_their_own_section():
    from test_report_stats import make_data

    from tina_sweep.report.frame import StudyInfo
    from tina_sweep.report.stats import arm_summary
    from tina_sweep.report.tables import study_pass_at_1_table

    frame, outcomes = make_data({"base": [{"aime24": [0, 1], "math500": [1, 1]}],
                                 "r16": [{"aime24": [1, 1], "math500": [1, 0]}]}, rank={"r16": 16})
    summary = arm_summary(frame, outcomes, n_boot=50)
    info = StudyInfo("lora_rank", "paper", "grid", {"lora.rank": [16]}, {}, [42])
    table = study_pass_at_1_table(summary, info, extra=[published_rows("ablation_lora_rank", ["aime24", "math500"])])
    assert table.headers == ["LoRA rank", "Steps (% of 1 epoch)", "AIME24", "MATH500", "Avg"]
    (_, mine), (title, published) = table.sections
    assert [r[0].text for r in mine] == ["base model", "16"]
    assert title.startswith("published (Wang et al., 2025")
    rows = {r[0].text: [c.text for c in r[1:]] for r in published}
    assert rows["DeepSeek-R1-Distill-Qwen-1.5B (published)"] == ["–", "23.33", "82.60", "52.96"]
    assert rows["16"] == ["58", "43.33", "83.20", "63.27"]  # Avg over the two benchmarks shown
    assert any(c.bold for c in mine[1]) and any(c.bold for r in published for c in r)
