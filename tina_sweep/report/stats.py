"""Per-arm statistics: mean and std of Pass@1 across seeds, bootstrap confidence intervals, paired differences.

The bootstrap resamples problems (and, for an arm with several seeds, its seeds) with replacement. Problem
draws are shared by every arm for a benchmark, so the difference between two arms is a *paired* bootstrap on
the same problems; seed draws are shared by every benchmark of an arm, so the ``average`` (the mean over
benchmarks) is bootstrapped as a whole. Each stream comes from a numpy Generator keyed by the report seed and
the benchmark or arm name: the result is deterministic and an arm's interval does not move when another arm
is added. Intervals use the problems every arm was evaluated on (normally all of them).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from tina_sweep.report.frame import BASE_ARM, axis_columns

CONFIDENCE = 0.95
N_BOOT = 2000
AVERAGE = "average"

SUMMARY_COLUMNS = ["arm", "label", "kind"]  # then the axis columns, then SUMMARY_TAIL
SUMMARY_TAIL = ["benchmark", "mean", "std", "n_seeds", "n_problems", "ci_low", "ci_high", "train_usd", "eval_usd",
                "total_usd", "device_hours", "steps_pct_epoch", "is_best", "vs_base", "vs_base_low", "vs_base_high",
                "vs_base_differs", "vs_best", "vs_best_low", "vs_best_high", "vs_best_differs"]


def generator(seed: int, *key: str) -> np.random.Generator:
    """A Generator that depends only on ``seed`` and ``key`` (not on how many draws came before)."""
    spawn_key = tuple(zlib.crc32(part.encode()) for part in key)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=spawn_key))


def percentile_ci(draws: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central ``confidence`` interval of bootstrap draws."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_mean(matrix: np.ndarray, problem_draws: np.ndarray, seed_draws: np.ndarray) -> np.ndarray:
    """Bootstrap draws of Pass@1 from a (seeds x problems) success-rate matrix.

    ``problem_draws`` (B x problems) and ``seed_draws`` (B x seeds) hold indices drawn with replacement; draw b
    is the mean over the drawn seeds of each seed's mean over the drawn problems."""
    per_seed = np.stack([row[problem_draws].mean(axis=1) for row in matrix], axis=1)  # B x seeds
    return np.take_along_axis(per_seed, seed_draws, axis=1).mean(axis=1)


@dataclass
class _Arm:
    name: str
    trials: list[str]
    first: dict[str, Any]
    pass_at_1: dict[str, dict[str, float]] = field(default_factory=dict)  # trial -> benchmark -> value
    draws: dict[str, np.ndarray] = field(default_factory=dict)  # benchmark (and "average") -> B draws

    def means(self, benchmarks: list[str]) -> dict[str, tuple[float | None, float | None]]:
        """(mean, std across seeds) per benchmark and for the average over benchmarks."""
        out: dict[str, tuple[float | None, float | None]] = {}
        per_trial_average = []
        for trial in self.trials:
            values = [self.pass_at_1[trial][b] for b in benchmarks if b in self.pass_at_1[trial]]
            if values:
                per_trial_average.append(sum(values) / len(values))
        for benchmark in benchmarks:
            out[benchmark] = _mean_std([self.pass_at_1[t][benchmark] for t in self.trials
                                        if benchmark in self.pass_at_1[t]])
        out[AVERAGE] = _mean_std(per_trial_average)
        return out


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def _arms(frame: pl.DataFrame) -> dict[str, _Arm]:
    arms: dict[str, _Arm] = {}
    for row in frame.iter_rows(named=True):
        arm = arms.get(row["arm"])
        if arm is None:
            arm = arms[row["arm"]] = _Arm(row["arm"], [], row)
        if row["trial_id"] not in arm.pass_at_1:
            arm.trials.append(row["trial_id"])
            arm.pass_at_1[row["trial_id"]] = {}
        arm.pass_at_1[row["trial_id"]][row["benchmark"]] = row["pass_at_1"]
    return arms


def _draw(arms: dict[str, _Arm], outcomes: pl.DataFrame, benchmarks: list[str], n_boot: int, seed: int) -> None:
    """Fill each arm's bootstrap draws per benchmark and for the average (where outcomes allow)."""
    seed_draws = {}
    for name, arm in arms.items():
        k = len(arm.trials)
        seed_draws[name] = (generator(seed, "seeds", name).integers(0, k, (n_boot, k)) if k > 1
                            else np.zeros((n_boot, 1), dtype=np.int64))
    for benchmark in benchmarks:
        rows = outcomes.filter(pl.col("benchmark") == benchmark)
        by_trial = {trial: dict(zip(part["problem_id"], part["success_rate"]))
                    for (trial,), part in rows.group_by("trial_id")}
        needed = [t for arm in arms.values() for t in arm.trials if benchmark in arm.pass_at_1[t]]
        if not needed or any(t not in by_trial for t in needed):
            continue
        problems = sorted(set.intersection(*(set(by_trial[t]) for t in needed)))
        if not problems:
            continue
        problem_draws = generator(seed, "problems", benchmark).integers(0, len(problems), (n_boot, len(problems)))
        for name, arm in arms.items():
            trials = [t for t in arm.trials if benchmark in arm.pass_at_1[t]]
            if len(trials) != len(arm.trials):
                continue
            matrix = np.array([[by_trial[t][p] for p in problems] for t in trials])
            arm.draws[benchmark] = bootstrap_mean(matrix, problem_draws, seed_draws[name])
    for arm in arms.values():
        if benchmarks and all(b in arm.draws for b in benchmarks):
            arm.draws[AVERAGE] = np.mean([arm.draws[b] for b in benchmarks], axis=0)


