"""Tables in the Tina paper's layout, built from an arm summary (``stats.arm_summary`` schema) and written as
LaTeX (booktabs), Markdown and CSV.

A ``Table`` is plain data: a caption, headers, and sections of rows of cells (text + bold). Builders:
``pass_at_1_table`` (one row per arm: the key columns, "Steps (% of 1 epoch)", Pass@1 per benchmark in percent
with two decimals, Avg = the mean of the benchmark columns; mean ± std across seeds; the best value of each
column bold within its section), ``cost_table`` (training / evaluation / total dollars, with computed totals)
and ``differences_table`` (each arm minus the base model and minus the best arm, with the bootstrap interval;
bold where the interval excludes 0). The published paper tables are rebuilt through the same code
(``tina_sweep.report.paper``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tina_sweep.report.frame import BASE_ARM, StudyInfo
from tina_sweep.report.stats import AVERAGE

BENCHMARK_NAMES = {"aime24": "AIME24", "aime25": "AIME25", "amc23": "AMC23", "math500": "MATH500",
                   "gpqa_diamond": "GPQA", "minerva": "Minerva", "arithmetic": "Arithmetic", "mawps": "MAWPS",
                   "gsm8k": "GSM8K", "svamp": "SVAMP"}
AXIS_NAMES = {"lora.rank": "LoRA rank", "training.learning_rate": "Learning rate", "dataset.name": "Dataset",
              "algorithm.name": "RL algorithm", "lora.alpha": "LoRA alpha"}
# what each grader is, for captions (result.json names the grader of every benchmark's number)
GRADER_NOTES = {"strict": "strict (ours: the last \\boxed{} only, a number literal for a numeric gold)",
                "math_verify": "math_verify (the paper's: Tina's LightEval math-verify extraction)",
                "lighteval": "LightEval's own metrics (lighteval backend)"}
PUBLISHED_GRADER = "LightEval's math-verify extraction (Tina's evaluation tasks)"
STEPS = "Steps (% of 1 epoch)"
AVG = "Avg"
MISSING = "–"


@dataclass(frozen=True)
class Cell:
    text: str
    bold: bool = False
    interval: str = ""  # a confidence interval shown after the (possibly bold) text, e.g. "[43.00, 63.00]"


@dataclass
class Table:
    """A captioned table: ``sections`` is a list of (title, rows); the first ``key_columns`` are left-aligned."""

    name: str
    caption: str
    headers: list[str]
    sections: list[tuple[str, list[list[Cell]]]]
    key_columns: int = 1


@dataclass(frozen=True)
class Section:
    """A titled group of arms (in row order) of one table."""

    title: str
    arms: list[str]


def benchmark_name(benchmark: str) -> str:
    return BENCHMARK_NAMES.get(benchmark, benchmark)


def axis_name(axis: str) -> str:
    return AXIS_NAMES.get(axis, axis)


def value_text(value: Any) -> str:
    """An axis value as shown in a table (``1e-06``, ``16``, ``limr``)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


# ---------------------------------------------------------------- sections of a study

def study_sections(summary: pl.DataFrame, info: StudyInfo) -> list[Section]:
    """The paper's layout for a study: one section per ablation axis (``one_at_a_time`` with several axes: the
    arms that vary that axis around the centre), otherwise one section with every arm; the base model first."""
    rows = summary.unique("arm", keep="first", maintain_order=True)
    axes = [a for a in info.axes if a in summary.columns]
    base = [BASE_ARM] if BASE_ARM in rows["arm"].to_list() else []
    trained = [r for r in rows.iter_rows(named=True) if r["kind"] != "baseline"]

    def order(row: dict[str, Any]) -> tuple:
        key = []
        for axis in axes:
            values = [value_text(v) for v in info.axes[axis]]
            text = value_text(row[axis])
            key.append((values.index(text), "") if text in values else (len(values), text))
        return tuple(key)

    if info.design == "one_at_a_time" and len(axes) > 1:
        center = {a: value_text(info.base.get(a, info.axes[a][0])) for a in axes}
        sections = []
        for axis in axes:
            members = [r for r in trained if all(value_text(r[o]) == center[o] for o in axes if o != axis)]
            sections.append(Section(axis_name(axis), base + [r["arm"] for r in sorted(members, key=order)]))
        return sections
    title = ", ".join(axis_name(a) for a in axes) or "arms"
    return [Section(title, base + [r["arm"] for r in sorted(trained, key=order)])]


