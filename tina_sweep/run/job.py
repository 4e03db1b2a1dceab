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
from tina_sweep.trial.spec import BaselineSpec, TrialSpec
from tina_sweep.trial.result import TrialResult
from tina_sweep.trial.trial import Trial

if TYPE_CHECKING:
    from tina_sweep.run.tracking import Tracking


@dataclass
class Trained:
    """What training leaves for evaluation (``trained.json`` when the evaluation waits for a shared engine)."""

    seconds: float = 0.0
    tokens: int = 0
    steps: int = 0
    adapter: str | None = None
    resumed: str | None = None
    final_reward: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)  # training time and tokens of each attempt
    global_batch: dict[str, Any] = field(default_factory=dict)  # prompts and completions per optimizer step

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

    from tina_sweep.trial.evaluate import evaluate_model
    from tina_sweep.run.tracking import record_eval, record_summary, tracked, train_summary

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
                              outcome.earlier_attempts + [this_attempt], outcome.global_batch)
            record_summary(run, train_summary(trained.steps, trained.seconds, trained.tokens, trained.final_reward))
    if defer_eval:
        trained.write(trial_dir)
        return None

    adapter, steps, seed = trained.adapter_dir, trained.steps, job.seed
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
        result = job_result(job, trained, results, checkpoints, more, eval_seconds, prices)
        record_eval(run, result)
    write_json_atomic(trial_dir / "result.json", result.to_json())
    return result


def job_result(job: Trial, trained: Trained, results: list, checkpoints: dict[str, dict[str, Any]], more: list,
               eval_seconds: float, prices: dict[str, float], engine: dict[str, Any] | None = None) -> TrialResult:
    """The result of a job (``result.json``): Pass@1 per benchmark, cost (training and evaluation), checkpoints;
    ``engine``: the shared vLLM engine that evaluated it."""
    from tina_sweep.trial.cost import trial_cost
    from tina_sweep.trial.evaluate import summary

    results_all = results + more
    cost = trial_cost(trained.seconds, eval_seconds, trained.tokens, sum(r.generated_tokens for r in results_all),
                      prices)
    pass_at_1 = {r.benchmark: r.pass_at_1 for r in results}
    return TrialResult(
        trial_id=job.trial_id, kind=job.kind, axes=job.axes, pass_at_1=pass_at_1,
        average=sum(pass_at_1.values()) / len(pass_at_1), benchmarks=summary(results), train_steps=trained.steps,
        global_batch=trained.global_batch or None, resumed_from_checkpoint=trained.resumed,
        train_attempts=trained.attempts, final_train_reward=trained.final_reward, cost=cost.as_dict(),
        eval_problems_per_second=sum(r.problems for r in results_all) / max(eval_seconds, 1e-9),
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), checkpoints=checkpoints, eval_engine=engine)


def evaluate_together(entries: list[tuple[Trial, Path]], prices: dict[str, float], tracking: Tracking | None = None,
                      eval_checkpoints: int = 0, on_progress: Any = None) -> list[TrialResult]:
    """``eval.backend = "vllm"``: evaluate jobs that share a model and evaluation settings through ONE engine (the
    base model loaded once; each trial's adapter, and every ``eval_checkpoints``-th checkpoint, a LoRARequest of
    one generate call) and write each job's result.json. Trials must have run with ``defer_eval`` (their
    ``trained.json``); a baseline job is the base model itself. Each job is charged its tokens' share of the
    generation time plus an equal share of the engine's start."""
    from tina_sweep.trial.evaluate.vllm_backend import AdapterJob, VLLMEvaluator
    from tina_sweep.trial.evaluate import evaluation_prompt
    from tina_sweep.run.tracking import record_eval, tracked
    from tina_sweep.trial.train.trainer import saved_checkpoints

    first = entries[0][0].spec
    adapters, plans = [], []
    for job, trial_dir in entries:
        trained = Trained.read(trial_dir) if job.kind == "trial" else Trained()
        adapters.append(AdapterJob(job.trial_id, trained.adapter_dir, trial_dir / "eval", job.seed))
        chosen = {}
        if eval_checkpoints and job.kind == "trial":
            chosen = checkpoints_to_evaluate(saved_checkpoints(trial_dir / "checkpoints"), eval_checkpoints,
                                             trained.steps)
            adapters += [AdapterJob(f"{job.trial_id}/checkpoint-{step}", folder, trial_dir / "eval" / f"checkpoint-{step}",
                                    job.seed) for step, folder in chosen.items()]
        plans.append((job, trial_dir, trained, chosen))
    evaluator = VLLMEvaluator(first.model, first.eval, adapters, entries[0][0].seed)
    trained_adapters = [a for a in adapters if a.adapter_dir is not None]
    check = None
    try:
        if first.eval.check_adapters and trained_adapters:
            checkable = adapter_to_check(trained_adapters)
            check = adapter_check(first, evaluator, checkable, entries[0][1].parent) if checkable else {
                "skipped": f"all {len(trained_adapters)} adapters are exactly zero (LoRA B norm 0): each serves the "
                           "base model's outputs, so there is no LoRA effect to check"}
        by_name = evaluator.evaluate_all(evaluation_prompt(first.prompt, first.eval), on_progress)
    finally:
        evaluator.close()
    engine = {"shared_by_jobs": len(entries), "models": len(adapters), "load_seconds": evaluator.load_seconds,
              "adapter_check": check}
    written = []
    for job, trial_dir, trained, chosen in plans:
        results = by_name[job.trial_id]
        block, more = {}, []
        for step in chosen:
            step_results = by_name[f"{job.trial_id}/checkpoint-{step}"]
            block[f"checkpoint-{step}"] = _checkpoint_entry(step, step_results, sum(r.wall_seconds for r in step_results))
            more += step_results
        if eval_checkpoints and job.kind == "trial":
            _link_final(job.spec, trial_dir, trained.steps)
            block[f"checkpoint-{trained.steps}"] = _checkpoint_entry(trained.steps, results, 0.0)
        eval_seconds = evaluator.load_seconds / len(entries) + sum(r.wall_seconds for r in results + more)
        with tracked(tracking, "eval", job) as run:
            result = job_result(job, trained, results, block, more, eval_seconds, prices, engine)
            record_eval(run, result)
        write_json_atomic(trial_dir / "result.json", result.to_json())
        written.append(result)
    return written