def _difference(arm: _Arm, reference: _Arm | None, benchmark: str, means: dict[str, dict], confidence: float
                ) -> tuple[float | None, float | None, float | None, bool | None]:
    """(difference of means, CI low, CI high, CI excludes 0) of ``arm`` minus ``reference``."""
    if reference is None or reference is arm:
        return None, None, None, None
    mine, theirs = means[arm.name][benchmark][0], means[reference.name][benchmark][0]
    difference = None if mine is None or theirs is None else mine - theirs
    if benchmark not in arm.draws or benchmark not in reference.draws:
        return difference, None, None, None
    low, high = percentile_ci(arm.draws[benchmark] - reference.draws[benchmark], confidence)
    return difference, low, high, bool(low > 0 or high < 0)


def failure_shares(outcomes: pl.DataFrame) -> pl.DataFrame:
    """Per arm x benchmark, over every sample of every seed that strict grading explained (``reasons``): how many
    samples, and the shares correct, format failures (no box, empty box, truncated), wrong answers (not a number,
    wrong value) and truncated. Empty when no outcome row has reasons."""
    explained = outcomes.filter(pl.col("format_failures").is_not_null() & pl.col("samples").is_not_null())
    return (explained.with_columns(correct=pl.col("success_rate") * pl.col("samples"))
            .group_by("arm", "benchmark", maintain_order=True)
            .agg(pl.col("samples").sum(), pl.col("correct").sum(), pl.col("format_failures").sum(),
                 pl.col("wrong_answers").sum(), pl.col("truncated").sum())
            .select("arm", "benchmark", "samples",
                    *[(pl.col(c) / pl.col("samples")).alias(f"{c}_share")
                      for c in ("correct", "format_failures", "wrong_answers", "truncated")]))


def arm_summary(frame: pl.DataFrame, outcomes: pl.DataFrame, *, confidence: float = CONFIDENCE,
                n_boot: int = N_BOOT, seed: int = 0) -> pl.DataFrame:
    """One row per arm x benchmark (and benchmark ``average``), columns SUMMARY_COLUMNS + axes + SUMMARY_TAIL.

    mean/std: Pass@1 (a fraction) across the arm's seeds (std null with one seed); ci_low/ci_high: bootstrap
    interval of the mean; costs and steps_pct_epoch: means per seed; is_best: the trained arm with the best
    average; vs_base*/vs_best*: the paired difference from the base model / best arm, its interval, and
    whether that interval excludes 0 (null on the reference row itself)."""
    benchmarks = list(dict.fromkeys(frame["benchmark"].to_list()))
    arms = _arms(frame)
    _draw(arms, outcomes, benchmarks, n_boot, seed)
    means = {name: arm.means(benchmarks) for name, arm in arms.items()}
    trained = [a for a in arms.values() if a.first["kind"] != "baseline" and means[a.name][AVERAGE][0] is not None]
    best = max(trained, key=lambda a: means[a.name][AVERAGE][0]) if trained else None
    base = arms.get(BASE_ARM)
    per_trial = frame.unique("trial_id", keep="first", maintain_order=True)
    axes = axis_columns(frame)
    rows = []
    for name, arm in arms.items():
        trials = per_trial.filter(pl.col("trial_id").is_in(arm.trials))
        costs = {c: trials[c].mean() for c in ("train_usd", "eval_usd", "total_usd", "device_hours",
                                              "steps_pct_epoch")}
        problems = frame.filter(pl.col("arm") == name).group_by("benchmark").agg(pl.col("problems").max())
        n_problems = dict(zip(problems["benchmark"], problems["problems"]))
        for benchmark in benchmarks + [AVERAGE]:
            mean, std = means[name][benchmark]
            if mean is None:
                continue
            low, high = percentile_ci(arm.draws[benchmark], confidence) if benchmark in arm.draws else (None, None)
            count = (sum(v or 0 for v in n_problems.values()) if benchmark == AVERAGE else n_problems.get(benchmark))
            vs_base = _difference(arm, base, benchmark, means, confidence)
            vs_best = _difference(arm, best, benchmark, means, confidence)
            rows.append({"arm": name, "label": arm.first["label"], "kind": arm.first["kind"],
                         **{a: arm.first[a] for a in axes}, "benchmark": benchmark, "mean": mean, "std": std,
                         "n_seeds": len(arm.trials), "n_problems": count, "ci_low": low, "ci_high": high,
                         **costs, "is_best": best is arm,
                         "vs_base": vs_base[0], "vs_base_low": vs_base[1], "vs_base_high": vs_base[2],
                         "vs_base_differs": vs_base[3], "vs_best": vs_best[0], "vs_best_low": vs_best[1],
                         "vs_best_high": vs_best[2], "vs_best_differs": vs_best[3]})
    schema = {"arm": pl.String, "label": pl.String, "kind": pl.String, **{a: frame.schema[a] for a in axes},
              "benchmark": pl.String, "mean": pl.Float64, "std": pl.Float64, "n_seeds": pl.Int64,
              "n_problems": pl.Int64, "ci_low": pl.Float64, "ci_high": pl.Float64, "train_usd": pl.Float64,
              "eval_usd": pl.Float64, "total_usd": pl.Float64, "device_hours": pl.Float64,
              "steps_pct_epoch": pl.Float64, "is_best": pl.Boolean, "vs_base": pl.Float64,
              "vs_base_low": pl.Float64, "vs_base_high": pl.Float64, "vs_base_differs": pl.Boolean,
              "vs_best": pl.Float64, "vs_best_low": pl.Float64, "vs_best_high": pl.Float64,
              "vs_best_differs": pl.Boolean}
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
