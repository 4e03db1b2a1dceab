"""analysis/precision_comparison.py: two sweeps of one study in two precisions, compared arm by arm and seed by
seed against the seeds' spread."""

from __future__ import annotations

import json

import pytest

from precision_comparison import compare, draw, load_runs


def write_sweep(root, bf16: bool, scores: dict[tuple[int, int], float]):
    """A sweep folder as tina-sweep writes it: per trial spec.json, result.json, grpo_config.json, train_log.jsonl
    (plus a baseline, which the comparison skips)."""
    for (rank, seed), score in scores.items():
        folder = root / "trials" / f"rank={rank}-s{seed}-{'b' if bf16 else 'f'}{rank}{seed}"
        folder.mkdir(parents=True)
        folder.joinpath("spec.json").write_text(json.dumps(
            {"trial_id": folder.name, "kind": "trial", "axes": {"lora.rank": rank, "seed": seed}, "spec": {"seed": seed}}))
        folder.joinpath("result.json").write_text(json.dumps({"pass_at_1": {"arithmetic": score}, "average": score}))
        folder.joinpath("grpo_config.json").write_text(json.dumps({"bf16": bf16}))
        rewards = [score + 0.01 * step + (0.05 if bf16 else 0.0) for step in range(12)]
        folder.joinpath("train_log.jsonl").write_text("".join(json.dumps({"step": i + 1, "reward": r}) + "\n"
                                                              for i, r in enumerate(rewards)))
    base = root / "trials" / "base-x"
    base.mkdir()
    base.joinpath("spec.json").write_text(json.dumps({"kind": "baseline", "axes": {}, "spec": {"seed": 42}}))
    base.joinpath("result.json").write_text(json.dumps({"pass_at_1": {"arithmetic": 0.4}, "average": 0.4}))


def test_compares_the_same_trials_in_two_precisions(tmp_path):
    write_sweep(tmp_path / "bf16", True, {(4, 1): 0.50, (4, 2): 0.40, (16, 1): 0.30, (16, 2): 0.34})
    write_sweep(tmp_path / "fp32", False, {(4, 1): 0.52, (4, 2): 0.44, (16, 1): 0.30, (16, 2): 0.30})
    first, second = load_runs(tmp_path / "bf16"), load_runs(tmp_path / "fp32")
    assert sorted(first) == [("lora.rank=16", 1), ("lora.rank=16", 2), ("lora.rank=4", 1), ("lora.rank=4", 2)]
    assert first["lora.rank=4", 1].precision == "bf16" and second["lora.rank=4", 1].precision == "fp32"
    table, summary = compare(first, second)
    rows = table.splitlines()
    assert rows[0].startswith("| arm | seed | arithmetic bf16 | arithmetic fp32 |")
    assert "| lora.rank=4 | 1 | 0.50 | 0.52 |" in table
    # the last 10 steps' reward (0.40 + 0.01 x step 2..11 + 0.05 in bf16) and the mean gap per step (|0.45 - 0.44|)
    assert "| lora.rank=4 | 2 | 0.40 | 0.44 | 0.52 | 0.51 | 0.01 |" in table
    assert "**lora.rank=4: mean (seed spread)** |  | 0.45 (0.07) | 0.48 (0.06) |" in table
    # rank 4: means 0.45 vs 0.48 (0.03 apart); rank 16: 0.32 vs 0.30 (0.02 apart)
    assert summary["largest_mean_difference"] == pytest.approx(0.03)
    assert summary["at"] == "lora.rank=4, arithmetic" and summary["pairs"] == 4
    assert summary["seed_spread_there"] == pytest.approx(0.0566, abs=1e-3)  # fp32's 0.52 vs 0.44
    draw(first, second, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_sweeps_without_common_trials_are_refused(tmp_path):
    write_sweep(tmp_path / "a", True, {(4, 1): 0.5})
    write_sweep(tmp_path / "b", False, {(8, 1): 0.5})
    with pytest.raises(ValueError, match="share no"):
        compare(load_runs(tmp_path / "a"), load_runs(tmp_path / "b"))
