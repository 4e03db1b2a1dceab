"""Spend only what the conclusion needs (issue 16): one study run twice in one invocation -- the full grid, then
with stopping on (a dev split, Optuna pruning across arms, early stopping), same seeds -- printing the ratio of
training steps, the ratio of dollars and whether the best arm (by test Pass@1 with its interval) agrees.

    python benchmarks/pruning.py                                  # studies/lora_rank.py at the cpu scale
    python benchmarks/pruning.py --study studies/learning_rate.py --stopping '{"pruner": "median"}'

Each run is ``tina-sweep run`` in its own process, into its own sweeps folder (``--keep DIR`` keeps both).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# successive halving from step 10 (keep 1 in 3 at each rung), early stopping after 2 dev scores without gain, a
# dev split of 32 problems held out from training
DEFAULT_STOPPING = {"pruner": "successive_halving", "min_steps": 10, "reduction_factor": 3, "patience": 2,
                    "problems": 32}

WRAPPER = """from tina_sweep.study.study import load_study

study = load_study({study!r}).model_copy(update={{"stopping": {stopping!r}}})
"""


def run_study(study_file: Path, scale: str, sweeps: Path, extra: list[str]) -> float:
    """``tina-sweep run`` of a study into ``sweeps``; its wall time (the command's output goes to a log there)."""
    sweeps.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(sweeps / "run.log", "w") as log:
        code = subprocess.call([sys.executable, "-m", "tina_sweep.cli", "run", str(study_file), "--scale", scale,
                                "--sweeps-dir", str(sweeps), *extra], stdout=log, stderr=subprocess.STDOUT)
    if code:
        raise SystemExit(f"tina-sweep run {study_file} exited with {code}: see {sweeps / 'run.log'}")
    return time.perf_counter() - started


def spent(sweep_dir: Path) -> dict[str, float]:
    """Training steps (the steps each trial actually trained), dollars (everything the run spent) and trials."""
    from tina_sweep.trial.result import TrialResult

    steps = usd = 0.0
    trials = stopped = 0
    for path in sorted((sweep_dir / "trials").glob("*/result.json")):
        result = TrialResult.read(path)
        usd += result.cost.total_usd or 0.0
        if result.kind == "trial":
            trials += 1
            steps += result.stopped.step if result.stopped else result.train_steps
            stopped += result.stopped is not None and result.stopped.reason != "finished"
    return {"steps": steps, "usd": usd, "trials": trials, "stopped": stopped}


def best_arm(sweep_dir: Path) -> dict:
    """The best arm by average test Pass@1 (the report's summary) with its interval, and the arms the report
    cannot tell from it (their paired interval against it includes 0)."""
    from tina_sweep.report.frame import load_frame, load_outcomes
    from tina_sweep.report.stats import arm_summary

    summary = arm_summary(load_frame(sweep_dir), load_outcomes(sweep_dir), n_boot=1000, seed=0)
    average = summary.filter(summary["benchmark"] == "average")
    trained = average.filter(average["kind"] == "trial") if "kind" in average.columns else average
    rows = list(trained.iter_rows(named=True))
    best = max(rows, key=lambda row: row["mean"])
    tied = sorted(row["label"] for row in rows if row["label"] != best["label"] and row.get("vs_best") is not None
                  and not row.get("vs_best_differs"))
    return {"label": best["label"], "mean": best["mean"], "low": best["ci_low"], "high": best["ci_high"],
            "tied": tied}


def describe(best: dict) -> str:
    interval = f" [{100 * best['low']:.1f}, {100 * best['high']:.1f}]" if best["low"] is not None else ""
    tied = f"; not distinguishable from it: {', '.join(best['tied'])}" if best["tied"] else ""
    return f"{best['label']} at {100 * best['mean']:.1f}%{interval}{tied}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, default=REPO / "studies" / "lora_rank.py")
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--stopping", type=json.loads, default=DEFAULT_STOPPING,
                        help=f"the Study's stopping (JSON; default {json.dumps(DEFAULT_STOPPING)})")
    parser.add_argument("--keep", type=Path, help="write both sweeps under this folder (default: a temporary one)")
    parser.add_argument("--wandb", default="off", help="--wandb of both runs (default off: timing without W&B)")
    arguments = parser.parse_args()

    from tina_sweep.study.study import load_study

    study = load_study(arguments.study)
    with tempfile.TemporaryDirectory() as scratch:
        root = arguments.keep or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        stopped_file = root / f"{arguments.study.stem}_stopping.py"
        stopped_file.write_text(WRAPPER.format(study=str(arguments.study.resolve()), stopping=arguments.stopping))
        extra = ["--wandb", arguments.wandb]
        full_seconds = run_study(arguments.study.resolve(), arguments.scale, root / "full", extra)
        stopped_seconds = run_study(stopped_file, arguments.scale, root / "stopping", extra)
        full, cut = spent(root / "full" / study.name), spent(root / "stopping" / study.name)
        full_best, cut_best = best_arm(root / "full" / study.name), best_arm(root / "stopping" / study.name)

    print(f"study {study.name} at scale {arguments.scale}, {full['trials']} trials; stopping "
          f"{json.dumps(arguments.stopping)}")
    print(f"training steps: full grid {full['steps']:.0f}, with stopping {cut['steps']:.0f} "
          f"({cut['stopped']} of {cut['trials']} trials stopped early): ratio {cut['steps'] / full['steps']:.2f}")
    print(f"dollars: full grid ${full['usd']:.4f}, with stopping ${cut['usd']:.4f}: ratio {cut['usd'] / full['usd']:.2f}"
          f" (wall time {full_seconds:.0f} s against {stopped_seconds:.0f} s: {stopped_seconds / full_seconds:.2f})")
    print(f"best arm (average test Pass@1, 95% interval): full grid {describe(full_best)}; with stopping "
          f"{describe(cut_best)}")
    same = full_best["label"] == cut_best["label"]
    among = cut_best["label"] in [full_best["label"], *full_best["tied"]]
    print(f"same best arm: {'yes' if same else 'no'}"
          + ("" if same else f" (the stopped run's best arm is {'' if among else 'not '}among the full grid's arms "
                             f"that its intervals cannot tell apart)"))


if __name__ == "__main__":
    main()
