"""Figures of a sweep: Pass@1 against cost with the Pareto front, and training curves of every trial.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend switch); each figure is
written as PNG and SVG.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tina_sweep.report.frame import read_json, read_jsonl
from tina_sweep.report.pareto import pareto_front

COST_NAMES = {"total_usd": "total cost", "train_usd": "training cost", "eval_usd": "evaluation cost",
              "device_hours": "device-hours"}
COST_LABELS = {
    "total_usd": "total cost, training + evaluation (US$)",
    "train_usd": "training cost (US$)",
    "eval_usd": "evaluation cost (US$)",
    "device_hours": "device time, training + evaluation (device-hours)",
}
CURVE_METRICS = (("reward", "mean reward per completion"),
                 ("completions/mean_length", "mean completion length (tokens)"))
_BASE_COLOR, _TRIAL_COLOR, _FRONT_COLOR = "#d62728", "#1f77b4", "#555555"
_SEED_STYLES = ("-", "--", ":", "-.")


def _slug(text: str) -> str:
    """A file-name-safe version of a benchmark or column name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "x"


def _save(figure: Figure, out_dir: Path, stem: str) -> tuple[Path, Path]:
    """Write ``stem.png`` and ``stem.svg`` (reproducible SVG ids, no timestamps)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    with matplotlib.rc_context({"svg.hashsalt": stem}):
        figure.savefig(png, dpi=150, metadata={"Software": None})
        figure.savefig(svg, metadata={"Date": None})
    return png, svg


def _percent(values: list[Any]) -> list[float]:
    """Fractions in [0, 1] -> percent; a missing value becomes NaN (not drawn)."""
    return [float("nan") if v is None else 100.0 * float(v) for v in values]


def _points(summary: pl.DataFrame, cost: str, benchmark: str) -> pl.DataFrame:
    """The rows of ``benchmark`` that have both a Pass@1 and a ``cost`` value."""
    return summary.filter((pl.col("benchmark") == benchmark) & pl.col("mean").is_not_null()
                          & pl.col(cost).is_not_null())


def _has_points(summary: pl.DataFrame, cost: str, benchmark: str) -> bool:
    return not _points(summary, cost, benchmark).is_empty()


def pareto_figure(summary: pl.DataFrame, cost: str = "total_usd", benchmark: str = "average",
                  title: str | None = None) -> Figure:
    """Pass@1 (%) against ``cost`` for every arm on ``benchmark``: 95% CI bars, the front as a step line.

    Trials are labelled by their axis values; the base model is a red star. Raises ValueError when the
    summary has no row with a score and a cost for that benchmark.
    """
    rows = _points(summary, cost, benchmark)
    if rows.is_empty():
        raise ValueError(f"no arm has a Pass@1 and a {cost} value on benchmark {benchmark!r}")
    rows = pareto_front(rows, cost=cost, score="mean").sort(cost)
    x_max = float(rows[cost].max())  # type: ignore[arg-type]
    figure = Figure(figsize=(8, 5.2), layout="constrained")
    ax = figure.add_subplot()
    for kind, color, marker, size, name in (("trial", _TRIAL_COLOR, "o", 40, "trials"),
                                            ("baseline", _BASE_COLOR, "*", 160, "base model")):
        part = rows.filter((pl.col("kind") == "baseline") == (kind == "baseline"))
        if part.is_empty():
            continue
        x = part[cost].cast(pl.Float64).to_list()
        y = _percent(part["mean"].to_list())
        low = [0.0 if math.isnan(lo) else max(0.0, m - lo) for m, lo in zip(y, _percent(part["ci_low"].to_list()))]
        high = [0.0 if math.isnan(hi) else max(0.0, hi - m) for m, hi in zip(y, _percent(part["ci_high"].to_list()))]
        bars = ax.errorbar(x, y, yerr=[low, high], fmt="none", ecolor=color, elinewidth=1, capsize=3, alpha=0.7)
        bars.lines[2][0].set_gid(f"ci:{kind}")
        ax.scatter(x, y, s=size, marker=marker, color=color, edgecolor="black", linewidth=0.5, zorder=3,
                   label=name, gid=f"points:{kind}")
        for label, xi, yi, front in zip(part["label"].to_list(), x, y, part["on_front"].to_list()):
            left = xi > 0.75 * x_max  # labels of the dearest arms go left of the point, inside the axes
            ax.annotate(label, (xi, yi), xytext=(-5 if left else 5, 4), textcoords="offset points", fontsize=8,
                        ha="right" if left else "left", fontweight="bold" if front else "normal")
    front = rows.filter(pl.col("on_front"))
    ax.step(front[cost].cast(pl.Float64).to_list(), _percent(front["mean"].to_list()), where="post",
            color=_FRONT_COLOR, linestyle="--", linewidth=1.2, zorder=2, label="Pareto front", gid="front")
    ax.set_xlabel(COST_LABELS.get(cost, cost))
    ax.set_ylabel(f"Pass@1 on {benchmark} (%)")
    ax.margins(x=0.08, y=0.08)
    ax.set_xlim(left=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    heading = f"{title}: " if title else ""
    ax.set_title(f"{heading}Pass@1 on {benchmark} vs {COST_NAMES.get(cost, cost)} (bars: 95% bootstrap CI)",
                 fontsize=10)
    return figure


def pareto_plot(summary: pl.DataFrame, out_dir: Path, cost: str = "total_usd", benchmark: str = "average",
                title: str | None = None) -> tuple[Path, Path]:
    """``pareto_<benchmark>_<cost>.png`` and ``.svg`` in ``out_dir`` (see ``pareto_figure``)."""
    figure = pareto_figure(summary, cost=cost, benchmark=benchmark, title=title)
    return _save(figure, Path(out_dir), f"pareto_{_slug(benchmark)}_{_slug(cost)}")


@dataclass(frozen=True)
class Curve:
    """One trial's training log: its arm (the varied axis values), seed, and per-step metrics."""

    trial_id: str
    arm: str
    seed: int | None
    steps: dict[str, list[tuple[int, float]]]
    dev: list[tuple[int, float]] = field(default_factory=list)  # dev Pass@1 by step (a trial with a dev split)
    stop: tuple[str, int] | None = None  # ("pruned" | "early_stopped", step) when it stopped before its horizon


