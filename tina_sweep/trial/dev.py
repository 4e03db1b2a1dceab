"""The files a trial with a dev split leaves for its worker and its report (no heavy imports: the worker reads
them): ``dev_log.jsonl`` (one line per dev score of the attempt), ``checkpoints/checkpoint-N/dev.json`` (the same
record beside the checkpoint it scored) and ``stop.json`` (the worker's request to stop: an arm pruned)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from tina_sweep.trial.spec import EvalSpec, TrialSpec

DEV_LOG = "dev_log.jsonl"  # one line per dev score of this attempt: {"step", "pass_at_1", "problems", "seconds"}
DEV_FILE = "dev.json"  # the same record inside the checkpoint folder it scored
STOP_FILE = "stop.json"  # written by the worker: {"reason": "pruned", "step": N, ...}
VERDICT_FILE = "verdict.json"  # the worker's answer to the latest dev score: {"step": N, "prune": bool}
PRUNING_WORKER = "TINA_SWEEP_PRUNING_WORKER"  # set in a trial's process whose worker answers each dev score


def dev_eval_spec(spec: TrialSpec) -> EvalSpec:
    """How the dev split is generated: the trial's evaluation settings, greedy, one sample, the transformers
    backend in this process, ``dev.max_new_tokens`` tokens (default: the training completion length)."""
    tokens = spec.dev.max_new_tokens or spec.algorithm.max_completion_length
    return spec.eval.model_copy(update={"backend": "transformers", "temperature": 0.0, "samples_per_problem": 1,
                                        "max_new_tokens": tokens, "top_p": 1.0, "top_k": 0})


def read_dev_curve(trial_dir: Path) -> dict[int, float]:
    """Every dev score of a trial folder by step: its attempt's ``dev_log.jsonl`` and the ``dev.json`` of each
    checkpoint it holds (an earlier attempt's, linked in on a retry)."""
    curve: dict[int, float] = {}
    for path in sorted((trial_dir / "checkpoints").glob(f"checkpoint-*/{DEV_FILE}")):
        with contextlib.suppress(OSError, ValueError, KeyError):
            record = json.loads(path.read_text())
            curve[int(record["step"])] = float(record["pass_at_1"])
    for record in read_dev_log(trial_dir / DEV_LOG):
        curve[int(record["step"])] = float(record["pass_at_1"])
    return dict(sorted(curve.items()))


def read_dev_log(path: Path, skip: int = 0) -> list[dict]:
    """The complete lines of a ``dev_log.jsonl`` after the first ``skip`` (a line being written is left for
    later)."""
    try:
        text = path.read_text()
    except OSError:
        return []
    lines = text.split("\n")[:-1]  # the last piece has no newline yet: incomplete (or empty)
    records = []
    for line in lines[skip:]:
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    return records


def best_step(curve: dict[int, float]) -> int | None:
    """The step of the highest dev score (the earliest of equals: fewer steps, same score)."""
    return max(curve, key=lambda step: (curve[step], -step)) if curve else None