def checkpoints_to_evaluate(saved: dict[int, Path], every: int, final_step: int) -> dict[int, Path]:
    """Every ``every``-th saved checkpoint before the final step (the final adapter is evaluated anyway)."""
    earlier = [step for step in saved if step < final_step]
    return {step: saved[step] for step in earlier[every - 1::every]}


def evaluate_checkpoints(spec: TrialSpec, trial_dir: Path, final_step: int, every: int, final: list, seed: int,
                         on_progress: Any = None) -> tuple[dict[str, dict[str, Any]], list]:
    """Evaluate every ``every``-th saved checkpoint into ``eval/checkpoint-N/``; the final step reuses the final
    adapter's evaluation (same weights; its outcome files are linked, at no extra cost). Returns the
    ``checkpoints`` block of result.json and the new BenchmarkResults (for the cost)."""
    from tina_sweep.trial.evaluate import evaluate_model
    from tina_sweep.trial.train.trainer import saved_checkpoints

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
    from tina_sweep.trial.evaluate.vllm_backend import AdapterJob, VLLMEvaluator
    from tina_sweep.trial.evaluate import evaluation_prompt
    from tina_sweep.trial.train.trainer import saved_checkpoints

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


def adapter_to_check(adapters: list[Any]) -> Any | None:
    """The first adapter that is not exactly zero (an untrained adapter serves the base model's outputs, so the
    adapter check could only fail on it), or None when every one is zero. An adapter folder without weights (a
    stand-in in tests) counts as non-zero."""
    from tina_sweep.trial.evaluate.vllm_backend import lora_b_norm

    for adapter in adapters:
        weights = Path(adapter.adapter_dir) / "adapter_model.safetensors"
        if not weights.is_file() or lora_b_norm(adapter.adapter_dir) > 0:
            return adapter
    return None


def adapter_check(spec: TrialSpec | BaselineSpec, evaluator: Any, adapter: Any, scratch: Path) -> dict[str, Any]:
    """``eval.check_adapters``: before a shared engine evaluates, check greedily on 8 problems that one adapter
    served as a LoRA changes the base model's outputs and agrees with a merged copy of it (served by a short-lived
    engine of its own, deleted afterwards). A failure stops the evaluation: LoRA serving cannot be trusted."""
    from tina_sweep.trial.evaluate.lighteval_backend import merge_adapter
    from tina_sweep.trial.evaluate.vllm_backend import merged_greedy
    from tina_sweep.trial.datasets import load_benchmark
    from tina_sweep.trial.evaluate import evaluation_prompt

    prompt = evaluation_prompt(spec.prompt, spec.eval)
    problems = load_benchmark(spec.eval.benchmarks[0])[:8]
    merged_dir = scratch / f".adapter-check-{os.getpid()}"
    try:
        merged = merge_adapter(spec.model, adapter.adapter_dir, merged_dir, spec.eval.dtype)
        merged_outputs = merged_greedy(spec.model, spec.eval, merged, prompt, problems, tokens=32)
    finally:
        shutil.rmtree(merged_dir, ignore_errors=True)
    check = evaluator.check_adapter(adapter, prompt, merged_outputs, problems, tokens=32)
    if not check.passed:
        raise RuntimeError(f"adapter check failed for {adapter.name}: its outputs differ from the base model's on "
                           f"{check.differs_from_base} of {check.prompts} prompts and match its merged copy on "
                           f"{check.matches_merged} (eval.check_adapters: false skips the check)")
    return check.as_dict()


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
