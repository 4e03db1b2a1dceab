"""One job, run inside its own child process: train (unless it is the baseline), evaluate, cost, record.

Everything a job produces lives in its trial folder: ``grpo_config.json``, ``checkpoints/``, ``adapter/``,
``train_log.jsonl``, ``eval/<benchmark>.jsonl`` (per-problem outcomes; ``eval/checkpoint-N/<benchmark>.jsonl``
for evaluated checkpoints) and, written last and atomically, ``result.json``. A job that dies leaves no
``result.json`` and no ledger record, so nothing is half-recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tina_sweep.config import BaselineSpec, TrialSpec

if TYPE_CHECKING:
    from tina_sweep.tracking import Tracking


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
    def from_attrs(cls, job_id: str, attrs: dict[str, Any]) -> Job:
        model = BaselineSpec if attrs["kind"] == "baseline" else TrialSpec
        return cls(job_id, attrs["kind"], model.model_validate(attrs["spec"]), attrs.get("axes", {}))


def write_json_atomic(path: Path, payload: dict) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # several processes may write the same file
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)


def run_job(job: Job, trial_dir: Path, prices: dict[str, float], threads: int | None = None,
            progress: Any = None, tracking: Tracking | None = None, eval_checkpoints: int = 0) -> dict[str, Any]:
    """Run a job to completion in this process and return (and write) its result. ``tracking`` opens a W&B run
    per phase (train, eval); ``eval_checkpoints`` K > 0 also evaluates every K-th saved checkpoint."""
    import torch

    from tina_sweep.cost import trial_cost
    from tina_sweep.evaluate import evaluate_model, summary
    from tina_sweep.tracking import record_eval, record_summary, tracked, train_summary

    if threads:
        torch.set_num_threads(threads)
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / "spec.json").write_text(json.dumps(job.to_attrs(), indent=2))
    report = (lambda *message: progress.put((job.job_id, *message))) if progress is not None else None

    train_seconds, train_tokens, steps, adapter, resumed, final_reward = 0.0, 0, 0, None, None, None
    if job.kind == "trial":
        from tina_sweep.train import train_trial

        with tracked(tracking, "train", job) as run:
            outcome = train_trial(job.spec, trial_dir,
                                  on_step=(lambda step, total, logs: report("step", step, total)) if report else None,
                                  report_to=["wandb"] if run is not None else "none")
            train_seconds, train_tokens, steps = outcome.wall_seconds, outcome.generated_tokens, outcome.steps
            adapter, resumed = outcome.adapter_dir, outcome.resumed_from
            final_reward = outcome.log_history[-1].get("reward") if outcome.log_history else None
            record_summary(run, train_summary(steps, train_seconds, train_tokens, final_reward))

    seed = job.spec.seed if isinstance(job.spec, TrialSpec) else 0
    on_progress = (lambda name, done, total: report("eval", name, done, total)) if report else None
    with tracked(tracking, "eval", job) as run:
        started = time.perf_counter()
        checkpoints: dict[str, dict[str, Any]] = {}
        more: list = []
        if eval_checkpoints and job.kind == "trial" and job.spec.eval.backend == "vllm":
            results, checkpoints, more = evaluate_checkpoints_one_engine(job.spec, trial_dir, adapter, steps,
                                                                         eval_checkpoints, seed, on_progress)
            eval_seconds = time.perf_counter() - started
        else:
            results = evaluate_model(job.spec.model, job.spec.prompt, job.spec.eval, adapter, trial_dir / "eval", seed,
                                     on_progress=on_progress)
            eval_seconds = time.perf_counter() - started
            if eval_checkpoints and job.kind == "trial":
                checkpoints, more = evaluate_checkpoints(job.spec, trial_dir, steps, eval_checkpoints, results, seed,
                                                         on_progress)
                eval_seconds += sum(c["eval_seconds"] for c in checkpoints.values())
        results_all = results + more
        cost = trial_cost(train_seconds, eval_seconds, train_tokens, sum(r.generated_tokens for r in results_all),
                          prices)

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
            "eval_problems_per_second": sum(r.problems for r in results_all) / max(eval_seconds, 1e-9),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if checkpoints:
            result["checkpoints"] = checkpoints
        record_eval(run, result)
    write_json_atomic(trial_dir / "result.json", result)
    return result


def checkpoints_to_evaluate(saved: dict[int, Path], every: int, final_step: int) -> dict[int, Path]:
    """Every ``every``-th saved checkpoint before the final step (the final adapter is evaluated anyway)."""
    earlier = [step for step in saved if step < final_step]
    return {step: saved[step] for step in earlier[every - 1::every]}


def evaluate_checkpoints(spec: TrialSpec, trial_dir: Path, final_step: int, every: int, final: list, seed: int,
                         on_progress: Any = None) -> tuple[dict[str, dict[str, Any]], list]:
    """Evaluate every ``every``-th saved checkpoint into ``eval/checkpoint-N/``; the final step reuses the final
    adapter's evaluation (same weights; its outcome files are linked, at no extra cost). Returns the
    ``checkpoints`` block of result.json and the new BenchmarkResults (for the cost)."""
    from tina_sweep.evaluate import evaluate_model
    from tina_sweep.train import saved_checkpoints

    block: dict[str, dict[str, Any]] = {}
    evaluated = []
    chosen = checkpoints_to_evaluate(saved_checkpoints(trial_dir / "checkpoints"), every, final_step)
    for step, folder in chosen.items():
        name = f"checkpoint-{step}"
        progress = (lambda bench, done, total, name=name: on_progress(f"{name} {bench}", done, total)) \
            if on_progress else None
        started = time.perf_counter()
        results = evaluate_model(spec.model, spec.prompt, spec.eval, folder, trial_dir / "eval" / name, seed,
                                 on_progress=progress)
        block[name] = _checkpoint_entry(step, results, time.perf_counter() - started)
        evaluated.extend(results)
    _link_final(spec, trial_dir, final_step)
    block[f"checkpoint-{final_step}"] = _checkpoint_entry(final_step, final, 0.0)
    return block, evaluated


def evaluate_checkpoints_one_engine(spec: TrialSpec, trial_dir: Path, adapter: Path, final_step: int, every: int,
                                    seed: int, on_progress: Any = None) -> tuple[list, dict[str, dict[str, Any]], list]:
    """``eval.backend = "vllm"``: the final adapter and every ``every``-th checkpoint from ONE engine (the base model
    loaded once, a LoRARequest per checkpoint, one generate call) instead of an engine per checkpoint. Returns the
    final adapter's results, the ``checkpoints`` block of result.json and the checkpoints' results."""
    from tina_sweep.backends.vllm_backend import AdapterJob, VLLMEvaluator
    from tina_sweep.evaluate import evaluation_prompt
    from tina_sweep.train import saved_checkpoints

    chosen = checkpoints_to_evaluate(saved_checkpoints(trial_dir / "checkpoints"), every, final_step)
    names = {step: f"checkpoint-{step}" for step in chosen}
    jobs = [AdapterJob("final", adapter, trial_dir / "eval")] + [
        AdapterJob(names[step], folder, trial_dir / "eval" / names[step]) for step, folder in chosen.items()]
    evaluator = VLLMEvaluator(spec.model, spec.eval, jobs, seed)
    progress = (lambda name, bench, done, total: on_progress(bench if name == "final" else f"{name} {bench}", done,
                                                             total)) if on_progress else None
    try:
        by_name = evaluator.evaluate_all(evaluation_prompt(spec.prompt, spec.eval), progress)
    finally:
        evaluator.close()
    block = {}
    for step in chosen:
        results = by_name[names[step]]
        block[names[step]] = _checkpoint_entry(step, results, sum(r.wall_seconds for r in results))
    _link_final(spec, trial_dir, final_step)
    block[f"checkpoint-{final_step}"] = _checkpoint_entry(final_step, by_name["final"], 0.0)
    return by_name["final"], block, [r for step in chosen for r in by_name[names[step]]]


def _link_final(spec: TrialSpec, trial_dir: Path, final_step: int) -> None:
    """The final step's checkpoint folder shows the final adapter's outcome files (same weights, no extra cost)."""
    final_dir = trial_dir / "eval" / f"checkpoint-{final_step}"
    final_dir.mkdir(parents=True, exist_ok=True)
    for benchmark in spec.eval.benchmarks:
        source, target = trial_dir / "eval" / f"{benchmark.name}.jsonl", final_dir / f"{benchmark.name}.jsonl"
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


def _checkpoint_entry(step: int, results: list, seconds: float) -> dict[str, Any]:
    pass_at_1 = {r.benchmark: r.pass_at_1 for r in results}
    return {"step": step, "pass_at_1": pass_at_1, "average": sum(pass_at_1.values()) / len(pass_at_1),
            "eval_dir": f"eval/checkpoint-{step}", "eval_seconds": seconds}