STOP_MARKERS = {"pruned": ("X", "pruned"), "early_stopped": ("o", "early-stopped")}


def _stop_and_dev(trial_dir: Path) -> tuple[tuple[str, int] | None, list[tuple[int, float]]]:
    """Where a trial stopped early (from result.json) and its dev curve (result.json, else its dev files)."""
    from tina_sweep.trial.dev import read_dev_curve

    record = read_json(trial_dir / "result.json") if (trial_dir / "result.json").is_file() else None
    stop, dev = None, []
    if isinstance(record, dict):
        stopped = record.get("stopped") or {}
        if stopped.get("reason") in STOP_MARKERS and isinstance(stopped.get("step"), int):
            stop = (stopped["reason"], stopped["step"])
        curve = (record.get("dev") or {}).get("curve") or {}
        dev = sorted((int(step), float(value)) for step, value in curve.items())
    return stop, dev or sorted(read_dev_curve(trial_dir).items())


def _trial_meta(trial_dir: Path) -> tuple[dict[str, Any], int | None]:
    """Axis values (seed removed) and seed of a trial, from ``spec.json`` or ``result.json``."""
    for name in ("spec.json", "result.json"):
        path = trial_dir / name
        if path.exists():
            record = read_json(path)
            if not isinstance(record, dict):
                continue
            axes = dict(record.get("axes") or {})
            spec = record.get("spec") or {}
            seed = axes.pop("seed", spec.get("seed"))
            return axes, seed
    return {}, None


