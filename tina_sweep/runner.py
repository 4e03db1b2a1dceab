"""Run a study: resolve its trials, sync them into the ledger, work through them, write the results.

Each job runs in a fresh child process (memory is returned between trials, and a crash cannot corrupt the
ledger); the parent process holds the ledger, claims jobs, records results and shows progress. On CPU,
several single-threaded workers in parallel beat one multi-threaded worker (about 1.5x for two on 2 cores).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import threading
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tina_sweep.job import Job, run_job
from tina_sweep.ledger import Ledger
from tina_sweep.study import Study, Trial
from tina_sweep.tracking import Tracking

console = Console()


@dataclass
class RunOptions:
    scale: str
    sweeps_root: Path = Path("sweeps")
    storage: str | None = None
    workers: int = 1
    threads_per_worker: int | None = None
    max_retries: int = 2
    prices: dict[str, float] | None = None
    tracking: Tracking | None = None  # W&B settings; None = off
    eval_checkpoints: int = 0  # evaluate every K-th saved checkpoint too; 0 = off


def study_jobs(study: Study, trials: list[Trial]) -> list[Job]:
    """The baseline evaluation (once per study) followed by every trial."""
    jobs = [Job(t.trial_id, "trial", t.spec, t.axes) for t in trials]
    if study.evaluate_base_model and trials:
        baseline = trials[0].spec.baseline()
        jobs.insert(0, Job(f"base-{baseline.trial_hash()}", "baseline", baseline, {}))
    return jobs


def _child(job_id: str, attrs: dict, trial_dir: str, prices: dict, threads: int | None, progress,
           tracking: Tracking | None = None, eval_checkpoints: int = 0) -> dict:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    return run_job(Job.from_attrs(job_id, attrs), Path(trial_dir), prices, threads, progress, tracking,
                   eval_checkpoints)


def run_study(study: Study, trials: list[Trial], options: RunOptions) -> list[dict[str, Any]]:
    """Run every unfinished job of ``study``; return the results of all finished jobs."""

    sweep_dir = options.sweeps_root / study.name
    sweep_dir.mkdir(parents=True, exist_ok=True)
    jobs = study_jobs(study, trials)
    by_id = {job.job_id: job for job in jobs}
    (sweep_dir / "study.json").write_text(json.dumps(
        {"study": study.model_dump(mode="json"), "scale": options.scale,
         "jobs": [{"trial_id": j.job_id, **j.to_attrs()} for j in jobs]}, indent=2))

    ledger = Ledger(study.name, options.storage, sweep_dir, options.max_retries)
    ledger.sync({job.job_id: job.to_attrs() for job in jobs})
    counts = ledger.counts(list(by_id))
    todo = counts.waiting
    console.print(f"[bold]{study.name}[/] at scale [bold]{options.scale}[/]: {len(jobs)} jobs "
                  f"({counts.finished} finished, {todo} to run"
                  + (f", {counts.failed_for_good} failed {options.max_retries + 1} times" if counts.failed_for_good else "")
                  + f"), ledger {_describe_storage(options.storage, sweep_dir)}")
    if todo:
        from tina_sweep.models import resolve_model

        for model_name in sorted({job.spec.model.name for job in jobs}):
            resolve_model(model_name)  # fetch or build once here, not in every worker at the same time
        _work(ledger, by_id, sweep_dir, options, todo)
    return collect_results(ledger, list(by_id))


def _describe_storage(storage: str | None, sweep_dir: Path) -> str:
    from tina_sweep.secrets import mask_url

    return mask_url(storage) if storage else str(sweep_dir / "ledger.journal")


def _work(ledger: Ledger, by_id: dict[str, Job], sweep_dir: Path, options: RunOptions, todo: int) -> None:
    prices = options.prices or {}
    workers = max(1, min(options.workers, todo))
    threads = options.threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
    context = mp.get_context("spawn")
    manager = context.Manager()
    updates = manager.Queue()
    running: dict[Future, tuple[Any, str]] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("eta"), TimeRemainingColumn(), console=console) as progress:
        overall = progress.add_task("trials", total=todo)
        bars: dict[str, int] = {}
        stop = threading.Event()
        pump = threading.Thread(target=_pump_updates, args=(updates, progress, bars, stop), daemon=True)
        pump.start()
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, max_tasks_per_child=1)
        try:
            while True:
                while len(running) < workers and (trial := ledger.claim()) is not None:
                    job = by_id.get(trial.user_attrs["trial_id"])
                    if job is None:  # a job of another version of this study: give it back untouched
                        ledger.fail(trial, "not part of this study definition", interrupted=True)
                        continue
                    bars[job.job_id] = progress.add_task(f"  {job.job_id[:48]}", total=None)
                    future = pool.submit(_child, job.job_id, job.to_attrs(), str(sweep_dir / "trials" / job.job_id),
                                         prices, threads, updates, options.tracking, options.eval_checkpoints)
                    running[future] = (trial, job.job_id)
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    trial, job_id = running.pop(future)
                    try:
                        result = future.result()
                    except Exception as error:  # the job failed: record why, retry on a later run
                        reason = "".join(traceback.format_exception_only(type(error), error)).strip()
                        ledger.fail(trial, reason)
                        console.print(f"[red]failed[/] {job_id}: {reason.splitlines()[-1][:200]}")
                    else:
                        ledger.complete(trial, result["average"], {"result": result})
                        console.print(f"[green]done[/] {job_id}: average Pass@1 {result['average']:.3f} "
                                      f"({result['cost']['train_seconds']:.0f}s train, "
                                      f"{result['cost']['eval_seconds']:.0f}s eval)")
                    progress.advance(overall)
                    progress.remove_task(bars.pop(job_id))
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: stopping workers; unfinished trials stay open for the next run[/]")
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            for trial, job_id in running.values():
                ledger.fail(trial, "interrupted by the user", interrupted=True)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            stop.set()
            pump.join(timeout=2)
            manager.shutdown()


def _pump_updates(updates, progress: Progress, bars: dict[str, int], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            job_id, kind, *rest = updates.get(timeout=0.2)
        except (queue.Empty, EOFError, OSError):
            continue
        task = bars.get(job_id)
        if task is None:
            continue
        if kind == "step":
            step, total = rest
            progress.update(task, description=f"  {job_id[:40]} train", completed=step, total=total)
        elif kind == "eval":
            name, done, total = rest
            progress.update(task, description=f"  {job_id[:40]} eval {name}", completed=done, total=total)


def collect_results(ledger: Ledger, job_ids: list[str]) -> list[dict[str, Any]]:
    """The result of every finished job among ``job_ids``, read from the ledger (trial folders hold the same
    JSON)."""
    attempts = ledger.by_job()
    results = []
    for job_id in job_ids:
        finished = [a for a in attempts.get(job_id, []) if a.state.name == "COMPLETE" and "result" in a.user_attrs]
        if finished:
            results.append(finished[0].user_attrs["result"])
    return results
