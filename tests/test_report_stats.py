"""Report statistics on hand-made outcomes: bootstrap intervals in known cases, paired differences, seeds."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tina_sweep.report.stats import AVERAGE, SUMMARY_COLUMNS, SUMMARY_TAIL, arm_summary, bootstrap_mean, generator


def make_data(arms: dict[str, list[dict[str, list[float]]]], rank: dict[str, int] | None = None
              ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A frame and outcomes from {arm: [per seed: {benchmark: [success rate per problem]}]}; arm "base" is the
    baseline. Costs: $1 train + $0.5 eval per trained seed."""
    frame_rows, outcome_rows = [], []
    for arm, seeds in arms.items():
        kind = "baseline" if arm == "base" else "trial"
        for index, benchmarks in enumerate(seeds):
            seed = None if kind == "baseline" else 40 + index
            trial = f"{arm}-s{seed}"
            for benchmark, rates in benchmarks.items():
                frame_rows.append({
                    "study": "hand", "trial_id": trial, "kind": kind, "arm": arm,
                    "label": "base model" if kind == "baseline" else f"lora.rank={(rank or {}).get(arm, 0)}",
                    "lora.rank": None if kind == "baseline" else (rank or {}).get(arm, 0), "seed": seed,
                    "benchmark": benchmark, "pass_at_1": float(np.mean(rates)), "problems": len(rates),
                    "samples_per_problem": 1, "train_steps": 0 if kind == "baseline" else 10,
                    "steps_pct_epoch": None if kind == "baseline" else 5.0, "train_seconds": 1.0,
                    "eval_seconds": 1.0, "device": "cpu", "device_count": 1, "device_hours": 0.01,
                    "train_usd": 0.0 if kind == "baseline" else 1.0, "eval_usd": 0.5,
                    "total_usd": 0.5 if kind == "baseline" else 1.5, "checkpoint": "final"})
                outcome_rows += [{"trial_id": trial, "arm": arm, "seed": seed, "benchmark": benchmark,
                                  "problem_id": f"p{i}", "success_rate": float(r)} for i, r in enumerate(rates)]
    return pl.DataFrame(frame_rows, infer_schema_length=None), pl.DataFrame(outcome_rows, infer_schema_length=None)


def row(summary: pl.DataFrame, arm: str, benchmark: str) -> dict:
    return summary.filter((pl.col("arm") == arm) & (pl.col("benchmark") == benchmark)).row(0, named=True)


def test_all_correct_and_all_wrong_arms_have_degenerate_intervals_and_a_difference_of_exactly_one():
    frame, outcomes = make_data({"base": [{"a": [0.0] * 20, "b": [0.0] * 10}],
                                 "good": [{"a": [1.0] * 20, "b": [1.0] * 10}, {"a": [1.0] * 20, "b": [1.0] * 10}]})
    summary = arm_summary(frame, outcomes, n_boot=500, seed=3)
    for benchmark in ("a", "b", AVERAGE):
        good, base = row(summary, "good", benchmark), row(summary, "base", benchmark)
        assert (good["ci_low"], good["ci_high"], good["mean"]) == (1.0, 1.0, 1.0)
        assert (base["ci_low"], base["ci_high"], base["mean"]) == (0.0, 0.0, 0.0)
        assert (good["vs_base"], good["vs_base_low"], good["vs_base_high"]) == (1.0, 1.0, 1.0)
        assert good["vs_base_differs"] is True
        assert (base["vs_best"], base["vs_best_low"], base["vs_best_high"]) == (-1.0, -1.0, -1.0)
        assert base["vs_best_differs"] is True
        assert good["vs_best"] is None and base["vs_base"] is None  # the references themselves
        assert good["std"] == 0.0 and base["std"] is None and good["n_seeds"] == 2
    assert row(summary, "good", AVERAGE)["is_best"] and not row(summary, "base", AVERAGE)["is_best"]