def _natural(value: Any) -> tuple[int, float, str]:
    """Sort key: numbers by value, then everything else as text."""
    try:
        return 0, float(value), ""
    except (TypeError, ValueError):
        return 1, 0.0, str(value)


def load_curves(sweep_dir: Path) -> list[Curve]:
    """Every trial's ``train_log.jsonl`` in ``sweep_dir/trials``, sorted by arm value and seed.

    The arm is named by the axes whose values differ between trials (all axes when only one arm exists).
    """
    raw: list[tuple[str, dict[str, Any], int | None, dict[str, list[tuple[int, float]]]]] = []
    for log in sorted(Path(sweep_dir).glob("trials/*/train_log.jsonl")):
        steps: dict[str, list[tuple[int, float]]] = {key: [] for key, _ in CURVE_METRICS}
        for record in read_jsonl(log, torn_tail=True):
            if not isinstance(record, dict):
                continue
            step = record.get("step")
            for key, points in steps.items():
                value = record.get(key)
                if isinstance(step, int) and isinstance(value, (int, float)):
                    points.append((step, float(value)))
        axes, seed = _trial_meta(log.parent)
        raw.append((log.parent.name, axes, seed, steps))
    names = sorted({name for _, axes, _, _ in raw for name in axes})
    varied = [n for n in names if len({json.dumps(axes.get(n), sort_keys=True) for _, axes, _, _ in raw}) > 1]
    shown = varied or names
    curves = [Curve(trial_id, ", ".join(f"{n}={axes.get(n)}" for n in shown) or trial_id, seed, steps,
                    *reversed(_stop_and_dev(Path(sweep_dir) / "trials" / trial_id)))
              for trial_id, axes, seed, steps in raw]
    order = {trial_id: tuple(_natural(axes.get(n)) for n in shown) for trial_id, axes, _, _ in raw}
    return sorted(curves, key=lambda c: (order[c.trial_id], c.seed if c.seed is not None else -1, c.trial_id))


