"""Results: finished jobs -> one polars table (one row per trial), written as Parquet and Markdown and shown
in the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from tina_sweep.trial.result import TrialResult


def _axis_order(axes: dict[str, Any], axis_names: list[str]) -> tuple:
    """Rows in axis order: numbers by value (rank 4 before 16), anything else by its text."""
    key = []
    for name in axis_names:
        value = axes.get(name)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        key.append((0, value, "") if number else (1, 0, str(value)))
    return tuple(key)


def results_frame(results: list[TrialResult], axis_names: list[str]) -> pl.DataFrame:
    """One row per trial: kind, axis values, Pass@1 per benchmark, average, n, steps, cost."""
    benchmarks = sorted({b for r in results for b in r.pass_at_1})
    rows = []
    for r in sorted(results, key=lambda r: (r.kind != "baseline", _axis_order(r.axes, axis_names), r.trial_id)):
        row: dict[str, Any] = {"trial_id": r.trial_id, "kind": r.kind}
        for axis in axis_names:
            value = r.axes.get(axis)
            row[axis] = None if value is None else str(value)
        for name in benchmarks:
            row[name] = r.pass_at_1.get(name)
        row["average"] = r.average
        row["n"] = sum((b.problems or 0) * (b.samples_per_problem or 0) for b in r.benchmarks.values())
        row["train_steps"] = r.train_steps
        cost = r.cost
        row["train_s"] = _rounded(cost.train_seconds, 1)
        row["eval_s"] = _rounded(cost.eval_seconds, 1)
        row["tokens"] = (cost.train_tokens or 0) + (cost.eval_tokens or 0)
        row["peak_mem_gb"] = _rounded(cost.peak_memory_gb, 2)
        row["cost_usd"] = cost.total_usd
        row["device"] = cost.device
        row["grader"] = ", ".join(dict.fromkeys(b.grader or "strict" for b in r.benchmarks.values()))
        rows.append(row)
    return pl.DataFrame(rows)


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def write_results(frame: pl.DataFrame, sweep_dir: Path) -> tuple[Path, Path]:
    """``results.parquet`` and ``results.md`` in the sweep folder."""
    parquet, markdown = sweep_dir / "results.parquet", sweep_dir / "results.md"
    frame.write_parquet(parquet)
    markdown.write_text(to_markdown(frame))
    return parquet, markdown


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "base" if column not in ("train_steps",) else "-"
    if isinstance(value, float):
        return f"{value:.4f}" if column == "cost_usd" else f"{value:.3f}" if value <= 1 and column not in (
            "train_s", "eval_s", "peak_mem_gb") else f"{value:.1f}"
    return str(value)


def grading_text(frame: pl.DataFrame) -> str:
    """What graded the table's numbers: ``strict grading`` (one grader) or ``graded by: a, b`` (several)."""
    graders = list(dict.fromkeys(g for cell in frame["grader"].to_list() for g in cell.split(", "))) \
        if "grader" in frame.columns else ["strict"]
    return f"{graders[0]} grading" if len(graders) == 1 else f"graded by: {', '.join(graders)}"


def _mixed_graders(frame: pl.DataFrame) -> bool:
    return "grader" in frame.columns and frame["grader"].n_unique() > 1


def to_markdown(frame: pl.DataFrame) -> str:
    hidden = {"device"} | (set() if _mixed_graders(frame) else {"grader"})
    columns = [c for c in frame.columns if c not in hidden]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.iter_rows(named=True):
        lines.append("| " + " | ".join(_cell(row[c], c) for c in columns) + " |")
    device = frame["device"][0] if frame.height else ""
    return "\n".join(lines) + f"\n\nPass@1 per benchmark ({grading_text(frame)}); cost on {device}.\n"


def print_results(frame: pl.DataFrame, axis_names: list[str], console: Console | None = None) -> None:
    """The results table in the terminal: one row per arm, the best trial's average in bold."""
    console = console or Console()
    if not console.is_terminal:
        console.width = max(console.width, 140)
    benchmarks = [c for c in frame.columns if c not in axis_names and c not in _NON_BENCHMARK]
    table = Table(title=f"Results: Pass@1 ({grading_text(frame)})")
    table.add_column("arm", no_wrap=True)
    extra = ["grader"] if _mixed_graders(frame) else []
    for column in benchmarks + ["average", "n", "train_steps", "train_s", "eval_s", "cost_usd"] + extra:
        table.add_column(column, justify="right", no_wrap=True)
    best = frame.filter(pl.col("kind") == "trial")["average"].max() if frame.height else None
    for row in frame.iter_rows(named=True):
        arm = "base model" if row["kind"] == "baseline" else ", ".join(f"{a}={row[a]}" for a in axis_names)
        style = "bold green" if row["kind"] == "trial" and row["average"] == best else None
        cells = [_cell(row[c], c) for c in benchmarks + ["average", "n", "train_steps", "train_s", "eval_s", "cost_usd"]
                 + extra]
        table.add_row(arm, *cells, style=style)
    console.print(table)


_NON_BENCHMARK = {"trial_id", "kind", "average", "n", "train_steps", "train_s", "eval_s", "tokens", "peak_mem_gb",
                  "cost_usd", "device", "grader"}
