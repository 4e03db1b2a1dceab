"""bf16 autocast against fp32 on the same trials (issue 15, item 3): two sweeps of one study that differ only in
``training.cpu_autocast``, compared arm by arm and seed by seed -- final Pass@1 and the training reward curve --
beside the spread between seeds, so a reader sees whether the precision moved a result more than a seed does.

    python analysis/precision_comparison.py sweeps/lora_rank sweeps-fp32/lora_rank --figure docs/cpu_precision.png

prints a Markdown table and a summary line, and draws each arm's reward curves (one panel per arm, a colour per
seed, bf16 solid, fp32 dashed).
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrialRun:
    arm: str  # the axis values without the seed, e.g. "lora.rank=4"
    seed: int
    precision: str  # what ran: "bf16" (TRL's bf16 mixed precision was on) or "fp32"
    pass_at_1: dict[str, float]
    average: float
    rewards: list[float]  # the training reward of each step


def load_runs(sweep_dir: Path) -> dict[tuple[str, int], TrialRun]:
    """The trained (not baseline) finished trials of a sweep folder, by (arm, seed)."""
    runs = {}
    for trial_dir in sorted((sweep_dir / "trials").iterdir()):
        spec_path, result_path = trial_dir / "spec.json", trial_dir / "result.json"
        if not (spec_path.is_file() and result_path.is_file()):
            continue
        trial, result = json.loads(spec_path.read_text()), json.loads(result_path.read_text())
        if trial["kind"] != "trial":
            continue
        arm = ", ".join(f"{field}={value}" for field, value in trial["axes"].items() if field != "seed")
        config = json.loads((trial_dir / "grpo_config.json").read_text())
        log = [json.loads(line) for line in (trial_dir / "train_log.jsonl").read_text().splitlines() if line]
        seed = trial["spec"]["seed"]
        runs[arm, seed] = TrialRun(arm, seed, "bf16" if config.get("bf16") else "fp32", result["pass_at_1"],
                                   result["average"], [entry["reward"] for entry in log])
    return runs


def _natural(text: str) -> list:
    """A sort key that orders "lora.rank=4" before "lora.rank=16"."""
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def compare(first: dict[tuple[str, int], TrialRun], second: dict[tuple[str, int], TrialRun]) -> tuple[str, dict]:
    """A Markdown table (one row per arm and seed, then each arm's mean and seed spread) and the summary numbers:
    the largest difference between the two precisions in an arm's mean Pass@1 and the smallest seed spread."""
    pairs = sorted(set(first) & set(second), key=lambda key: (_natural(key[0]), key[1]))
    if not pairs:
        raise ValueError("the two sweeps share no (arm, seed) trial")
    benchmarks = sorted(first[pairs[0]].pass_at_1)
    label_a, label_b = first[pairs[0]].precision, second[pairs[0]].precision
    header = (["arm", "seed"] + [f"{b} {label}" for b in benchmarks for label in (label_a, label_b)]
              + [f"reward, last 10 steps {label}" for label in (label_a, label_b)]
              + ["mean abs reward difference per step"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    arms = sorted({arm for arm, _ in pairs}, key=_natural)
    mean_gaps, spreads = [], []
    for arm in arms:
        seeds = [seed for a, seed in pairs if a == arm]
        for seed in seeds:
            a, b = first[arm, seed], second[arm, seed]
            steps = min(len(a.rewards), len(b.rewards))
            gap = statistics.mean(abs(x - y) for x, y in zip(a.rewards[:steps], b.rewards[:steps])) if steps else 0
            cells = [arm, str(seed)] + [f"{run.pass_at_1[bench]:.2f}" for bench in benchmarks for run in (a, b)] + \
                [f"{statistics.mean(run.rewards[-10:]):.2f}" for run in (a, b)] + [f"{gap:.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
        cells = [f"**{arm}: mean (seed spread)**", ""]
        for bench in benchmarks:
            for runs in (first, second):
                values = [runs[arm, seed].pass_at_1[bench] for seed in seeds]
                cells.append(f"{statistics.mean(values):.2f} ({_spread(values):.2f})")
        for runs in (first, second):
            values = [statistics.mean(runs[arm, seed].rewards[-10:]) for seed in seeds]
            cells.append(f"{statistics.mean(values):.2f} ({_spread(values):.2f})")
        cells.append("")
        lines.append("| " + " | ".join(cells) + " |")
        for bench in benchmarks:
            a_values = [first[arm, seed].pass_at_1[bench] for seed in seeds]
            b_values = [second[arm, seed].pass_at_1[bench] for seed in seeds]
            mean_gaps.append((abs(statistics.mean(a_values) - statistics.mean(b_values)), arm, bench))
            spreads.append((min(_spread(a_values), _spread(b_values)), arm, bench))
    gap, gap_arm, gap_bench = max(mean_gaps)
    spread_of_gap = next(s for s, arm, bench in spreads if (arm, bench) == (gap_arm, gap_bench))
    summary = {"largest_mean_difference": gap, "at": f"{gap_arm}, {gap_bench}", "seed_spread_there": spread_of_gap,
               "pairs": len(pairs), "precisions": (label_a, label_b)}
    return "\n".join(lines), summary


def draw(first: dict[tuple[str, int], TrialRun], second: dict[tuple[str, int], TrialRun], path: Path) -> None:
    """Reward curves (5-step moving average): a panel per arm, a colour per seed, first sweep solid, second dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = sorted(set(first) & set(second))
    arms = sorted({arm for arm, _ in pairs}, key=_natural)
    figure, axes = plt.subplots(1, len(arms), figsize=(4.2 * len(arms), 3.4), sharey=True, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    seeds = sorted({seed for _, seed in pairs})
    for axis, arm in zip(axes[0], arms):
        for seed in seeds:
            if (arm, seed) not in pairs:
                continue
            for runs, style in ((first, "-"), (second, "--")):
                run = runs[arm, seed]
                smooth = [statistics.mean(run.rewards[max(0, i - 4):i + 1]) for i in range(len(run.rewards))]
                axis.plot(range(1, len(smooth) + 1), smooth, style, color=colours[seeds.index(seed) % len(colours)],
                          label=f"seed {seed}, {run.precision}")
        axis.set_title(arm)
        axis.set_xlabel("step")
    axes[0][0].set_ylabel("training reward (5-step mean)")
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path, help="a sweep folder, e.g. sweeps/lora_rank")
    parser.add_argument("second", type=Path, help="the same study's sweep folder in the other precision")
    parser.add_argument("--figure", type=Path, help="write the reward curves here (PNG)")
    arguments = parser.parse_args()
    first, second = load_runs(arguments.first), load_runs(arguments.second)
    table, summary = compare(first, second)
    print(table)
    a, b = summary["precisions"]
    print(f"\n{summary['pairs']} trials in both; the largest {a}-{b} difference in an arm's mean Pass@1 is "
          f"{100 * summary['largest_mean_difference']:.1f} points ({summary['at']}), where the seeds' spread is "
          f"{100 * summary['seed_spread_there']:.1f} points")
    if arguments.figure:
        draw(first, second, arguments.figure)


if __name__ == "__main__":
    main()
