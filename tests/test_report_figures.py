"""Report figures and page: the Pareto front, the Pareto and learning-curve plots, the single report page and
its rendering in a real headless browser. Everything runs on hand-made frames and sweep folders."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from tina_sweep.report.page import study_definition, write_page
from tina_sweep.report.pareto import pareto_front
from tina_sweep.report.plots import (
    learning_curves,
    learning_curves_figure,
    load_curves,
    pareto_figure,
    pareto_plot,
    write_figures,
)

# --- Pareto front -------------------------------------------------------------------------------------------

# (arm, cost, score, on the front?) for one benchmark
KNOWN = [
    ("cheapest", 0.5, 0.10, True),
    ("a", 1.0, 0.20, True),
    ("b", 2.0, 0.50, True),
    ("same-cost-lower", 2.0, 0.40, False),   # b costs the same and scores more
    ("same-score-dearer", 3.0, 0.50, False),  # b scores the same and costs less
    ("best", 4.0, 0.70, True),
    ("best-twin", 4.0, 0.70, True),         # identical to best: neither dominates the other
    ("dear-worse", 5.0, 0.60, False),
    ("no-cost", None, 0.99, False),
    ("no-score", 0.1, None, False),
]


def _known_frame() -> pl.DataFrame:
    rows = [{"arm": arm, "benchmark": "x", "total_usd": cost, "mean": score} for arm, cost, score, _ in KNOWN]
    # benchmark y: same arms, other scores; here "dear-worse" is the best and "b" is beaten by "a"
    other = {"cheapest": 0.1, "a": 0.6, "b": 0.5, "same-cost-lower": 0.4, "same-score-dearer": 0.5,
             "best": 0.7, "best-twin": 0.2, "dear-worse": 0.9, "no-cost": 0.99, "no-score": None}
    rows += [{"arm": arm, "benchmark": "y", "total_usd": cost, "mean": other[arm]} for arm, cost, _, _ in KNOWN]
    return pl.DataFrame(rows, schema={"arm": pl.String, "benchmark": pl.String, "total_usd": pl.Float64,
                                      "mean": pl.Float64})


def test_pareto_front_marks_the_known_front_per_benchmark():
    frame = _known_frame()
    marked = pareto_front(frame)
    assert marked.drop("on_front").equals(frame)  # rows and order kept
    x = marked.filter(pl.col("benchmark") == "x")
    assert dict(zip(x["arm"], x["on_front"])) == {arm: front for arm, _, _, front in KNOWN}
    y = marked.filter(pl.col("benchmark") == "y")
    assert set(y.filter("on_front")["arm"]) == {"cheapest", "a", "best", "dear-worse"}


def test_pareto_front_other_columns_and_one_group():
    frame = pl.DataFrame({"device_hours": [3.0, 1.0, 2.0, float("nan")], "score": [0.3, 0.1, 0.05, 0.9]})
    marked = pareto_front(frame, cost="device_hours", score="score")
    assert marked["on_front"].to_list() == [True, True, False, False]


# --- a hand-made arm summary (the schema of report.stats.arm_summary) ----------------------------------------

ARMS = [  # arm, label, kind, lora.rank, total_usd, device_hours
    ("base", "base model", "baseline", None, 0.5, 0.25),
    ("r4", "lora.rank=4", "trial", "4", 3.0, 1.5),
    ("r16", "lora.rank=16", "trial", "16", 2.0, 1.0),
    ("r64", "lora.rank=64", "trial", "64", 4.0, 2.0),
]
SCORES = {"aime24": [0.10, 0.20, 0.15, 0.05], "math500": [0.50, 0.60, 0.62, 0.30]}


def _summary() -> pl.DataFrame:
    rows = []
    scores = {**SCORES, "average": [(a + b) / 2 for a, b in zip(*SCORES.values())]}
    for benchmark, values in scores.items():
        for (arm, label, kind, rank, usd, hours), mean in zip(ARMS, values):
            rows.append({"arm": arm, "label": label, "kind": kind, "lora.rank": rank, "benchmark": benchmark,
                         "mean": mean, "std": 0.01, "n_seeds": 2, "n_problems": 30,
                         "ci_low": max(0.0, mean - 0.04), "ci_high": min(1.0, mean + 0.06),
                         "train_usd": usd * 0.8, "eval_usd": usd * 0.2, "total_usd": usd, "device_hours": hours,
                         "steps_pct_epoch": None if kind == "baseline" else 10.0})
    return pl.DataFrame(rows)


def _by_gid(ax, gid: str):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    assert len(found) == 1, gid
    return found[0]


def test_pareto_figure_points_bars_and_front_match_the_frame():
    summary = _summary()
    ax = pareto_figure(summary, cost="total_usd", benchmark="math500").axes[0]
    rows = summary.filter(pl.col("benchmark") == "math500")
    trials = rows.filter(pl.col("kind") == "trial").sort("total_usd")
    points = _by_gid(ax, "points:trial").get_offsets()
    np.testing.assert_allclose(points, np.column_stack([trials["total_usd"], trials["mean"] * 100]))
    base = _by_gid(ax, "points:baseline").get_offsets()
    np.testing.assert_allclose(base, [[0.5, 50.0]])
    bars = _by_gid(ax, "ci:trial").get_segments()
    for segment, row in zip(bars, trials.iter_rows(named=True)):
        np.testing.assert_allclose(segment, [[row["total_usd"], row["ci_low"] * 100],
                                             [row["total_usd"], row["ci_high"] * 100]])
    # front on math500: base (0.5, 50), r16 (2.0, 62); r4 (3.0, 60) and r64 (4.0, 30) are dominated
    front = _by_gid(ax, "front")
    np.testing.assert_allclose(front.get_xdata(), [0.5, 2.0])
    np.testing.assert_allclose(front.get_ydata(), [50.0, 62.0])
    assert front.get_drawstyle() == "steps-post"
    labels = {t.get_text() for t in ax.texts}
    assert labels == {"base model", "lora.rank=4", "lora.rank=16", "lora.rank=64"}
    assert ax.get_ylabel() == "Pass@1 on math500 (%)" and "US$" in ax.get_xlabel()


def test_pareto_plot_writes_png_and_svg_in_device_hours(tmp_path):
    png, svg = pareto_plot(_summary(), tmp_path, cost="device_hours", benchmark="average")
    assert png.name == "pareto_average_device_hours.png" and svg.suffix == ".svg"
    assert svg.read_text().lstrip().startswith("<?xml") and svg.stat().st_size > 5_000
    with Image.open(png) as image:
        assert image.format == "PNG" and 800 <= image.width <= 2000 and 500 <= image.height <= 1500
    ax = pareto_figure(_summary(), cost="device_hours").axes[0]
    assert "device-hours" in ax.get_xlabel()
    np.testing.assert_allclose(_by_gid(ax, "points:trial").get_offsets()[:, 0], [1.0, 1.5, 2.0])
    with pytest.raises(ValueError, match="no arm"):
        pareto_plot(_summary(), tmp_path, benchmark="gpqa")


# --- learning curves ----------------------------------------------------------------------------------------

def _log(rank: int, seed: int, steps: int = 6) -> list[dict]:
    rows = [{"step": s, "reward": 0.1 * s + rank / 100 + seed / 1000, "completions/mean_length": 20.0 + s + rank,
             "loss": 0.0} for s in range(1, steps + 1)]
    return rows + [{"train_runtime": 12.3, "step": steps}]  # a closing summary line without metrics


def _sweep(tmp_path: Path) -> Path:
    """A sweep folder: rank 4 with seeds 1 and 2, rank 16 with seed 1, and a base model without a log."""
    sweep = tmp_path / "sweeps" / "lora_rank"
    study = {"name": "lora_rank", "description": "rank ablation", "base": {"lora.alpha_per_rank": 4.0},
             "axes": {"lora.rank": [4, 16]}, "seeds": [1, 2], "design": "grid",
             "scales": {"cpu": {"base": {"training.max_steps": 6}, "axes": {}, "seeds": None}}}
    jobs = [{"trial_id": "base-0", "kind": "baseline", "axes": {}}]
    for rank, seed in ((16, 1), (4, 2), (4, 1)):
        trial_id = f"rank={rank}-s{seed}"
        jobs.append({"trial_id": trial_id, "kind": "trial", "axes": {"lora.rank": rank, "seed": seed}})
        folder = sweep / "trials" / trial_id
        folder.mkdir(parents=True)
        (folder / "spec.json").write_text(json.dumps({"kind": "trial", "axes": {"lora.rank": rank, "seed": seed},
                                                      "spec": {"seed": seed, "lora": {"rank": rank}}}))
        (folder / "train_log.jsonl").write_text("\n".join(json.dumps(r) for r in _log(rank, seed)) + "\n")
    (sweep / "trials" / "base-0").mkdir()
    (sweep / "study.json").write_text(json.dumps({"study": study, "scale": "cpu", "jobs": jobs}))
    return sweep


def test_load_curves_reads_logs_arms_and_seeds(tmp_path):
    curves = load_curves(_sweep(tmp_path))
    assert [(c.arm, c.seed) for c in curves] == [("lora.rank=4", 1), ("lora.rank=4", 2), ("lora.rank=16", 1)]
    reward = curves[0].steps["reward"]
    assert [s for s, _ in reward] == [1, 2, 3, 4, 5, 6]
    assert reward[2][1] == pytest.approx(0.3 + 0.04 + 0.001)


def test_learning_curves_lines_colours_and_files(tmp_path):
    sweep = _sweep(tmp_path)
    figure = learning_curves_figure(load_curves(sweep), title="lora_rank", smooth=3)
    reward_ax, length_ax = figure.axes
    lines = {line.get_gid(): line for line in reward_ax.get_lines()}
    raw = lines["reward:rank=4-s2"]
    np.testing.assert_allclose(raw.get_xdata(), range(1, 7))
    np.testing.assert_allclose(raw.get_ydata(), [r["reward"] for r in _log(4, 2)[:-1]])
    smoothed = lines["reward:smoothed:rank=4-s2"].get_ydata()
    assert smoothed[2] == pytest.approx(np.mean(raw.get_ydata()[:3]))
    length = {line.get_gid(): line for line in length_ax.get_lines()}["completions/mean_length:rank=16-s1"]
    np.testing.assert_allclose(length.get_ydata(), [20.0 + s + 16 for s in range(1, 7)])
    # one colour per arm, one dash style per seed
    assert lines["reward:rank=4-s1"].get_color() == lines["reward:rank=4-s2"].get_color()
    assert lines["reward:rank=4-s1"].get_color() != lines["reward:rank=16-s1"].get_color()
    assert lines["reward:rank=4-s1"].get_linestyle() != lines["reward:rank=4-s2"].get_linestyle()
    legend = [t.get_text() for t in reward_ax.get_legend().get_texts()]
    assert legend == ["lora.rank=4", "lora.rank=16", "seed 1", "seed 2"]
    paths = learning_curves(sweep, tmp_path / "figures")
    assert [p.name for p in paths] == ["learning_curves.png", "learning_curves.svg"]
    assert all(p.stat().st_size > 1_000 for p in paths)
    assert learning_curves(tmp_path / "empty", tmp_path / "none") == []


def test_write_figures_pareto_per_benchmark_and_cost_plus_curves(tmp_path):
    paths = write_figures(_summary(), _sweep(tmp_path), tmp_path / "report")
    names = [p.name for p in paths]
    expected = [f"pareto_{b}_{c}.{ext}" for b in ("average", "aime24", "math500")
                for c in ("total_usd", "device_hours") for ext in ("png", "svg")]
    assert names == expected + ["learning_curves.png", "learning_curves.svg"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)


# --- the report page -------------------------------------------------------------------------------------------

TABLE = "| arm | average |\n|---|---:|\n| base model | 30.0 |\n| lora.rank=16 | 38.5 |\n"


def _page(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    sweep = _sweep(tmp_path)
    out = sweep / "report"
    figures = [*pareto_plot(_summary(), out / "figures"), *learning_curves(sweep, out / "figures")]
    study = json.loads((sweep / "study.json").read_text())
    tables = {"Pass@1 per arm": TABLE, "Cost per arm": "| a | b |\n|---|---|\n| x | 1 |"}
    md, html = write_page(out, study=study, tables_md=tables, figures=figures,
                          notes=["two seeds per arm; **bootstrap** CIs"])
    return md, html, figures


def test_study_definition_applies_the_scale():
    study = json.loads(json.dumps({"study": {"name": "s", "description": "d", "base": {"a.b": 1},
                                             "axes": {"lora.rank": [4, 8]}, "seeds": [1],
                                             "scales": {"cpu": {"base": {"c.d": "x|y"}, "axes": {"lora.rank": [2]},
                                                                "seeds": [5, 6]}}},
                                   "scale": "cpu", "jobs": [{"kind": "baseline"}, {"kind": "trial"}]}))
    rows = dict(study_definition(study))
    assert rows["axes"] == "`lora.rank` = `2`"
    assert rows["seeds"] == "5, 6" and rows["scale"] == "cpu"
    assert rows["base overrides"] == "`a.b` = `1`; `c.d` = `x\\|y`"
    assert rows["jobs"] == "1 trial + 1 base model evaluation"


def test_page_has_definition_tables_notes_and_images(tmp_path):
    md_path, html_path, figures = _page(tmp_path)
    md = md_path.read_text()
    assert "# Study: lora_rank" in md and "| seeds | 1, 2 |" in md and "`training.max_steps` = `6`" in md
    assert "## Pass@1 per arm" in md and "| lora.rank=16 | 38.5 |" in md and "**bootstrap**" in md
    assert "](figures/pareto_average_total_usd.png)" in md and "([SVG](figures/learning_curves.svg))" in md
    html = html_path.read_text()
    assert html.count("<table>") == 3  # study definition + two tables
    assert "<td>lora.rank=16</td>" in html and '<td style="text-align:right">38.5</td>' in html
    assert "<strong>bootstrap</strong>" in html
    for png in (p for p in figures if p.suffix == ".png"):
        assert f"data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}" in html
    assert html.count("<img ") == 2 and "http://" not in html and "https://" not in html
    assert "<script" not in html


# --- a real headless browser ------------------------------------------------------------------------------------

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
            "chrome-headless-shell", "headless_shell")


def _browser() -> str | None:
    named = os.environ.get("TINA_SWEEP_BROWSER")
    return named if named and shutil.which(named) else next(filter(None, map(shutil.which, BROWSERS)), None)


def test_page_renders_in_browser(tmp_path):
    """Chromium (headless) opens index.html from disk and takes a screenshot: the page and its embedded
    Pareto plot are drawn (the base model's red star shows up in the pixels)."""
    browser = _browser()
    if browser is None:
        pytest.skip("no headless Chromium found (apt-get install chromium-headless-shell, or set "
                    "TINA_SWEEP_BROWSER); the page's content is checked without a browser above")
    _, html_path, _ = _page(tmp_path)
    shot = tmp_path / "screenshot.png"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000", f"--screenshot={shot}",
               html_path.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    assert pixels.shape == (2000, 1200, 3)
    dark = (pixels.sum(axis=2) < 150).mean()  # text and plot lines
    red = (np.abs(pixels - [214, 39, 40]).sum(axis=2) < 40).sum()  # the base model's star (#d62728)
    assert 0.002 < dark < 0.5, dark
    assert red > 30, red
