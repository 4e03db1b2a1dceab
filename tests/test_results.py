"""The terminal/Markdown results table: rows in axis order, base model first."""

from tina_sweep.report.results import results_frame
from tina_sweep.trial.result import TrialResult


def _result(trial_id: str, kind: str, axes: dict, score: float) -> TrialResult:
    bench = {"problems": 10, "samples_per_problem": 1}
    cost = {"train_seconds": 1.0, "eval_seconds": 1.0, "train_tokens": 1, "eval_tokens": 1, "peak_memory_gb": 1.0,
            "total_usd": 0.01, "device": "cpu"}
    return TrialResult.parse({"trial_id": trial_id, "kind": kind, "axes": axes, "pass_at_1": {"a": score},
                              "average": score, "benchmarks": {"a": bench}, "train_steps": 2, "cost": cost})


def test_rows_follow_numeric_axis_order_with_base_first():
    results = [_result("rank=64-x", "trial", {"lora.rank": 64}, 0.1), _result("rank=16-x", "trial", {"lora.rank": 16}, 0.2),
               _result("base-x", "baseline", {}, 0.3), _result("rank=4-x", "trial", {"lora.rank": 4}, 0.4)]
    frame = results_frame(results, ["lora.rank"])
    assert frame["trial_id"].to_list() == ["base-x", "rank=4-x", "rank=16-x", "rank=64-x"]
    assert frame["a"].to_list() == [0.3, 0.4, 0.2, 0.1]