def test_a_fixed_seed_reproduces_the_interval_and_other_arms_do_not_move_it():
    rng = np.random.default_rng(0)
    noisy = {"a": list(rng.integers(0, 2, 60).astype(float)), "b": list(rng.integers(0, 2, 40).astype(float))}
    other = {"a": [1.0] * 60, "b": [0.0] * 40}
    frame, outcomes = make_data({"base": [other], "x": [noisy]})
    first = arm_summary(frame, outcomes, n_boot=1000, seed=7)
    again = arm_summary(frame, outcomes, n_boot=1000, seed=7)
    assert first.equals(again)
    x = row(first, "x", "a")
    assert x["ci_low"] < x["mean"] < x["ci_high"]
    frame2, outcomes2 = make_data({"base": [other], "x": [noisy], "y": [other, noisy]})
    assert row(arm_summary(frame2, outcomes2, n_boot=1000, seed=7), "x", "a")["ci_low"] == x["ci_low"]


def test_seeds_are_aggregated_and_resampled():
    right, wrong = {"a": [1.0] * 30}, {"a": [0.0] * 30}
    frame, outcomes = make_data({"base": [wrong], "mixed": [right, wrong, right]})
    summary = arm_summary(frame, outcomes, n_boot=2000, seed=0)
    mixed = row(summary, "mixed", "a")
    assert mixed["mean"] == pytest.approx(2 / 3)
    assert mixed["std"] == pytest.approx(np.std([1, 0, 1], ddof=1))
    assert mixed["n_seeds"] == 3 and mixed["n_problems"] == 30
    # problems are all alike within a seed, so the whole spread comes from resampling seeds
    assert (mixed["ci_low"], mixed["ci_high"]) == (0.0, 1.0)
    assert mixed["vs_base_differs"] is False
    assert (mixed["train_usd"], mixed["total_usd"], mixed["steps_pct_epoch"]) == (1.0, 1.5, 5.0)


def test_average_is_the_mean_over_benchmarks_bootstrapped_as_a_whole():
    frame, outcomes = make_data({"base": [{"a": [0.0, 1.0] * 10, "b": [0.0] * 8}],
                                 "x": [{"a": [1.0] * 20, "b": [1.0, 0.0] * 4}, {"a": [0.0, 1.0] * 10, "b": [1.0] * 8}]})
    summary = arm_summary(frame, outcomes, n_boot=1000, seed=1)
    average = row(summary, "x", AVERAGE)
    per_seed = [(1.0 + 0.5) / 2, (0.5 + 1.0) / 2]
    assert average["mean"] == pytest.approx(np.mean(per_seed))
    assert average["std"] == pytest.approx(0.0)
    assert average["n_problems"] == 28
    assert average["ci_low"] <= average["mean"] <= average["ci_high"]
    assert average["vs_base"] == pytest.approx(average["mean"] - row(summary, "base", AVERAGE)["mean"])


def test_paired_difference_uses_the_same_problems():
    # two arms that solve exactly the same problems: their paired difference is 0 in every resample
    shared = {"a": [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0]}
    frame, outcomes = make_data({"base": [shared], "twin": [shared]})
    twin = row(arm_summary(frame, outcomes, n_boot=500), "twin", "a")
    assert (twin["vs_base"], twin["vs_base_low"], twin["vs_base_high"], twin["vs_base_differs"]) == (0, 0, 0, False)
    assert twin["ci_low"] < 0.5 < twin["ci_high"]  # while each arm alone is uncertain


def test_summary_schema_and_missing_outcomes():
    frame, outcomes = make_data({"base": [{"a": [0.0, 1.0]}], "x": [{"a": [1.0, 1.0]}]}, rank={"x": 8})
    summary = arm_summary(frame, outcomes.filter(pl.col("arm") != "x"), n_boot=100)
    assert summary.columns == SUMMARY_COLUMNS + ["lora.rank"] + SUMMARY_TAIL
    x = row(summary, "x", "a")
    assert x["mean"] == 1.0 and x["ci_low"] is None and x["vs_base"] == 0.5 and x["vs_base_low"] is None
    assert x["lora.rank"] == 8


def test_bootstrap_mean_with_known_draws():
    matrix = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    problems = np.array([[0, 0, 0], [2, 2, 2]])
    seeds = np.array([[0, 0], [0, 1]])
    assert bootstrap_mean(matrix, problems, seeds).tolist() == [1.0, 0.5]
    assert generator(1, "x").integers(0, 100, 5).tolist() == generator(1, "x").integers(0, 100, 5).tolist()
