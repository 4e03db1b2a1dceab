"""``tina-sweep report``: the tables (and figures and page) of one sweep folder, in ``<sweep>/report/``.

Pipeline, one module per step:

- ``frame.load_frame(sweep_dir, which)`` -> one row per trial x benchmark; ``frame.load_outcomes`` -> one row
  per trial x benchmark x problem (success rate).
- ``stats.arm_summary(frame, outcomes)`` -> one row per arm x benchmark (plus ``average``): ``arm, label, kind,
  <axis columns>, benchmark, mean, std, n_seeds, n_problems, ci_low, ci_high, train_usd, eval_usd, total_usd,
  device_hours, steps_pct_epoch, is_best, vs_base, vs_base_low, vs_base_high, vs_base_differs, vs_best,
  vs_best_low, vs_best_high, vs_best_differs`` (Pass@1 as fractions; costs are means per seed).
- ``tables``: the paper's layout as LaTeX / Markdown / CSV; ``paper``: the published numbers through the same
  code.

Hook for figures and the page (``_figures_and_page``): when ``tina_sweep.report.plots`` exists,
``plots.write_figures(summary, sweep_dir, out_dir / "figures") -> list[Path]`` is called; when
``tina_sweep.report.page`` exists, ``page.write_page(out_dir, study=<study.json>, tables_md={title: markdown},
figures=<those paths>, notes=[markdown lines]) -> (index.md, index.html)``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl

from tina_sweep.report.frame import (ReportError, ReportWarning, StudyInfo, Which, load_frame, load_outcomes,
                                     load_study_info, read_json)
from tina_sweep.report.stats import CONFIDENCE, N_BOOT, arm_summary, failure_shares
from tina_sweep.report.tables import (Section, Table, differences_table, failures_table, global_batch_note,
                                      grader_note, latex_document, stopping_table, study_cost_table,
                                      study_pass_at_1_table,
                                      to_markdown, write_table)

__all__ = ["ReportError", "ReportWarning", "arm_summary", "build_report", "load_frame", "load_outcomes"]


def _published(info: StudyInfo, summary: pl.DataFrame, published: str | None
               ) -> list[tuple[Section, pl.DataFrame]]:
    """Published rows to show beside the study's: ``auto`` = the matching paper ablation at paper scale."""
    from tina_sweep.report.frame import axis_columns
    from tina_sweep.report.paper import published_rows, published_section_for

    if published is None:
        return []
    section = published
    if published == "auto":
        section = published_section_for(axis_columns(summary)) if info.scale == "paper" else None
    if section is None:
        return []
    benchmarks = [b for b in dict.fromkeys(summary["benchmark"].to_list()) if b != "average"]
    rows = published_rows(section, benchmarks)
    return [rows] if rows else []


def _notes(info: StudyInfo, frame: pl.DataFrame, which: str, n_boot: int, confidence: float, seed: int) -> list[str]:
    trials = frame.unique("trial_id")
    chosen = sorted(set(frame.filter(pl.col("kind") == "trial")["checkpoint"].to_list()))
    finished = (f"{trials.filter(pl.col('kind') == 'trial').height} trained trial(s) and "
                f"{trials.filter(pl.col('kind') == 'baseline').height} base-model evaluation(s) finished"
                + (f" of {len(info.jobs)} jobs." if info.jobs else "."))
    on_dev = which == "best" and frame.filter(pl.col("kind") == "trial")["dev_best_step"].drop_nulls().len() > 0
    notes = [f"Checkpoint: {which}" + (" (by each trial's dev score" if on_dev else "")
             + (f"{'; ' if on_dev else ' ('}chosen: {', '.join(chosen)})." if which == "best" else "."), finished,
             (f"Intervals: {100 * confidence:g}% percentile bootstrap, {n_boot} resamples of problems (and seeds), "
              f"report seed {seed}.")]
    if frame.filter(pl.col("kind") == "trial")["steps_pct_epoch"].null_count():
        notes.append("Steps (% of 1 epoch) is blank where the training set could not be loaded here.")
    return notes


def _figures_and_page(summary: pl.DataFrame, sweep_dir: Path, out_dir: Path, tables: list[Table],
                      notes: list[str]) -> list[Path]:
    """The hook for figures (``plots.write_figures``) and the page (``page.write_page``), each when present."""
    written: list[Path] = []
    figures: list[Path] = []
    if importlib.util.find_spec("tina_sweep.report.plots") is not None:
        from tina_sweep.report.plots import write_figures

        figures = list(write_figures(summary, sweep_dir, out_dir / "figures"))
        written += figures
    if importlib.util.find_spec("tina_sweep.report.page") is not None:
        from tina_sweep.report.page import write_page

        study_file = sweep_dir / "study.json"
        study = read_json(study_file) if study_file.is_file() else {"study": {"name": sweep_dir.name}}
        titles = {"pass_at_1": "Pass@1", "differences": "Differences", "failures": "Why samples fail",
                  "cost": "Cost", "stopping": "Where each trial stopped"}
        written += list(write_page(out_dir, study=study, tables_md={titles.get(t.name, t.name): to_markdown(t)
                                                                   for t in tables},
                                   figures=figures, notes=notes))
    return written


def build_report(sweep_dir: Path, *, which: Which = "final", published: str | None = "auto",
                 n_boot: int = N_BOOT, confidence: float = CONFIDENCE, seed: int = 0) -> Path:
    """Write ``sweep_dir/report/`` and return it: ``frame`` and ``summary`` (.parquet, .csv), the tables
    ``pass_at_1``, ``differences``, ``failures`` (why samples fail, with strict grading) and ``cost`` (.tex, .md,
    .csv), ``tables.tex`` (a standalone LaTeX document)
    and ``tables.md``, then the figures and the page (see the module docstring).

    ``which``: report each trial at its ``final`` or ``best`` checkpoint. ``published``: ``auto`` (the paper's
    matching ablation beside a paper-scale single-axis study), a section of tina_paper_pass1.csv, or None.
    Raises ReportError (one line) for a missing folder or one with no finished trial."""
    sweep_dir = Path(sweep_dir)
    info = load_study_info(sweep_dir)
    frame = load_frame(sweep_dir, which)
    outcomes = load_outcomes(sweep_dir, which)
    summary = arm_summary(frame, outcomes, confidence=confidence, n_boot=n_boot, seed=seed)
    out_dir = sweep_dir / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in (("frame", frame), ("summary", summary)):
        data.write_parquet(out_dir / f"{name}.parquet")
        data.write_csv(out_dir / f"{name}.csv")
    on_dev = frame.filter(pl.col("kind") == "trial")["dev_best_step"].drop_nulls().len() > 0
    tables = [study_pass_at_1_table(summary, info, which, _published(info, summary, published), confidence,
                                    grader_note(frame), batch=global_batch_note(frame), on_dev=on_dev),
              differences_table(summary, confidence=confidence, n_boot=n_boot),
              study_cost_table(frame, info)]
    stopping = stopping_table(frame)
    if stopping is not None:
        tables.append(stopping)
    failures = failures_table(failure_shares(outcomes), summary)
    if failures is not None:
        tables.insert(2, failures)
    for table in tables:
        write_table(table, out_dir)
    (out_dir / "tables.tex").write_text(latex_document(tables), encoding="utf-8")
    (out_dir / "tables.md").write_text("\n".join(to_markdown(t) for t in tables), encoding="utf-8")
    _figures_and_page(summary, sweep_dir, out_dir, tables, _notes(info, frame, which, n_boot, confidence, seed))
    return out_dir