# ---------------------------------------------------------------- Pass@1

def _pct(value: float | None, decimals: int = 2) -> str:
    return MISSING if value is None else f"{100 * value:.{decimals}f}"


def _bold_best(cells: list[list[Cell]], values: list[list[float | None]]) -> list[list[Cell]]:
    """Bold, per column, every row whose displayed value equals the column's best (rows >= 2)."""
    if len(cells) < 2:
        return cells
    for column in range(len(values[0]) if values else 0):
        shown = [None if row[column] is None else float(_pct(row[column])) for row in values]
        present = [v for v in shown if v is not None]
        if len(present) < 2:
            continue
        best = max(present)
        for row, value in zip(cells, shown):
            if value == best:
                row[column] = Cell(row[column].text, True, row[column].interval)
    return cells


def _steps_decimals(values: list[float | None]) -> int:
    present = [v for v in values if v is not None]
    return 0 if all(abs(v - round(v)) < 1e-9 for v in present) else 1


def pass_at_1_table(summary: pl.DataFrame, sections: list[Section], *, keys: list[tuple[str, str]], name: str,
                    caption: str, benchmarks: list[str] | None = None, steps: bool = True) -> Table:
    """Rows per arm: ``keys`` (header, summary column) cells, the steps column, Pass@1 (%) per benchmark, Avg.

    Avg is the mean of the row's benchmark means (its ± is the std across seeds of each seed's average, from
    the summary's ``average`` row); a base-model row shows its label in the first key column."""
    if benchmarks is None:
        benchmarks = [b for b in dict.fromkeys(summary["benchmark"].to_list()) if b != AVERAGE]
    by_arm: dict[str, dict[str, dict[str, Any]]] = {}
    for row in summary.iter_rows(named=True):
        by_arm.setdefault(row["arm"], {})[row["benchmark"]] = row
    all_steps = [next(iter(by_arm[a].values()))["steps_pct_epoch"] for s in sections for a in s.arms if a in by_arm]
    decimals = _steps_decimals(all_steps)
    headers = [h for h, _ in keys] + ([STEPS] if steps else []) + [benchmark_name(b) for b in benchmarks] + [AVG]
    built = []
    for section in sections:
        cells, values = [], []
        for arm in (a for a in section.arms if a in by_arm):
            rows = by_arm[arm]
            first = next(iter(rows.values()))
            key_cells = [Cell(value_text(first[column])) for _, column in keys]
            if first["kind"] == "baseline" and not key_cells[0].text:
                key_cells[0] = Cell(first["label"])
            means = [rows[b]["mean"] if b in rows else None for b in benchmarks]
            average = None if None in means or not means else sum(means) / len(means)
            columns = benchmarks + [AVERAGE]
            intervals = [_interval_text(rows.get(b)) for b in columns]
            numbers = [_mean_std_text(m, rows[b]["std"] if b in rows else None)
                       for m, b in zip(means + [average], columns)]
            step_cell = ([Cell(MISSING if first["steps_pct_epoch"] is None
                               else f"{first['steps_pct_epoch']:.{decimals}f}")] if steps else [])
            cells.append((key_cells + step_cell, [Cell(t, interval=i) for t, i in zip(numbers, intervals)]))
            values.append(means + [average])
        bolded = _bold_best([numbers for _, numbers in cells], values)
        built.append((section.title, [fixed + numbers for (fixed, _), numbers in zip(cells, bolded)]))
    return Table(name, caption, headers, built, key_columns=len(keys))


def _interval_text(row: dict[str, Any] | None) -> str:
    """``[low, high]`` in percent from a summary row's bootstrap interval; empty for rows without one."""
    if row is None or row.get("ci_low") is None or row.get("ci_high") is None:
        return ""
    return f"[{_pct(row['ci_low'])}, {_pct(row['ci_high'])}]"


def _mean_std_text(mean: float | None, std: float | None) -> str:
    return _pct(mean) if std is None or mean is None else f"{_pct(mean)} ± {_pct(std)}"


