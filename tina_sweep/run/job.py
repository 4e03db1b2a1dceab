"""One job, run inside its own child process: train (unless it is the baseline), evaluate, cost, record.

Everything a job produces lives in its trial folder: ``grpo_config.json``, ``checkpoints/``, ``adapter/``,
``train_log.jsonl``, ``eval/<benchmark>.jsonl`` (per-problem outcomes; ``eval/checkpoint-N/<benchmark>.jsonl``
for evaluated checkpoints) and, written last and atomically, ``result.json``. A job that dies leaves no
``result.json`` and no ledger record, so nothing is half-recorded.

With ``eval.backend = "vllm"`` a worker may defer evaluation (``run_job(..., defer_eval=True)`` trains and writes
``trained.json``) and later evaluate every job it holds through one engine (``evaluate_together``): the base model
is loaded once and each trial's adapter (and evaluated checkpoint) is a LoRARequest of one generate call.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tina_sweep.trial.attempts import write_json_atomic
from tina_sweep.trial.evaluate.scoring import EvalTarget
from tina_sweep.trial.spec import TrialSpec
from tina_sweep.trial.result import TrialResult
from tina_sweep.trial.trial import Trial

if TYPE_CHECKING:
    from tina_sweep.run.tracking import Tracking


@dataclass
class Trained:
    """What training leaves for evaluation, over every attempt at the trial (``trained.json`` when the evaluation
    waits for a shared engine): the JSON record of the trainer's in-process ``TrainOutcome`` (which also holds the
    log history) that a later process reads."""

    seconds: float = 0.0
    tokens: int = 0
    steps: int = 0
    adapter: str | None = None
    resumed: str | None = None
    final_reward: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)  # training time and tokens of each attempt
    global_batch: dict[str, Any] = field(default_factory=dict)  # prompts and completions per optimizer step
    stopped: dict[str, Any] | None = None  # training ended before its horizon (pruned, early_stopped)
    dev_curve: dict[str, float] = field(default_factory=dict)  # dev Pass@1 by step (JSON keys: str)
    dev_seconds: float = 0.0

    @property
    def dev_by_step(self) -> dict[int, float]:
        return {int(step): score for step, score in self.dev_curve.items()}

    @property
    def adapter_dir(self) -> Path | None:
        return Path(self.adapter) if self.adapter else None

    @classmethod
    def read(cls, trial_dir: Path) -> Trained:
        """``trained.json`` of an attempt folder; the adapter's path in it is relative to the folder (which is
        renamed into place when the attempt finishes)."""
        trained = cls(**json.loads((trial_dir / "trained.json").read_text()))
        if trained.adapter:
            trained.adapter = str(trial_dir / trained.adapter)
        return trained

    def write(self, trial_dir: Path) -> None:
        adapter = os.path.relpath(self.adapter, trial_dir) if self.adapter else None
        write_json_atomic(trial_dir / "trained.json", {**self.__dict__, "adapter": adapter})


def run_job(job: Trial, trial_dir: Path, prices: dict[str, float], threads: int | None = None,
            progress: Any = None, tracking: Tracking | None = None, eval_checkpoints: int = 0,
            defer_eval: bool = False) -> TrialResult | None:
    """Run a job to completion in this process and return (and write) its result. ``tracking`` opens a W&B run
    per phase (train, eval); ``eval_checkpoints`` K > 0 also evaluates every K-th saved checkpoint.
    ``defer_eval``: train only, write ``trained.json`` and return None (``evaluate_together`` evaluates later)."""
    import torch

    from tina_sweep.run.tracking import record_eval, record_summary, tracked, train_summary
    from tina_sweep.trial.evaluate import evaluate_models

    if threads:
        torch.set_num_threads(threads)
    trial_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(trial_dir / "spec.json", job.to_json())
    report = (lambda *message: progress.put((job.trial_id, *message))) if progress is not None else None

    trained = Trained()
    if job.kind == "trial":
        from tina_sweep.trial.train.trainer import train_trial

        with tracked(tracking, "train", job) as run:
            outcome = train_trial(job.spec, trial_dir,
                                  on_step=(lambda step, total, logs: report("step", step, total)) if report else None,
                                  report_to=["wandb"] if run is not None else "none")
            this_attempt = {"attempt": trial_dir.name, "train_seconds": outcome.wall_seconds,
                            "generated_tokens": outcome.generated_tokens, "step": outcome.steps}
            trained = Trained(outcome.total_seconds, outcome.total_tokens, outcome.steps,
                              str(outcome.adapter_dir), outcome.resumed_from,
                              outcome.log_history[-1].get("reward") if outcome.log_history else None,
                              outcome.earlier_attempts + [this_attempt], outcome.global_batch, outcome.stopped,
                              {str(step): score for step, score in outcome.dev_curve.items()}, outcome.dev_seconds)
            record_summary(run, train_summary(trained.steps, trained.seconds, trained.tokens, trained.final_reward))
    if defer_eval:
        trained.write(trial_dir)
        return None

    on_progress = (lambda target, bench, done, total: report("eval", _progress_label(job, target, bench), done,
                                                             total)) if report else None
    with tracked(tracking, "eval", job) as run:
        plan = eval_plan(job, trial_dir, trained, eval_checkpoints)
        evaluation = evaluate_models(job.spec.model, job.spec.prompt, job.spec.eval, plan.targets, job.seed,
                                     on_progress)
        final, checkpoints, more = plan_results(plan, evaluation.results)
        result = job_result(job, trained, final, checkpoints, more, evaluation.seconds, prices)
        record_eval(run, result)
    write_json_atomic(trial_dir / "result.json", result.to_json())
    return result


def job_result(job: Trial, trained: Trained, results: list, checkpoints: dict[str, dict[str, Any]], more: list,
               eval_seconds: float, prices: dict[str, float], engine: dict[str, Any] | None = None) -> TrialResult:
    """The result of a job (``result.json``): Pass@1 per benchmark, cost (training and evaluation), checkpoints;
    ``engine``: the shared vLLM engine that evaluated it."""
    from tina_sweep.trial.cost import trial_cost
    from tina_sweep.trial.evaluate import summary

    from tina_sweep.trial.dev import best_step

    results_all = results + more
    dev = stopped = None
    spec = job.spec
    if job.kind == "trial" and spec.dev is not None:
        curve = trained.dev_by_step
        dev = {"problems": spec.dev.problems, "curve": curve, "best_step": best_step(curve),
               "seconds": trained.dev_seconds}
        ended = dict(trained.stopped or {})
        reason = ended.pop("reason", "finished")
        horizon = ended.pop("horizon", None) or trained.steps
        ended.pop("step", None)
        stopped = {"reason": reason, "step": trained.steps, "horizon": horizon, "detail": ended}
    cost = trial_cost(trained.seconds, eval_seconds, trained.tokens, sum(r.generated_tokens for r in results_all),
                      prices)
    pass_at_1 = {r.benchmark: r.pass_at_1 for r in results}
    return TrialResult(
        trial_id=job.trial_id, kind=job.kind, axes=job.axes, pass_at_1=pass_at_1,
        average=sum(pass_at_1.values()) / len(pass_at_1), benchmarks=summary(results), train_steps=trained.steps,
        global_batch=trained.global_batch or None, resumed_from_checkpoint=trained.resumed,
        train_attempts=trained.attempts, final_train_reward=trained.final_reward, cost=cost.as_dict(),
        eval_problems_per_second=sum(r.problems for r in results_all) / max(eval_seconds, 1e-9),
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), checkpoints=checkpoints, eval_engine=engine, dev=dev,
        stopped=stopped)


def evaluate_together(entries: list[tuple[Trial, Path]], prices: dict[str, float], tracking: Tracking | None = None,
                      eval_checkpoints: int = 0, on_progress: Any = None) -> list[TrialResult]:
    """``eval.backend = "vllm"``: evaluate jobs that share a model and evaluation settings in ONE call (one engine:
    the base model loaded once; each trial's adapter, and every ``eval_checkpoints``-th checkpoint, a LoRARequest of
    one generate call, after the adapter check) and write each job's result.json. Trials must have run with
    ``defer_eval`` (their ``trained.json``); a baseline job is the base model itself. Each job is charged its
    tokens' share of the generation time plus an equal share of the engine's start."""
    from tina_sweep.run.tracking import record_eval, tracked
    from tina_sweep.trial.evaluate import evaluate_models

    first, scratch = entries[0][0], entries[0][1].parent
    plans = [eval_plan(job, trial_dir, Trained.read(trial_dir) if job.kind == "trial" else Trained(), eval_checkpoints)
             for job, trial_dir in entries]
    evaluation = evaluate_models(first.spec.model, first.spec.prompt, first.spec.eval,
                                 [target for plan in plans for target in plan.targets], first.seed, on_progress,
                                 check_adapters=True, scratch=scratch)
    engine = {"shared_by_jobs": len(entries), **(evaluation.engine or {})}
    written = []
    for plan in plans:
        final, checkpoints, more = plan_results(plan, evaluation.results)
        eval_seconds = engine.get("load_seconds", 0.0) / len(entries) + sum(r.wall_seconds for r in final + more)
        with tracked(tracking, "eval", plan.job) as run:
            result = job_result(plan.job, plan.trained, final, checkpoints, more, eval_seconds, prices, engine)
            record_eval(run, result)
        write_json_atomic(plan.trial_dir / "result.json", result.to_json())
        written.append(result)
    return written


@dataclass
class EvalPlan:
    """What a job evaluates: its final model (its adapter, or the base model) and its chosen checkpoints, as
    evaluation targets named ``<trial id>`` and ``<trial id>/checkpoint-N``."""

    job: Trial
    trial_dir: Path
    trained: Trained
    targets: list[EvalTarget]
    checkpoint_steps: list[int]
    with_checkpoints: bool  # the result gets a checkpoints block (the final step's entry included)
    dev_best: int | None = None  # the step of the best dev score (its entry is marked chosen_by "dev")


def eval_plan(job: Trial, trial_dir: Path, trained: Trained, every: int) -> EvalPlan:
    """The targets of one job: the final model, and with ``every`` K > 0 every K-th saved checkpoint before the
    final step (the final step is the final adapter, evaluated once)."""
    from tina_sweep.trial.train.trainer import saved_checkpoints

    from tina_sweep.trial.dev import best_step

    targets = [EvalTarget(job.trial_id, trained.adapter_dir, trial_dir / "eval", job.seed)]
    pruned = (trained.stopped or {}).get("reason") == "pruned"
    # a pruned arm is out of the comparison: reported where it stopped, no second test evaluation
    dev_best = best_step(trained.dev_by_step) if job.kind == "trial" and not pruned else None
    with_checkpoints = (bool(every) or dev_best is not None) and job.kind == "trial"
    saved = saved_checkpoints(trial_dir / "checkpoints") if with_checkpoints else {}
    chosen = checkpoints_to_evaluate(saved, every, trained.steps) if every else {}
    if dev_best is not None and dev_best < trained.steps and dev_best in saved:
        chosen = dict(sorted({**chosen, dev_best: saved[dev_best]}.items()))  # the test score of the dev choice
    targets += [EvalTarget(f"{job.trial_id}/checkpoint-{step}", folder, trial_dir / "eval" / f"checkpoint-{step}",
                           job.seed) for step, folder in chosen.items()]
    return EvalPlan(job, trial_dir, trained, targets, list(chosen), with_checkpoints, dev_best)


def plan_results(plan: EvalPlan, by_target: dict[str, list]) -> tuple[list, dict[str, dict[str, Any]], list]:
    """A job's share of an evaluation: its final results, the ``checkpoints`` block of result.json (the final
    step's outcome files linked, at no extra cost) and the checkpoints' results (for the cost)."""
    final = by_target[plan.job.trial_id]
    block: dict[str, dict[str, Any]] = {}
    more: list = []
    for step in plan.checkpoint_steps:
        results = by_target[f"{plan.job.trial_id}/checkpoint-{step}"]
        block[f"checkpoint-{step}"] = _checkpoint_entry(step, results, sum(r.wall_seconds for r in results))
        more += results
    if plan.with_checkpoints:
        _link_final(plan.job.spec, plan.trial_dir, plan.trained.steps)
        block[f"checkpoint-{plan.trained.steps}"] = _checkpoint_entry(plan.trained.steps, final, 0.0)
    if plan.dev_best is not None and f"checkpoint-{plan.dev_best}" in block:
        block[f"checkpoint-{plan.dev_best}"]["chosen_by"] = "dev"
    return final, block, more


def checkpoints_to_evaluate(saved: dict[int, Path], every: int, final_step: int) -> dict[int, Path]:
    """Every ``every``-th saved checkpoint before the final step (the final adapter is evaluated anyway)."""
    earlier = [step for step in saved if step < final_step]
    return {step: saved[step] for step in earlier[every - 1::every]}


def _progress_label(job: Trial, target: str, benchmark: str) -> str:
    """How evaluation progress reads: the benchmark for the final model, ``checkpoint-N benchmark`` otherwise."""
    return benchmark if target == job.trial_id else f"{target.removeprefix(job.trial_id + '/')} {benchmark}"


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
