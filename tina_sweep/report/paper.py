"""The Tina paper's published numbers (``tina_sweep/data/reference``) as arm summaries, and the paper's tables
(main results, the four ablations, cost) rebuilt through the report's own table code.

Published Pass@1 values are percentages in the CSV and fractions here (the summary schema). Every published
``avg`` equals the mean of its six benchmarks to within 0.0034 (the benchmarks are printed rounded to two
decimals), so the Avg column the table code computes matches the published one after rounding.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tina_sweep.trial.datasets import bundled_path
from tina_sweep.report.stats import AVERAGE, SUMMARY_COLUMNS, SUMMARY_TAIL
from tina_sweep.report.tables import (PUBLISHED_GRADER, Section, Table, axis_name, cost_table, latex_document,
                                      pass_at_1_table, write_table)

PAPER_BENCHMARKS = ["aime24", "aime25", "amc23", "math500", "gpqa_diamond", "minerva"]
CITATION = "Wang et al., 2025"
# published section -> (the study axis it ablates, its column in tina_paper_pass1.csv)
ABLATIONS = {
    "ablation_dataset": ("dataset.name", "train_dataset"),
    "ablation_learning_rate": ("training.learning_rate", "learning_rate"),
    "ablation_lora_rank": ("lora.rank", "lora_rank"),
    "ablation_rl_algorithm": ("algorithm.name", "rl_algorithm"),
}
AXIS_DTYPES = {"dataset.name": pl.String, "training.learning_rate": pl.Float64, "lora.rank": pl.Int64,
               "algorithm.name": pl.String}
BASE_MODEL = "DeepSeek-R1-Distill-Qwen-1.5B"


def load_published_pass1() -> pl.DataFrame:
    """``tina_paper_pass1.csv`` as published (Pass@1 in percent)."""
    return pl.read_csv(bundled_path("reference/tina_paper_pass1.csv"),
                       schema_overrides={"learning_rate": pl.Float64, "lora_rank": pl.Int64,
                                         "steps_pct_epoch": pl.Float64})


def load_published_cost() -> pl.DataFrame:
    """``tina_paper_cost_usd.csv`` as published (US dollars)."""
    return pl.read_csv(bundled_path("reference/tina_paper_cost_usd.csv"),
                       schema_overrides={"train_usd": pl.Float64, "eval_usd": pl.Float64, "total_usd": pl.Float64})


def published_summary(sections: list[str], *, label_suffix: str = "", benchmarks: list[str] | None = None
                      ) -> pl.DataFrame:
    """Published rows of ``sections`` in the arm-summary schema (arm ``published:<section>:<model>``).

    One row per benchmark (mean = Pass@1 as a fraction, one seed, no interval) plus the published average;
    ``benchmarks`` keeps only those (and then drops the average, which covers all six)."""
    keep = benchmarks or PAPER_BENCHMARKS
    published = load_published_pass1().filter(pl.col("section").is_in(sections))
    rows = []
    for record in published.iter_rows(named=True):
        axes = {axis: record[column] for axis, column in ABLATIONS.values()}
        common = {"arm": f"published:{record['section']}:{record['model']}",
                  "label": record["model"] + label_suffix,
                  "kind": "baseline" if record["section"] == "baseline" else "trial", **axes,
                  "n_seeds": 1, "steps_pct_epoch": record["steps_pct_epoch"], "is_best": False}
        values = {b: record[b] / 100 for b in PAPER_BENCHMARKS if b in keep}
        if benchmarks is None or set(keep) >= set(PAPER_BENCHMARKS):
            values[AVERAGE] = record["avg"] / 100
        rows += [{**common, "benchmark": benchmark, "mean": value} for benchmark, value in values.items()]
    schema = {column: pl.String for column in SUMMARY_COLUMNS} | AXIS_DTYPES | {
        "benchmark": pl.String, "mean": pl.Float64, "std": pl.Float64, "n_seeds": pl.Int64, "n_problems": pl.Int64,
        "ci_low": pl.Float64, "ci_high": pl.Float64, "train_usd": pl.Float64, "eval_usd": pl.Float64,
        "total_usd": pl.Float64, "device_hours": pl.Float64, "steps_pct_epoch": pl.Float64, "is_best": pl.Boolean}
    schema |= {column: pl.Float64 for column in SUMMARY_TAIL if column not in schema and "differs" not in column}
    schema |= {column: pl.Boolean for column in SUMMARY_TAIL if "differs" in column}
    return pl.DataFrame(rows, schema=schema)


def published_section_for(axes: list[str]) -> str | None:
    """The published ablation a single-axis study repeats (``lora.rank`` -> ``ablation_lora_rank``), if any."""
    if len(axes) != 1:
        return None
    return next((section for section, (axis, _) in ABLATIONS.items() if axis == axes[0]), None)


def published_rows(section: str, benchmarks: list[str]) -> tuple[Section, pl.DataFrame] | None:
    """A "published" table section for a user's table: the paper's base model and the ``section`` rows, on the
    user's ``benchmarks`` (None when they share none)."""
    shared = [b for b in benchmarks if b in PAPER_BENCHMARKS]
    if not shared:
        return None
    base = published_summary(["baseline"], label_suffix=" (published)", benchmarks=shared).filter(
        pl.col("arm") == f"published:baseline:{BASE_MODEL}")
    rows = pl.concat([base, published_summary([section], label_suffix=" (published)", benchmarks=shared)])
    arms = list(dict.fromkeys(rows["arm"].to_list()))
    return Section(f"published ({CITATION}, {section.replace('_', ' ')})", arms), rows