def seeds_note(summary: pl.DataFrame) -> str:
    """How many seeds each trained arm has, for a caption."""
    counts = sorted(set(summary.filter(pl.col("kind") != "baseline")["n_seeds"].to_list()))
    if not counts:
        return "no trained arm yet"
    if counts == [1]:
        return "one seed per arm"
    spread = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return f"mean ± std across seeds (n = {spread} seeds per arm; std with ddof = 1)"


def grader_note(frame: pl.DataFrame) -> str:
    """Which grader produced the numbers (a frame's ``grader`` column): one for all, or each benchmark's."""
    if "grader" not in frame.columns or not frame.height:
        return ""
    pairs = frame.select("benchmark", "grader").unique(maintain_order=True)
    graders = list(dict.fromkeys(pairs["grader"].to_list()))
    if len(graders) == 1:
        return f"Graded by {GRADER_NOTES.get(graders[0], graders[0])}."
    by_benchmark: dict[str, list[str]] = {}
    for benchmark, grader in pairs.iter_rows():
        by_benchmark.setdefault(benchmark, []).append(grader)
    return ("Graded by " + "; ".join(f"{benchmark_name(b)}: {' and '.join(g)}" for b, g in by_benchmark.items())
            + " (" + "; ".join(f"{GRADER_NOTES.get(g, g)}" for g in graders) + ").")


def which_note(which: str, on_dev: bool = False) -> str:
    """How a caption says which checkpoint each trial is reported at (``on_dev``: the dev split chose it)."""
    if which == "best" and on_dev:
        return ("the best checkpoint of each trial by its dev score (a split held out from training and from "
                "these benchmarks, scored at every checkpoint)")
    if which == "best":
        return ("the best checkpoint of each trial (highest average Pass@1 among its evaluated checkpoints; "
                "chosen on these same benchmarks, so optimistic)")
    return "the final checkpoint of each trial"


def global_batch_note(frame: pl.DataFrame) -> str:
    """The global batch the trials trained with (prompts and completions per optimizer step), for a caption."""
    if "prompts_per_step" not in frame.columns:
        return ""
    trials = frame.filter((pl.col("kind") == "trial") & pl.col("prompts_per_step").is_not_null())
    pairs = sorted(set(zip(trials["prompts_per_step"].to_list(), trials["completions_per_step"].to_list())),
                   key=lambda pair: (pair[0], pair[1] or 0))
    if not pairs:
        return ""
    texts = [f"{prompts} prompts" + (f" ({completions} completions)" if completions else "")
             for prompts, completions in pairs]
    return f"Global batch: {' or '.join(texts)} per optimizer step."


def study_pass_at_1_table(summary: pl.DataFrame, info: StudyInfo, which: str = "final",
                          extra: list[tuple[Section, pl.DataFrame]] | None = None,
                          confidence: float = 0.95, grading: str = "", batch: str = "", on_dev: bool = False) -> Table:
    """The study's main table; ``extra`` adds sections of other summaries (published rows, say); ``grading``
    (``grader_note``) says which grader produced the study's numbers; ``batch`` is the global batch note
    (``global_batch_note``) for the caption."""
    sections = study_sections(summary, info)
    axes = [a for a in info.axes if a in summary.columns]
    keys = [(axis_name(a), a) for a in axes] or [("Arm", "label")]
    benchmarks = [b for b in dict.fromkeys(summary["benchmark"].to_list()) if b != AVERAGE]
    combined = summary
    for section, rows in extra or []:
        combined = pl.concat([combined, rows], how="diagonal_relaxed")
        sections = sections + [section]
    caption = (f"Pass@1 (%) of study {info.name}" + (f" ({info.scale} scale)" if info.scale else "")
               + f" at {which_note(which, on_dev)}; {seeds_note(summary)}. Avg is the mean over the "
               + (f"{len(benchmarks)} benchmarks shown" if len(benchmarks) > 1 else "one benchmark shown")
               + f". {STEPS}: training steps x prompts per optimizer step / training-set size. "
               + (f"{batch} " if batch else "")
               + f"Brackets: {100 * confidence:g}% bootstrap confidence interval (problems and seeds resampled). "
               "Bold: best in its section." + (f" {grading}" if grading else "")
               + (f" Published rows: graded by {PUBLISHED_GRADER}." if extra else ""))
    return pass_at_1_table(combined, sections, keys=keys, name="pass_at_1", caption=caption, benchmarks=benchmarks)


# ---------------------------------------------------------------- cost

