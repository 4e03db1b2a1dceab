"""Run a study: resolve its trials, sync them into the ledger, work through them, write the results.

``run`` is a worker (see ``tina_sweep.run.worker``) with ``--workers`` slots plus a progress display and the
results at the end: each job runs in a fresh child process (memory is returned between trials, a crash cannot
corrupt the ledger), each slot pinned to its own GPU or share of the CPU cores; the parent process holds the
ledger, claims jobs, records results and shows progress. ``tina-sweep worker`` processes may join the same
study from anywhere. On CPU, several single-threaded workers in parallel beat one multi-threaded worker
(about 1.5x for two on 2 cores).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tina_sweep.trial.attempts import write_json_atomic
from tina_sweep.ledger.store import Ledger
from tina_sweep.study.study import Study
from tina_sweep.trial.result import TrialResult
from tina_sweep.trial.trial import Trial
from tina_sweep.run.tracking import Tracking

console = Console()


@dataclass
class RunOptions:
    scale: str
    sweeps_root: Path = Path("sweeps")
    storage: str | None = None
    workers: int | None = None  # trials at once; None: one per GPU, else one per CPU core the memory holds
    threads_per_worker: int | None = None
    max_retries: int = 2
    prices: dict[str, float] | None = None
    tracking: Tracking | None = None  # W&B settings; None = off
    eval_checkpoints: int = 0  # evaluate every K-th saved checkpoint too; 0 = off
    share_eval_engine: bool = True  # eval.backend vllm: a worker's jobs evaluated together by one engine
    trial_timeout: float | None = None  # seconds one attempt may run; None: the scale's default

    def worker_count(self) -> int:
        from tina_sweep.run.worker import default_workers

        return self.workers if self.workers is not None else default_workers(self.scale)

    def timeout(self) -> float:
        from tina_sweep.study.scales import TRIAL_TIMEOUTS

        return self.trial_timeout if self.trial_timeout is not None else TRIAL_TIMEOUTS.get(self.scale, 48 * 3600)


def study_jobs(study: Study, trials: list[Trial]) -> list[Trial]:
    """The baseline evaluation (once per study) followed by every trial."""
    jobs = list(trials)
    if study.evaluate_base_model and trials:
        baseline = trials[0].spec.baseline()
        jobs.insert(0, Trial(f"base-{baseline.trial_hash()}", "baseline", baseline, {}))
    return jobs


def prepare(study: Study, trials: list[Trial], options: RunOptions) -> tuple[Path, dict[str, Trial], Ledger]:
    """The sweep folder (with ``study.json``), the jobs by id, and the ledger with every job enqueued once."""
    sweep_dir = options.sweeps_root / study.name
    sweep_dir.mkdir(parents=True, exist_ok=True)
    jobs = study_jobs(study, trials)
    write_json_atomic(sweep_dir / "study.json", {
        "study": study.model_dump(mode="json"), "scale": options.scale,
        "jobs": [j.to_json() for j in jobs]})
    ledger = Ledger(study.name, options.storage, sweep_dir, options.max_retries, pruner=study_pruner(trials))
    ledger.sync({job.trial_id: job.to_json() for job in jobs})
    return sweep_dir, {job.trial_id: job for job in jobs}, ledger


def study_pruner(trials: list[Trial]):
    """The Optuna pruner the trials' ``dev.pruner`` names (every trial of a study shares its stopping), or None."""
    from tina_sweep.trial.spec import TrialSpec

    devs = [t.spec.dev for t in trials if isinstance(t.spec, TrialSpec) and t.spec.dev is not None]
    if not devs or devs[0].pruner == "none":
        return None
    horizon = max((t.spec.training.stop_at_step or t.spec.training.max_steps or 0) for t in trials)
    first_dev = min(t.spec.training.save_steps for t in trials)  # no dev score comes before the first save
    return make_pruner(devs[0], horizon or None, first_dev)


def make_pruner(dev, horizon: int | None, first_dev_step: int):
    """Optuna's pruner for a ``DevSpec``: ``min_steps`` is the median pruner's warm-up and successive halving's
    and Hyperband's minimum resource (default: the first step with a dev score); steps are optimizer steps."""
    import optuna

    min_steps = dev.min_steps or first_dev_step
    median = optuna.pruners.MedianPruner(n_startup_trials=dev.startup_trials, n_warmup_steps=min_steps)
    if dev.pruner == "median":
        return median
    if dev.pruner == "patient":
        return optuna.pruners.PatientPruner(median, patience=dev.patience or 1, min_delta=dev.min_delta)
    if dev.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=min_steps, reduction_factor=dev.reduction_factor,
                                                      min_early_stopping_rate=0)
    if dev.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=min_steps, max_resource=horizon or "auto",
                                              reduction_factor=dev.reduction_factor)
    raise ValueError(f"dev.pruner: unknown pruner {dev.pruner!r}")


def prepare_models(jobs: dict[str, Trial]) -> None:
    """Fetch or build each model once here, not in every job's process at the same time."""
    from tina_sweep.trial.models import resolve_model

    for model_name in sorted({job.spec.model.name for job in jobs.values()}):
        resolve_model(model_name)