def _smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` points (shorter at the start)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def learning_curves_figure(curves: list[Curve], title: str = "", smooth: int = 5) -> Figure:
    """Two panels (reward, completion length) against training step, and a third (dev Pass@1 at each checkpoint)
    when trials have a dev split; one colour per arm, one dash per seed, a mark where a trial was pruned or
    stopped early.

    Raw per-step values are thin lines; with ``smooth`` > 1 a trailing moving average is drawn over them.
    """
    arms = list(dict.fromkeys(c.arm for c in curves))
    seeds = list(dict.fromkeys(c.seed for c in curves))
    palette = matplotlib.colormaps["viridis" if len(arms) > 10 else "tab10"]
    colors = {arm: palette(i / max(1, len(arms) - 1) if len(arms) > 10 else i) for i, arm in enumerate(arms)}
    styles = {seed: _SEED_STYLES[i % len(_SEED_STYLES)] for i, seed in enumerate(seeds)}
    with_dev = any(curve.dev for curve in curves)
    figure = Figure(figsize=(16 if with_dev else 11, 4.4), layout="constrained")
    axes = figure.subplots(1, 3 if with_dev else 2)
    for ax, (key, ylabel) in zip(axes, CURVE_METRICS):
        for curve in curves:
            points = curve.steps.get(key, [])
            if not points:
                continue
            x, y = [p[0] for p in points], [p[1] for p in points]
            color, style = colors[curve.arm], styles[curve.seed]
            smoothed = smooth > 1 and len(y) >= smooth
            ax.plot(x, y, color=color, linestyle=style, linewidth=0.8 if smoothed else 1.5,
                    alpha=0.35 if smoothed else 1.0, gid=f"{key}:{curve.trial_id}")
            if smoothed:
                ax.plot(x, _smooth(y, smooth), color=color, linestyle=style, linewidth=1.8,
                        gid=f"{key}:smoothed:{curve.trial_id}")
            _mark_stop(ax, curve, dict(zip(x, _smooth(y, smooth) if smoothed else y)), color, key)
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    if with_dev:
        ax = axes[2]
        for curve in curves:
            if curve.dev:
                x, y = [p[0] for p in curve.dev], [100 * p[1] for p in curve.dev]
                ax.plot(x, y, color=colors[curve.arm], linestyle=styles[curve.seed], marker=".", linewidth=1.5,
                        gid=f"dev:{curve.trial_id}")
                _mark_stop(ax, curve, dict(zip(x, y)), colors[curve.arm], "dev")
        ax.set_xlabel("training step")
        ax.set_ylabel("dev Pass@1 (%)")
        ax.grid(True, alpha=0.3)
    handles = [Line2D([], [], color=colors[arm], linewidth=2, label=arm) for arm in arms]
    if len(seeds) > 1:
        handles += [Line2D([], [], color="black", linestyle=styles[s], label=f"seed {s}") for s in seeds]
    for reason in dict.fromkeys(c.stop[0] for c in curves if c.stop):
        marker, label = STOP_MARKERS[reason]
        handles.append(Line2D([], [], color="black", marker=marker, linestyle="none", label=label))
    axes[0].legend(handles=handles, fontsize=8, loc="best")
    note = f" (thin: each step; bold: moving mean over {smooth} steps)" if smooth > 1 else ""
    figure.suptitle(f"{title + ': ' if title else ''}training curves{note}", fontsize=10)
    return figure


def _mark_stop(ax, curve: Curve, values: dict[int, float], color, key: str) -> None:
    """A mark at the step where ``curve`` was pruned or stopped early (on its value there, or its last one)."""
    if curve.stop is None or not values:
        return
    reason, step = curve.stop
    at = step if step in values else max(s for s in values if s <= step) if any(s <= step for s in values) \
        else min(values)
    marker, _ = STOP_MARKERS[reason]
    ax.plot([at], [values[at]], marker=marker, markersize=9, color=color, markeredgecolor="black",
            linestyle="none", gid=f"{key}:{reason}:{curve.trial_id}")


def _study_name(sweep_dir: Path) -> str:
    """The study's name from ``study.json``, else the folder name."""
    path = Path(sweep_dir) / "study.json"
    if path.exists():
        record = read_json(path)
        study = record.get("study") if isinstance(record, dict) else None
        name = study.get("name") if isinstance(study, dict) else None
        return str(name or Path(sweep_dir).name)
    return Path(sweep_dir).name


def learning_curves(sweep_dir: Path, out_dir: Path, smooth: int = 5) -> list[Path]:
    """``learning_curves.png`` and ``.svg`` for the study in ``sweep_dir``; empty when no trial has a log."""
    curves = load_curves(Path(sweep_dir))
    if not any(points for c in curves for points in c.steps.values()):
        return []
    figure = learning_curves_figure(curves, title=_study_name(Path(sweep_dir)), smooth=smooth)
    return list(_save(figure, Path(out_dir), "learning_curves"))


def write_figures(summary: pl.DataFrame, sweep_dir: Path, out_dir: Path) -> list[Path]:
    """Every figure of the report: Pareto plots (US$ and device-hours; average first, then each benchmark)
    and the learning curves. Returns the written paths, PNG before SVG for each figure."""
    title = _study_name(Path(sweep_dir))
    benchmarks = summary["benchmark"].unique(maintain_order=True).to_list()
    benchmarks = (["average"] if "average" in benchmarks else []) + sorted(b for b in benchmarks if b != "average")
    paths: list[Path] = []
    for benchmark in benchmarks:
        for cost in ("total_usd", "device_hours"):
            if cost in summary.columns and _has_points(summary, cost, benchmark):
                paths += pareto_plot(summary, Path(out_dir), cost=cost, benchmark=benchmark, title=title)
    return paths + learning_curves(Path(sweep_dir), Path(out_dir))