def _money_decimals(values: list[float | None]) -> int:
    """0 when every amount is whole dollars, else enough (2 to 4) to show the smallest one to 2 digits."""
    present = [abs(v) for v in values if v is not None]
    if all(abs(v - round(v)) < 1e-9 for v in present):
        return 0
    smallest = min((v for v in present if v > 0), default=1.0)
    return max(2, min(4, 1 - math.floor(math.log10(smallest))))


def trial_costs(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per trial (label, train_usd, eval_usd, total_usd), the seed named when an arm has several."""
    trials = frame.unique("trial_id", keep="first", maintain_order=True)
    seeds = trials.group_by("arm").agg(pl.len().alias("n"))
    several = set(seeds.filter(pl.col("n") > 1)["arm"].to_list())
    labels = [f"{r['label']}, seed {r['seed']}" if r["arm"] in several else r["label"]
              for r in trials.iter_rows(named=True)]
    return trials.select("train_usd", "eval_usd", "total_usd").with_columns(label=pl.Series(labels))


def cost_table(rows: pl.DataFrame, *, name: str = "cost", caption: str, total_label: str = "Total: all trials",
               extra_totals: pl.DataFrame | None = None, rows_title: str = "Trials") -> Table:
    """Training, evaluation and total dollars per row of ``rows`` (label, train_usd, eval_usd, total_usd), then
    the computed total and any ``extra_totals`` rows as given."""
    columns = ("train_usd", "eval_usd", "total_usd")
    total = {c: rows[c].fill_null(0).sum() for c in columns}
    totals = [{"label": total_label, **total}] + (list(extra_totals.iter_rows(named=True)) if extra_totals is not None
                                                  else [])
    decimals = _money_decimals([r[c] for r in list(rows.iter_rows(named=True)) + totals for c in columns])

    def line(row: dict[str, Any]) -> list[Cell]:
        return [Cell(row["label"])] + [Cell(MISSING if row[c] is None else f"{row[c]:.{decimals}f}") for c in columns]

    return Table(name, caption, ["Task", "Training ($)", "Evaluation ($)", "Total ($)"],
                 [(rows_title, [line(r) for r in rows.iter_rows(named=True)]), ("Totals", [line(r) for r in totals])])


def study_cost_table(frame: pl.DataFrame, info: StudyInfo) -> Table:
    devices = ", ".join(sorted({f"{r['device_count']} x {r['device']}" for r in frame.unique("trial_id").iter_rows(
        named=True) if r["device"]}))
    caption = (f"Cost of study {info.name} in US dollars (wall time x device-hour price), per trial, on "
               f"{devices or 'unknown devices'}.")
    return cost_table(trial_costs(frame), caption=caption)


# ---------------------------------------------------------------- stopping

STOP_REASONS = {"finished": "finished", "pruned": "pruned", "early_stopped": "early-stopped"}


def spent_against_full_grid(frame: pl.DataFrame) -> dict[str, float] | None:
    """Training steps and dollars the trials spent against what the whole grid would have (each trial trained to
    its horizon: its training cost per step x its horizon, its evaluation as it was); None without stop records."""
    trials = frame.filter(pl.col("kind") == "trial").unique("trial_id", maintain_order=True)
    trials = trials.filter(pl.col("stopped_at").is_not_null() & pl.col("horizon").is_not_null())
    if trials.is_empty():
        return None
    steps, full_steps = trials["stopped_at"].sum(), trials["horizon"].sum()
    usd = full_usd = 0.0
    for row in trials.iter_rows(named=True):
        train, total = row["train_usd"] or 0.0, row["total_usd"] or 0.0
        usd += total
        full_usd += total - train + train * row["horizon"] / max(row["stopped_at"], 1)
    return {"steps": float(steps), "full_steps": float(full_steps), "usd": usd, "full_usd": full_usd,
            "trials": float(trials.height)}


def stopping_table(frame: pl.DataFrame) -> Table | None:
    """Where each trial stopped and why (finished, pruned, early-stopped), its best dev score and step, and what
    the study spent against the full grid; None when no trial has a dev split."""
    spent = spent_against_full_grid(frame)
    if spent is None:
        return None
    trials = frame.filter((pl.col("kind") == "trial") & pl.col("stopped_at").is_not_null())
    trials = trials.unique("trial_id", maintain_order=True).sort(["arm", "seed"], nulls_last=True)
    rows = []
    for row in trials.iter_rows(named=True):
        best = MISSING if row["dev_best"] is None else f"{100 * row['dev_best']:.1f} (step {row['dev_best_step']})"
        rows.append([Cell(row["label"]), Cell(MISSING if row["seed"] is None else str(row["seed"])),
                     Cell(STOP_REASONS.get(row["stop_reason"], row["stop_reason"] or MISSING)),
                     Cell(f"{row['stopped_at']} / {row['horizon']}"), Cell(best)])
    caption = (f"Where each trial stopped and why: finished (its horizon), pruned (by the study's pruner, across "
               f"arms) or early-stopped (no dev gain for its patience). The study trained {spent['steps']:.0f} of "
               f"the full grid's {spent['full_steps']:.0f} steps ({100 * spent['steps'] / spent['full_steps']:.0f}%) "
               f"and spent ${spent['usd']:.4f} against ~${spent['full_usd']:.4f} for the full grid "
               f"({100 * spent['usd'] / max(spent['full_usd'], 1e-12):.0f}%; each stopped trial's training cost per "
               f"step x its horizon). Dev: Pass@1 (%) on the dev split at its best step.")
    return Table("stopping", caption, ["Arm", "Seed", "Stopped", "Steps / horizon", "Best dev Pass@1"],
                 [("Trials", rows)], key_columns=2)


# ---------------------------------------------------------------- differences

def _difference_text(row: dict[str, Any], prefix: str) -> Cell:
    difference = row[prefix]
    if difference is None:
        return Cell(MISSING)
    low, high = row[f"{prefix}_low"], row[f"{prefix}_high"]
    text = f"{100 * difference:+.2f}" + ("" if low is None else f" [{100 * low:+.2f}, {100 * high:+.2f}]")
    return Cell(text, bool(row[f"{prefix}_differs"]))


def differences_table(summary: pl.DataFrame, *, confidence: float, n_boot: int, name: str = "differences"
                      ) -> Table:
    """Each arm minus the base model, and minus the best arm, per benchmark and on average (percentage points,
    paired bootstrap interval in brackets; bold where the interval excludes 0)."""
    benchmarks = [b for b in dict.fromkeys(summary["benchmark"].to_list()) if b != AVERAGE]
    by_arm: dict[str, dict[str, dict[str, Any]]] = {}
    for row in summary.iter_rows(named=True):
        by_arm.setdefault(row["arm"], {})[row["benchmark"]] = row
    best = next((r["label"] for r in summary.iter_rows(named=True) if r["is_best"]), None)
    sections = []
    for prefix, title in (("vs_base", "minus the base model"), ("vs_best", f"minus the best arm ({best})")):
        rows = []
        for cells in by_arm.values():
            first = next(iter(cells.values()))
            if first[prefix] is None and all(c[prefix] is None for c in cells.values()):
                continue  # the reference itself
            rows.append([Cell(first["label"])] + [_difference_text(cells[b], prefix) if b in cells else Cell(MISSING)
                                                  for b in benchmarks + [AVERAGE]])
        if rows:
            sections.append((title, rows))
    caption = (f"Difference in Pass@1 (percentage points) with its {100 * confidence:g}% paired bootstrap interval "
               f"({n_boot} resamples of problems, and of seeds where an arm has several). Bold: the interval "
               "excludes 0.")
    return Table(name, caption, ["Arm"] + [benchmark_name(b) for b in benchmarks] + [AVG], sections)


# ---------------------------------------------------------------- why samples fail

def failures_table(shares: pl.DataFrame, summary: pl.DataFrame, name: str = "failures") -> Table | None:
    """Per benchmark, one row per arm: the share of samples correct, format failures (no box, empty box, cut at
    max_new_tokens), of which truncated, and wrong answers (``stats.failure_shares``); None when no sample was
    explained (a grader other than strict)."""
    if shares.is_empty():
        return None
    labels = dict(zip(summary["arm"].to_list(), summary["label"].to_list()))
    order = list(dict.fromkeys(summary["arm"].to_list()))
    sections = []
    for benchmark in dict.fromkeys(shares["benchmark"].to_list()):
        rows = sorted(shares.filter(pl.col("benchmark") == benchmark).iter_rows(named=True),
                      key=lambda r: order.index(r["arm"]) if r["arm"] in order else len(order))
        sections.append((benchmark_name(benchmark), [
            [Cell(labels.get(r["arm"], r["arm"])), Cell(str(r["samples"])), Cell(_pct(r["correct_share"], 1)),
             Cell(_pct(r["format_failures_share"], 1)), Cell(_pct(r["truncated_share"], 1)),
             Cell(_pct(r["wrong_answers_share"], 1))] for r in rows]))
    caption = ("Why samples fail, in percent of all samples of an arm's seeds (strict grading): format failures "
               "gave no answer where asked (no closed \\boxed{}, an empty one, or cut off at max_new_tokens: "
               "truncated, a part of the format failures); wrong answers gave a box whose content is not the gold "
               "(not a number, or a wrong value). Correct + format failures + wrong answers = 100.")
    return Table(name, caption, ["Arm", "Samples", "Correct", "Format failures", "of which truncated",
                                 "Wrong answers"], sections)


# ---------------------------------------------------------------- writers

_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    escaped = "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)
    return escaped.replace("±", r"$\pm$").replace("–", "--").replace(" x ", r" $\times$ ")


def _text_width(table: Table) -> int:
    rows = [row for _, section in table.sections for row in section]
    return sum(max([len(h)] + [len(row[i].text) + len(row[i].interval) // 2 for row in rows])
               for i, h in enumerate(table.headers))


def to_latex(table: Table) -> str:
    """A booktabs ``table`` environment (needs ``booktabs`` and ``graphicx`` in the preamble)."""
    width = len(table.headers)

    def cell(c: Cell) -> str:
        text = rf"\textbf{{{latex_escape(c.text)}}}" if c.bold else latex_escape(c.text)
        return text + (rf" {{\scriptsize {latex_escape(c.interval)}}}" if c.interval else "")

    lines = [r"\begin{table}[ht]", r"\centering", rf"\caption{{{latex_escape(table.caption)}}}",
             rf"\label{{tab:{table.name}}}"]
    wide = _text_width(table) + 3 * width > 90  # about a line of text: shrink a wider table to fit
    spec = "l" * table.key_columns + "r" * (width - table.key_columns)
    lines += ([r"\resizebox{\linewidth}{!}{%"] if wide else []) + [rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                                                                  " & ".join(latex_escape(h) for h in table.headers)
                                                                  + r" \\"]
    for title, rows in table.sections:
        lines.append(r"\midrule")
        if title:
            lines.append(rf"\multicolumn{{{width}}}{{l}}{{\emph{{{latex_escape(title)}}}}} \\")
        lines += [" & ".join(cell(c) for c in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}"] + (["}"] if wide else []) + [r"\end{table}"]
    return "\n".join(lines) + "\n"


def latex_document(tables: list[Table]) -> str:
    """A standalone document holding ``tables`` (compiles with pdflatex)."""
    body = "\n".join(to_latex(t) for t in tables)
    return ("\\documentclass{article}\n\\usepackage[margin=2cm]{geometry}\n"
            "\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\begin{document}\n" + body + "\\end{document}\n")


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table, the caption above it, section titles as italic rows."""
    def cell(c: Cell) -> str:
        text = c.text.replace("|", "\\|")
        text = f"**{text}**" if c.bold and text else text
        return f"{text} {c.interval}" if c.interval else text

    width = len(table.headers)
    lines = [f"**Table ({table.name}).** {table.caption}", "", "| " + " | ".join(table.headers) + " |",
             "|" + "|".join([":---"] * table.key_columns + ["---:"] * (width - table.key_columns)) + "|"]
    for title, rows in table.sections:
        if title and len(table.sections) > 1:
            lines.append("| " + " | ".join([f"*{title}*"] + [""] * (width - 1)) + " |")
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """One line per row: the section title, then the cells as text (no bold)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section"] + table.headers)
    for title, rows in table.sections:
        for row in rows:
            writer.writerow([title] + [f"{c.text} {c.interval}" if c.interval else c.text for c in row])
    return buffer.getvalue()


def write_table(table: Table, out_dir: Path) -> list[Path]:
    """``<name>.tex``, ``<name>.md`` and ``<name>.csv`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, text in ((".tex", to_latex(table)), (".md", to_markdown(table)), (".csv", to_csv(table))):
        path = out_dir / f"{table.name}{suffix}"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
