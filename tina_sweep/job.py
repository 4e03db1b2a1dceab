"""One job, run inside its own child process: train (unless it is the baseline), evaluate, cost, record.

Everything a job produces lives in its trial folder: ``grpo_config.json``, ``checkpoints/``, ``adapter/``,
``train_log.jsonl``, ``eval/<benchmark>.jsonl`` (per-problem outcomes) and, written last and atomically,
``result.json``. A job that dies leaves no ``result.json`` and no ledger record, so nothing is half-recorded.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tina_sweep.config import BaselineSpec, TrialSpec


@dataclass
class Job:
    """What a worker runs: the baseline evaluation or one trial of the study."""

    job_id: str
    kind: str  # "baseline" or "trial"
    spec: TrialSpec | BaselineSpec
    axes: dict[str, Any] = field(default_factory=dict)

    def to_attrs(self) -> dict[str, Any]:
        return {"kind": self.kind, "axes": self.axes, "spec": self.spec.model_dump(mode="json")}

    @classmethod
    def from_attrs(cls, job_id: str, attrs: dict[str, Any]) -> "Job":
        model = BaselineSpec if attrs["kind"] == "baseline" else TrialSpec
        return cls(job_id, attrs["kind"], model.model_validate(attrs["spec"]), attrs.get("axes", {}))


def write_json_atomic(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)


def run_job(job: Job, trial_dir: Path, prices: dict[str, float], threads: int | None = None,
            progress: Any = None) -> dict[str, Any]:
    """Run a job to completion in this process and return (and write) its result."""
    import torch

    from tina_sweep.cost import trial_cost
    from tina_sweep.evaluate import evaluate_model, summary

    if threads:
        torch.set_num_threads(threads)
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / "spec.json").write_text(json.dumps(job.to_attrs(), indent=2))
    report = (lambda *message: progress.put((job.job_id, *message))) if progress is not None else None

    train_seconds, train_tokens, steps, adapter, resumed, final_reward = 0.0, 0, 0, None, None, None
    if job.kind == "trial":
        from tina_sweep.train import train_trial

        outcome = train_trial(job.spec, trial_dir,
                              on_step=(lambda step, total, logs: report("step", step, total)) if report else None)
        train_seconds, train_tokens, steps = outcome.wall_seconds, outcome.generated_tokens, outcome.steps
        adapter, resumed = outcome.adapter_dir, outcome.resumed_from
        final_reward = outcome.log_history[-1].get("reward") if outcome.log_history else None

    seed = job.spec.seed if isinstance(job.spec, TrialSpec) else 0
    started = time.perf_counter()
    results = evaluate_model(job.spec.model, job.spec.prompt, job.spec.eval, adapter, trial_dir / "eval", seed,
                             on_progress=(lambda name, done, total: report("eval", name, done, total)) if report else None)
    eval_seconds = time.perf_counter() - started
    cost = trial_cost(train_seconds, eval_seconds, train_tokens, sum(r.generated_tokens for r in results), prices)

    pass_at_1 = {r.benchmark: r.pass_at_1 for r in results}
    result = {
        "trial_id": job.job_id,
        "kind": job.kind,
        "axes": job.axes,
        "pass_at_1": pass_at_1,
        "average": sum(pass_at_1.values()) / len(pass_at_1),
        "benchmarks": summary(results),
        "train_steps": steps,
        "resumed_from_checkpoint": resumed,
        "final_train_reward": final_reward,
        "cost": cost.as_dict(),
        "eval_problems_per_second": sum(r.problems for r in results) / max(eval_seconds, 1e-9),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json_atomic(trial_dir / "result.json", result)
    return result