def run_study(study: Study, trials: list[Trial], options: RunOptions) -> list[dict[str, Any]]:
    """Run every unfinished job of ``study`` (and wait for those other workers run); return the results of all
    finished jobs."""
    from tina_sweep.run.worker import Worker, plan_slots

    sweep_dir, by_id, ledger = prepare(study, trials, options)
    counts = ledger.counts(list(by_id))
    todo = counts.waiting
    console.print(f"[bold]{study.name}[/] at scale [bold]{options.scale}[/]: {len(by_id)} jobs "
                  f"({counts.finished} finished, {todo} to run"
                  + (f", {counts.running} running elsewhere" if counts.running else "")
                  + (f", {counts.failed_for_good} failed {options.max_retries + 1} times" if counts.failed_for_good else "")
                  + f"), ledger {_describe_storage(options.storage, sweep_dir)}")
    if todo or counts.running:
        prepare_models(by_id)
        slots = plan_slots(max(1, min(options.worker_count(), todo)), options.threads_per_worker)
        console.print(describe_slots(slots), highlight=False)
        with _RichDisplay(todo) as display:
            Worker(ledger, by_id, sweep_dir, slots, options.prices, options.tracking, options.eval_checkpoints,
                   display, options.share_eval_engine, options.timeout()).run()
    else:
        ledger.close()
    return collect_results(ledger, list(by_id))


def run_worker(study: Study, trials: list[Trial], options: RunOptions):
    """``tina-sweep worker``: join the study's ledger (enqueueing its jobs if nobody has yet) and work until no
    job is waiting or running anywhere; one line per event. Returns the worker's summary."""
    from tina_sweep.ledger.store import worker_name
    from tina_sweep.run.worker import LineDisplay, Worker, WorkerSummary, plan_slots

    sweep_dir, by_id, ledger = prepare(study, trials, options)
    counts = ledger.counts(list(by_id))
    print(f"[{worker_name()}] {study.name} at scale {options.scale}: {len(by_id)} jobs ({counts.finished} "
          f"finished, {counts.waiting} waiting, {counts.running} running), ledger "
          f"{_describe_storage(options.storage, sweep_dir)}", flush=True)
    if not (counts.waiting or counts.running):
        ledger.close()
        return WorkerSummary()
    prepare_models(by_id)
    slots = plan_slots(options.worker_count(), options.threads_per_worker)
    print(describe_slots(slots), flush=True)
    return Worker(ledger, by_id, sweep_dir, slots, options.prices, options.tracking, options.eval_checkpoints,
                  LineDisplay(), options.share_eval_engine, options.timeout()).run()


def describe_slots(slots) -> str:
    """One line: how many trials run at once, where, and with how many threads each."""
    threads = {slot.threads for slot in slots}
    each = f", {threads.pop()} thread(s) each" if len(threads) == 1 and None not in threads else ""
    places = "; ".join(slot.describe() for slot in slots)
    return f"{len(slots)} trial(s) at a time ({places}){each}"


def _describe_storage(storage: str | None, sweep_dir: Path) -> str:
    from tina_sweep.run.secrets import mask_url

    return mask_url(storage) if storage else str(sweep_dir / "ledger.journal")


class _RichDisplay:
    """An overall bar and one bar per running job (train steps, then evaluation progress)."""

    def __init__(self, todo: int):
        self.todo = todo
        self.ui = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console)
        self.bars: dict[str, int] = {}

    def __enter__(self) -> _RichDisplay:
        self.ui.__enter__()
        self.overall = self.ui.add_task("trials", total=self.todo)
        return self

    def __exit__(self, *exc) -> None:
        self.ui.__exit__(*exc)

    def claimed(self, job: Trial, attempt: int, slot) -> None:
        self.bars[job.trial_id] = self.ui.add_task(f"  {job.trial_id[:48]}", total=None)
        console.print(f"[dim]claimed {job.trial_id} (attempt {attempt}) on {slot.describe()}[/]", highlight=False)

    def progress(self, job: Trial, progress: dict[str, Any]) -> None:
        task = self.bars.get(job.trial_id)
        if task is not None and "step" in progress:
            self.ui.update(task, description=f"  {job.trial_id[:40]} {progress.get('phase', '')}",
                                 completed=progress["step"], total=progress.get("total"))

    def _end(self, job: Trial) -> None:
        self.ui.advance(self.overall)
        task = self.bars.pop(job.trial_id, None)
        if task is not None:
            self.ui.remove_task(task)

    def finished(self, job: Trial, result: TrialResult, reused: bool) -> None:
        self._end(job)
        from tina_sweep.run.worker import finished_how

        console.print(f"[green]done[/] {job.trial_id}: average Pass@1 {result.average:.3f} "
                      f"({finished_how(result, reused)})")

    def evaluating(self, jobs: list[Trial]) -> None:
        from tina_sweep.run.worker import shared_engine_line

        console.print(f"[bold]{shared_engine_line(jobs)}[/]", highlight=False)

    def stopping(self, job: Trial, text: str) -> None:
        console.print(f"[yellow]{job.trial_id}[/]: {text}", highlight=False)

    def abandoned(self, job: Trial, reason: str) -> None:
        self._end(job)
        console.print(f"[yellow]gave up[/] {job.trial_id}: {reason}", highlight=False)

    def failed(self, job: Trial, reason: str) -> None:
        self._end(job)
        from rich.markup import escape

        from tina_sweep.run.secrets import mask_url

        line = mask_url(reason.splitlines()[-1][:200]) if reason else ""
        console.print(f"[red]failed[/] {job.trial_id}: {escape(line)}", highlight=False)


def collect_results(ledger: Ledger, job_ids: list[str]) -> list[TrialResult]:
    """The result of every finished job among ``job_ids``, read from the ledger (trial folders hold the same
    JSON)."""
    attempts = ledger.by_job()
    results = []
    for job_id in job_ids:
        finished = [a for a in attempts.get(job_id, []) if a.state.name in ("COMPLETE", "PRUNED")
                    and "result" in a.user_attrs]
        if finished:
            results.append(TrialResult.parse(finished[0].user_attrs["result"], f"the ledger's result of {job_id}"))
    return results