def _arms(summary: pl.DataFrame, section: str) -> list[str]:
    return list(dict.fromkeys(summary.filter(pl.col("arm").str.starts_with(f"published:{section}:"))["arm"]))


def paper_tables() -> list[Table]:
    """The paper's main table, its four ablation tables and its cost table, rebuilt from the bundled CSVs."""
    summary = published_summary(["baseline", "main", *ABLATIONS])
    note = (f"Pass@1 (%) published in {CITATION} (one sample per problem), graded by {PUBLISHED_GRADER}; Avg "
            "computed here as the mean of the six benchmarks.")
    tables = [pass_at_1_table(summary, [Section("Baselines (full-parameter RL)", _arms(summary, "baseline")),
                                        Section("Tina (LoRA RL)", _arms(summary, "main"))],
                              keys=[("Model", "label")], name="paper_main", caption=f"Main results. {note}",
                              benchmarks=PAPER_BENCHMARKS)]
    for section, (axis, _) in ABLATIONS.items():
        tables.append(pass_at_1_table(summary, [Section(axis_name(axis), _arms(summary, section))],
                                      keys=[("Model", "label"), (axis_name(axis), axis)], name=f"paper_{section}",
                                      caption=f"Ablation: {axis_name(axis)}. {note}", benchmarks=PAPER_BENCHMARKS))
    cost = load_published_cost()
    is_total = pl.col("task").str.starts_with("Total:")
    tasks = cost.filter(~is_total).rename({"task": "label"})
    extra = cost.filter(is_total & (pl.col("task") != "Total: All Tasks")).rename({"task": "label"})
    tables.append(cost_table(tasks, name="paper_cost", total_label="Total: All Tasks", extra_totals=extra,
                             rows_title="Tasks", caption=f"Cost in US dollars published in {CITATION} (two NVIDIA "
                             "L40S GPUs); the first total is computed here from the task rows, the others are "
                             "as published."))
    return tables


def write_paper_tables(out_dir: Path) -> list[Path]:
    """Every paper table as .tex/.md/.csv in ``out_dir``, plus ``paper_tables.tex`` (a standalone document)."""
    tables = paper_tables()
    paths = [path for table in tables for path in write_table(table, out_dir)]
    document = out_dir / "paper_tables.tex"
    document.write_text(latex_document(tables), encoding="utf-8")
    return paths + [document]
