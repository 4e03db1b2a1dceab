"""Workers: claim jobs from the ledger and run each in a fresh child process, one job per device slot.

A worker process holds the ledger (claims, heartbeats or attempt locks, results) and runs every job it claims
in a child process of its own, so a crash cannot corrupt the ledger and all (GPU) memory is returned between
jobs. Children are forked from a fork server that imported torch, transformers and TRL once (no ten seconds
of imports per job); each child inherits its attempt's lock and dies with its worker (``PR_SET_PDEATHSIG``
plus a watchdog), so a killed worker leaves no orphan behind to write into a folder a retry is using.

A worker has one slot per device: ``tina-sweep run --workers N`` (or ``tina-sweep worker --workers N``) runs
N jobs at a time, each pinned to its own GPU (``CUDA_VISIBLE_DEVICES``) where CUDA GPUs exist, or to its own
share of the CPU cores (affinity and torch threads) on a CPU machine. ``tina-sweep worker`` processes started
anywhere (a cluster's nodes, several terminals) share one study through its ledger. A worker keeps going
until no job of the study is waiting or running anywhere: while other workers' jobs run it waits, so it can
take over a job whose worker dies.

Each attempt writes into a folder of its own (``attempts/<job>/<number>/``, see ``tina_sweep.trial.attempts``) that
the worker renames into place as ``trials/<job>/`` when the attempt finishes and is still the job's live one.
A worker stops a child whose attempt another worker declared dead (this worker was paused past the grace
period, say) and records nothing for it; it kills a child that runs past the trial timeout (a hung trial is
the trial's failure). Children ignore Ctrl-C and SIGTERM: the worker decides, so a scheduler's SIGTERM to the
whole job hands the trials back as interrupted instead of failing them.

The child reports progress in ``progress.json`` (phase, step, total); the worker copies it into the ledger (user
attr ``progress``) for ``tina-sweep status``, and into its display.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tina_sweep.trial import attempts
from tina_sweep.trial.attempts import write_json_atomic
from tina_sweep.trial.dev import DEV_LOG, PRUNING_WORKER, STOP_FILE, VERDICT_FILE, read_dev_log
from tina_sweep.trial.result import TrialResult
from tina_sweep.trial.trial import Trial
from tina_sweep.ledger.store import Ledger, LedgerLockTimeout, worker_name
from tina_sweep.run.secrets import mask_url

# imported once by the fork server, inherited by every job's process
PRELOAD = ["tina_sweep.run.worker", "tina_sweep.run.job", "tina_sweep.trial.train.trainer", "tina_sweep.trial.evaluate.local", "tina_sweep.trial.cost",
           "tina_sweep.run.tracking"]
POLL_SECONDS = 0.5  # how often a busy worker looks at its children
IDLE_SECONDS = 2.0  # how often a worker with a free slot looks for work (and for dead workers' jobs)
PROGRESS_SECONDS = 2.0  # how often progress is copied into the ledger


@dataclass(frozen=True)
class Slot:
    """Where one job at a time runs: a GPU (``cuda_devices``), or a share of the CPU cores."""

    index: int
    cuda_devices: str | None = None  # CUDA_VISIBLE_DEVICES for its jobs
    cpus: tuple[int, ...] | None = None  # CPU affinity for its jobs
    threads: int | None = None  # torch threads for its jobs

    def describe(self) -> str:
        if self.cuda_devices is not None:
            return f"GPU {self.cuda_devices}"
        if self.cpus:
            return f"CPUs {','.join(map(str, self.cpus))}"
        return "CPU"


def visible_gpus() -> list[str]:
    """The CUDA devices this process may use, as CUDA_VISIBLE_DEVICES entries ([] without CUDA)."""
    from tina_sweep.trial.gpus import cuda_device_count

    try:
        count = cuda_device_count()
    except Exception:
        return []
    if not count:
        return []
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:count] if listed else [str(i) for i in range(count)]


def _cores() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def available_memory_gb() -> float | None:
    """The memory the kernel says new processes can use without swapping (MemAvailable), or None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return None


def default_workers(scale: str, gpus: list[str] | None = None) -> int:
    """How many trials to run at once when ``--workers`` is not given: one per GPU; without one, one
    single-threaded trial per CPU core (at the cpu scale's sizes a trial does not scale to more threads, and
    parallel trials do: ``benchmarks/cpu_throughput.py --sweep``), as many as the available memory holds
    (``TRIAL_MEMORY_GB``)."""
    from tina_sweep.study.scales import TRIAL_MEMORY_GB

    gpus = visible_gpus() if gpus is None else gpus
    if gpus:
        return len(gpus)
    available = available_memory_gb()
    by_memory = len(_cores()) if available is None else int(available // TRIAL_MEMORY_GB.get(scale, 4.0))
    return max(1, min(len(_cores()), by_memory))


def plan_slots(workers: int, threads_per_worker: int | None = None, gpus: list[str] | None = None) -> list[Slot]:
    """``workers`` slots: one GPU each (round-robin when there are fewer GPUs than workers), else a disjoint
    share of this process's CPU cores each (pinned when there are at least as many cores as workers)."""
    gpus = visible_gpus() if gpus is None else gpus
    cores = _cores()
    share = max(1, len(cores) // workers)
    threads = threads_per_worker or share
    if gpus:
        if workers > len(gpus):
            print(f"warning: {workers} workers share {len(gpus)} GPU(s)", file=sys.stderr)
        return [Slot(i, cuda_devices=gpus[i % len(gpus)], threads=threads) for i in range(workers)]
    if workers > 1 and len(cores) >= workers:
        return [Slot(i, cpus=tuple(cores[i * share:(i + 1) * share]), threads=threads) for i in range(workers)]
    return [Slot(i, threads=threads) for i in range(workers)]


class Display(Protocol):
    def claimed(self, job: Trial, attempt: int, slot: Slot) -> None: ...
    def progress(self, job: Trial, progress: dict[str, Any]) -> None: ...
    def finished(self, job: Trial, result: TrialResult, reused: bool) -> None: ...
    def failed(self, job: Trial, reason: str) -> None: ...
    def evaluating(self, jobs: list[Trial]) -> None: ...
    def abandoned(self, job: Trial, reason: str) -> None: ...
    def stopping(self, job: Trial, text: str) -> None: ...


def finished_how(result: TrialResult, reused: bool) -> str:
    """How a finished job's line describes it: its training and evaluation time (and where it stopped early), or
    that it was already done."""
    if reused:
        return "recorded its finished result"
    stopped = result.stopped
    early = f", {stopped.reason.replace('_', ' ')} at step {stopped.step} of {stopped.horizon}" \
        if stopped is not None and stopped.reason != "finished" else ""
    return f"{result.cost.train_seconds or 0:.0f}s train, {result.cost.eval_seconds or 0:.0f}s eval{early}"


def shared_engine_line(jobs: list[Trial]) -> str:
    trials = sum(job.kind == "trial" for job in jobs)
    base = " and the base model" if len(jobs) > trials else ""
    return f"evaluating {trials} trained trial(s){base} with one vLLM engine"


class LineDisplay:
    """One line per event, prefixed with the worker's name (for logs of workers started anywhere)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.name = worker_name()

    def _print(self, text: str) -> None:
        print(f"[{self.name}] {text}", file=self.stream, flush=True)

    def claimed(self, job: Trial, attempt: int, slot: Slot) -> None:
        self._print(f"claimed {job.trial_id} (attempt {attempt}) on {slot.describe()}")

    def progress(self, job: Trial, progress: dict[str, Any]) -> None:
        pass

    def finished(self, job: Trial, result: TrialResult, reused: bool) -> None:
        self._print(f"done {job.trial_id}: average Pass@1 {result.average:.3f} ({finished_how(result, reused)})")

    def failed(self, job: Trial, reason: str) -> None:
        self._print(mask_url(f"failed {job.trial_id}: {reason.splitlines()[-1][:200] if reason else ''}"))

    def evaluating(self, jobs: list[Trial]) -> None:
        self._print(shared_engine_line(jobs))

    def abandoned(self, job: Trial, reason: str) -> None:
        self._print(f"gave up {job.trial_id}: {reason}")

    def stopping(self, job: Trial, text: str) -> None:
        self._print(f"{job.trial_id}: {text}")


@dataclass
class _Running:
    trial: Any  # optuna.Trial
    job: Trial
    slot: Slot
    process: Any
    trial_dir: Path  # the attempt's own folder
    seen_mtime: float = 0.0
    pushed_at: float = 0.0
    progress: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    dev_seen: int = 0  # dev scores of the attempt already reported to the ledger
    stop_asked: bool = False  # pruned: stop.json written


_ACTIVE: list[Worker] = []  # the workers running in this process (``hand_back`` reaches them from a signal)


def hand_back_running(reason: str) -> int:
    """Stop the children of every worker running in this process and hand their attempts back to the ledger as
    interrupted (a scheduler's preemption, say); returns how many."""
    return sum(worker.hand_back(reason) for worker in list(_ACTIVE))


@dataclass
class WorkerSummary:
    finished: int = 0
    failed: int = 0
    claimed: list[str] = field(default_factory=list)


class Worker:
    """Claims jobs of one study and runs them, one per slot, until no job is waiting or running anywhere."""

    def __init__(self, ledger: Ledger, jobs: dict[str, Trial], sweep_dir: Path, slots: list[Slot],
                 prices: dict[str, float] | None = None, tracking: Any = None, eval_checkpoints: int = 0,
                 display: Display | None = None, share_eval_engine: bool = True, trial_timeout: float | None = None):
        self.ledger, self.jobs, self.sweep_dir, self.slots = ledger, jobs, sweep_dir, slots
        self.trial_timeout = trial_timeout  # seconds an attempt may run before it is killed (None: no limit)
        self.running: dict[int, _Running] = {}
        self.prices, self.tracking, self.eval_checkpoints = prices or {}, tracking, eval_checkpoints
        self.display = display or LineDisplay()
        self.summary = WorkerSummary()
        self.attrs = {trial_id: job.to_json() for trial_id, job in jobs.items()}
        self.share_eval_engine = share_eval_engine
        self.awaiting: list[_Running] = []  # trained (or baseline) jobs held for the shared vLLM engine

    def defers(self, job: Trial) -> bool:
        """Whether ``job`` is evaluated later, with the other jobs this worker holds, by one vLLM engine."""
        return self.share_eval_engine and job.spec.eval.backend == "vllm"

    def run(self) -> WorkerSummary:
        running = self.running
        previous_term = _raise_on_sigterm()
        _ACTIVE.append(self)
        try:
            self.ledger.sync(self.attrs)
            last_sync = time.monotonic()
            while True:
                free = [slot for slot in self.slots if slot.index not in running]
                while free and (trial := self._claim()) is not None:
                    try:
                        started = self._start(trial, free[0])
                    except BaseException as error:  # not yet among the running: record the claimed one here
                        self._release_claimed(trial, error)
                        raise
                    if started is not None:  # None: its result was already written, nothing to run
                        running[free.pop(0).index] = started
                if not running:
                    if self.awaiting:  # nothing left to train here: evaluate what this worker holds, together
                        self._evaluate_awaiting()
                        continue
                    if not self.ledger.open_jobs(self.jobs):
                        break
                    time.sleep(IDLE_SECONDS)  # other workers' jobs are running: wait to take over dead ones
                    self._sync()
                    last_sync = time.monotonic()
                    continue
                sentinels = {r.process.sentinel: index for index, r in running.items()}
                ready = mp.connection.wait(list(sentinels), timeout=POLL_SECONDS)
                for sentinel in ready:
                    self._finish(running.pop(sentinels[sentinel]))
                self._stop_dead_and_late(running)
                for job in running.values():
                    self._poll_progress(job)
                    self._poll_dev(job)
                if len(running) < len(self.slots) and time.monotonic() - last_sync > IDLE_SECONDS:
                    self._sync()  # re-enqueues jobs of dead workers, retries failures
                    last_sync = time.monotonic()
        except BaseException as error:  # Ctrl-C, SIGTERM or a bug here: hand the running and held jobs back
            stopped = isinstance(error, (KeyboardInterrupt, SystemExit))
            reason = "interrupted (the worker was stopped)" if stopped else \
                mask_url(f"the worker failed: {type(error).__name__}: {error}")
            # a stop is not a failure; a crash of the worker is not the trial's either, but counts as a loss
            self._release(reason, interrupted=stopped, lost=not stopped)
            raise
        finally:
            _ACTIVE.remove(self)
            _restore_sigterm(previous_term)
            self.ledger.close()
        return self.summary

    def _release(self, reason: str, interrupted: bool, lost: bool = False) -> int:
        """Kill the children first, then record their attempts (never the other way round: a recorded attempt
        may be retried elsewhere at once, and its child must not still be writing)."""
        held = list(self.running.values()) + self.awaiting
        self.running.clear()
        self.awaiting = []
        for job in held:
            if job.process is not None and job.process.is_alive():
                job.process.kill()
        for job in held:
            if job.process is not None:
                job.process.join(30)
            self.ledger.fail(job.trial, reason, interrupted=interrupted, lost=lost)
        return len(held)

    def _release_claimed(self, trial, error: BaseException) -> None:
        stopped = isinstance(error, (KeyboardInterrupt, SystemExit))
        reason = "interrupted (the worker was stopped)" if stopped else \
            mask_url(f"the worker failed: {type(error).__name__}: {error}")
        self.ledger.fail(trial, reason, interrupted=stopped, lost=not stopped)

    def hand_back(self, reason: str) -> int:
        """Stop this worker's children and record their attempts as interrupted (preemption): not failures."""
        return self._release(reason, interrupted=True)

    def _claim(self):
        """The next attempt to run, or None (nothing waits, or the ledger lock timed out: said, tried later)."""
        try:
            return self.ledger.claim(self.jobs)
        except LedgerLockTimeout as error:
            print(f"warning: {error}", file=sys.stderr, flush=True)
            return None

    def _stop_dead_and_late(self, running: dict[int, _Running]) -> None:
        """Stop children whose attempt another worker declared dead (record nothing: the job is someone else's
        now) and children past the trial timeout (the trial's failure)."""
        dead = self.ledger.declared_dead()
        for index, job in list(running.items()):
            late = self.trial_timeout is not None and time.monotonic() - job.started > self.trial_timeout
            if job.trial._trial_id not in dead and not late:
                continue
            running.pop(index)
            job.process.kill()
            job.process.join(30)
            if job.trial._trial_id in dead:
                self.ledger.fail(job.trial, "declared dead by another worker")  # a no-op: it is failed already
                self.display.abandoned(job.job, "another worker declared this attempt dead (this worker was "
                                                "paused or cut off past the grace period); stopped it, recorded nothing")
                continue
            reason = f"timed out: still running after {self.trial_timeout:.0f} s (--trial-timeout)"
            self.ledger.fail(job.trial, reason)
            self.summary.failed += 1
            self.display.failed(job.job, reason)

    def _sync(self) -> None:
        """A periodic sync; a failure (the database briefly unreachable, say) is a warning, not the end of the
        worker and of the jobs it runs."""
        try:
            self.ledger.sync(self.attrs)
        except Exception as error:  # noqa: BLE001
            print(mask_url(f"warning: ledger sync failed ({type(error).__name__}: {error})".splitlines()[0]),
                  file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ one job
    def _start(self, trial, slot: Slot) -> _Running | None:
        job = self.jobs[trial.user_attrs["trial_id"]]
        trial_dir = attempts.attempt_dir(self.sweep_dir, job.trial_id, trial.number)
        self.summary.claimed.append(job.trial_id)
        self.display.claimed(job, trial.user_attrs.get("attempt", 1), slot)
        earlier = attempts.earlier_folders(self.sweep_dir, job.trial_id, exclude=trial_dir)
        for folder in [attempts.trial_dir(self.sweep_dir, job.trial_id)] + earlier[::-1]:
            reused = attempts.finished_result(folder, job.trial_id, self.eval_checkpoints)
            if reused is not None:  # an earlier attempt finished but its worker died before recording it
                self._record(_Running(trial, job, slot, None, folder), reused, reused=True)
                return None
        attempts.seed_attempt(trial_dir, earlier)
        if job.kind == "baseline" and self.defers(job):  # nothing to train: straight to the shared engine
            self.awaiting.append(_Running(trial, job, slot, None, trial_dir))
            return None
        lock = self.ledger.lock_fd(trial)
        process = _context().Process(
            target=_job_process, name=f"tina-sweep {job.trial_id}", daemon=False,
            args=(job.to_json(), str(trial_dir), self.prices, slot, self.tracking,
                  self.eval_checkpoints, {**os.environ, PRUNING_WORKER: "1"}, os.getpid(),
                  None if lock is None else _PassFd(lock), self.defers(job)))
        try:
            process.start()
        except BaseException as error:
            stopped = isinstance(error, KeyboardInterrupt)
            self.ledger.fail(trial, f"could not start the job's process: {type(error).__name__}: {error}",
                             interrupted=stopped, lost=not stopped)  # the worker's trouble, not the trial's
            raise
        self.ledger.set_progress(trial, {"phase": "starting", "pid": process.pid, "slot": slot.describe(),
                                         "updated": time.time()})
        return _Running(trial, job, slot, process, trial_dir)

    def _record(self, job: _Running, result: TrialResult, reused: bool = False) -> None:
        """Rename the attempt's folder into place and record it, under the ledger lock, if the attempt is still
        the job's live one; otherwise leave the folder for the retry (it finds the result there)."""
        with self.ledger.lock():
            if not self.ledger.still_running(job.trial):
                self.display.abandoned(job.job, "another worker declared this attempt dead meanwhile; its result "
                                                "stays in its folder for the job's live attempt")
                return
            final = attempts.trial_dir(self.sweep_dir, job.job.trial_id)
            if job.trial_dir != final:
                try:
                    attempts.commit(job.trial_dir, self.sweep_dir, job.job.trial_id)
                except FileExistsError:  # a result landed already (it stands): record that one
                    result, reused = attempts.finished_result(final, job.job.trial_id) or result, True
            attrs = {"result": result.to_json(), **({"reused_result": True} if reused else {}),
                     **train_reward_attr(attempts.trial_dir(self.sweep_dir, job.job.trial_id))}
            if not self.ledger.complete(job.trial, result.average, attrs, pruned=result.pruned):
                return
            live = {str(t.number) for t in self.ledger.by_job().get(job.job.trial_id, [])
                    if t.state.name == "RUNNING"}
            attempts.clean_attempts(self.sweep_dir, job.job.trial_id, live)
        self.summary.finished += 1
        self.display.finished(job.job, result, reused)

    def _finish(self, job: _Running, evaluated: bool = False) -> None:
        job.process.join()
        self._poll_dev(job, ask_pruner=False)  # the scores written since the last look
        code = job.process.exitcode
        result = attempts.finished_result(job.trial_dir, job.job.trial_id, self.eval_checkpoints)
        if code == 0 and result is None and not evaluated and self.defers(job.job) \
                and (job.trial_dir / "trained.json").is_file():
            self.awaiting.append(job)  # trained; its evaluation waits for the shared engine
            self.display.progress(job.job, {"phase": "trained, evaluation waits", "step": 0, "total": None})
            return
        if code == 0 and result is not None:
            self._record(job, result)
            return
        reason = _read_error(job.trial_dir / "error.json")
        if not reason:
            reason = (f"the job's process was killed by signal {-code}" if code is not None and code < 0
                      else f"the job's process exited with code {code} and no result")
        self.ledger.fail(job.trial, reason)
        self.summary.failed += 1
        self.display.failed(job.job, reason)

    def _evaluate_awaiting(self) -> None:
        """One engine (one child process) per group of held jobs that share a model and evaluation settings;
        each job is then recorded like any other (complete, or failed and retried)."""
        groups: dict[str, list[_Running]] = {}
        for held in self.awaiting:
            spec = held.job.spec
            key = json.dumps([spec.model.model_dump(mode="json"), spec.prompt.model_dump(mode="json"),
                              spec.eval.model_dump(mode="json")], sort_keys=True)
            groups.setdefault(key, []).append(held)
        for entries in groups.values():
            self.display.evaluating([held.job for held in entries])
            for held in entries:
                (held.trial_dir / "error.json").unlink(missing_ok=True)
                self.display.progress(held.job, {"phase": "eval (shared engine)", "step": 0, "total": None})
            process = _context().Process(
                target=_evaluate_process, name="tina-sweep shared evaluation", daemon=False,
                args=([(h.job.to_json(), str(h.trial_dir)) for h in entries], self.prices,
                      self.slots[0], self.tracking, self.eval_checkpoints, dict(os.environ), os.getpid()))
            for held in entries:
                held.process = process
            process.start()
            for held in entries:
                self.ledger.set_progress(held.trial, {"phase": "eval (shared engine)", "pid": process.pid,
                                                      "updated": time.time()})
            process.join()
            for held in entries:
                self.awaiting.remove(held)
                self._finish(held, evaluated=True)

    def _poll_progress(self, job: _Running) -> None:
        path = job.trial_dir / "progress.json"
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime == job.seen_mtime:
            return
        try:
            progress = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        job.seen_mtime = mtime
        phase_changed = progress.get("phase") != job.progress.get("phase")
        job.progress = progress
        self.display.progress(job.job, progress)
        if phase_changed or time.monotonic() - job.pushed_at >= PROGRESS_SECONDS:
            self.ledger.set_progress(job.trial, progress)
            job.pushed_at = time.monotonic()

    def _poll_dev(self, job: _Running, ask_pruner: bool = True) -> None:
        """Report the attempt's new dev scores to the ledger (Optuna intermediate values) and ask the study's
        pruner; a pruned attempt is asked to stop (``stop.json``): it saves a checkpoint, is evaluated and is
        recorded PRUNED."""
        dev = getattr(job.job.spec, "dev", None)
        if job.job.kind != "trial" or dev is None:
            return
        records = read_dev_log(job.trial_dir / DEV_LOG, job.dev_seen)
        if not records:
            return
        job.dev_seen += len(records)
        for record in records:
            self.ledger.report(job.trial, float(record["pass_at_1"]), int(record["step"]))
        step = int(records[-1]["step"])
        if not ask_pruner or dev.pruner == "none":
            return
        pruned = job.stop_asked
        if not pruned and (dev.min_steps is None or step >= dev.min_steps):
            try:
                pruned = self.ledger.should_prune(job.trial)
            except Exception as error:  # noqa: BLE001 - a pruner's trouble never stops the trial
                print(f"warning: pruner {dev.pruner}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        if pruned and not job.stop_asked:
            write_json_atomic(job.trial_dir / STOP_FILE, {"reason": "pruned", "pruner": dev.pruner, "at_dev_step": step,
                                                          "dev_pass_at_1": float(records[-1]["pass_at_1"]),
                                                          "by": worker_name(), "at": time.time()})
            job.stop_asked = True
            self.display.stopping(job.job, f"pruned by the {dev.pruner} pruner at step {step} (dev Pass@1 "
                                           f"{float(records[-1]['pass_at_1']):.3f}): stopping there")
        write_json_atomic(job.trial_dir / VERDICT_FILE, {"step": step, "prune": bool(pruned)})  # the trial waits


def train_reward_attr(trial_dir: Path) -> dict[str, list[list[float]]]:
    """``{"train_reward": [[step, reward], ...]}`` from a trial folder's train_log.jsonl (Optuna's view of the
    training curve, beside the dev scores it holds as intermediate values); empty without a log."""
    curve = []
    with contextlib.suppress(OSError):
        for line in (trial_dir / "train_log.jsonl").read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                record = json.loads(line)
                curve.append([int(record["step"]), float(record["reward"])])
    return {"train_reward": curve} if curve else {}


def _read_error(path: Path) -> str:
    try:
        return json.loads(path.read_text()).get("error", "")
    except (OSError, ValueError):
        return ""


# ---------------------------------------------------------------------- the job's process
_context_cache: list = []


def _context():
    """A fork server that imported the heavy libraries once (spawn where there is no fork server)."""
    if not _context_cache:
        if "forkserver" in mp.get_all_start_methods():
            context = mp.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
        else:
            context = mp.get_context("spawn")
        _context_cache.append(context)
    return _context_cache[0]


def start_trial_processes() -> None:
    """Start the fork server now: its imports (torch, transformers, TRL: seconds) then overlap the run's own
    preparation (the scale, the study's checks) instead of delaying the first trial."""
    if _context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


class _PassFd:
    """An open file descriptor handed to a child process (it keeps the attempt lock held while it lives)."""

    def __init__(self, fd: int):
        self.fd = fd

    def __reduce__(self):
        from multiprocessing import reduction

        return _received_fd, (reduction.DupFd(self.fd),)


def _received_fd(duplicate) -> int:
    return duplicate.detach()


class _ProgressFile:
    """What ``run_job`` reports, written to ``progress.json`` (the worker reads it)."""

    def __init__(self, path: Path, worker_pid: int):
        self.path, self.worker = path, f"{socket.gethostname()}:{worker_pid}"

    def put(self, message: tuple) -> None:
        _, kind, *rest = message
        if kind == "step":
            step, total = rest
            payload = {"phase": "train", "step": step, "total": total}
        elif kind == "eval":
            name, done, total = rest
            payload = {"phase": f"eval {name}", "step": done, "total": total}
        else:
            return
        payload.update(pid=os.getpid(), worker=self.worker, updated=time.time())
        with contextlib.suppress(OSError):
            write_json_atomic(self.path, payload)


def _die_with(worker_pid: int) -> None:
    """Die when the worker dies. A watchdog thread waits on the worker's end of the pipe multiprocessing keeps
    between them (end of file: the worker is gone, even while it is an unreaped zombie); the kernel's
    parent-death signal covers the fork server's own death (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    parent = mp.parent_process()

    def watch() -> None:
        if parent is not None and parent.sentinel is not None:
            mp.connection.wait([parent.sentinel])
            os._exit(137)
        while True:  # no sentinel: poll the worker's PID
            try:
                os.kill(worker_pid, 0)
            except ProcessLookupError:
                os._exit(137)
            except PermissionError:
                pass
            time.sleep(1.0)

    threading.Thread(target=watch, name="tina-sweep-watchdog", daemon=True).start()


def _child_setup(slot: Slot, environ: dict[str, str], worker_pid: int) -> None:
    """A child process: dies with the worker, takes the worker's environment and the slot's device."""
    _die_with(worker_pid)
    for stop in (signal.SIGINT, signal.SIGTERM):  # the worker decides: it kills its children, then records
        signal.signal(stop, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(environ)  # the worker's environment now, not the fork server's at its start
    if slot.cuda_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = slot.cuda_devices
    if slot.cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, slot.cpus)
    if slot.threads:
        os.environ["OMP_NUM_THREADS"] = str(slot.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _write_error(folders: list[Path], error: BaseException) -> None:
    """Leave the reason in each folder's error.json for the worker; where that cannot be written (the disk is
    full, say), one line on stderr instead of a traceback."""
    reason = "".join(traceback.format_exception_only(type(error), error)).strip()
    for folder in folders:
        try:
            write_json_atomic(folder / "error.json", {"error": reason, "traceback": traceback.format_exc()[-8000:],
                                                      "host": socket.gethostname(), "pid": os.getpid()})
        except OSError as unwritable:
            print(f"{folder.name}: {reason.splitlines()[-1]} (and error.json could not be written: {unwritable})",
                  file=sys.stderr, flush=True)


def _job_process(trial: dict, trial_dir: str, prices: dict, slot: Slot, tracking: Any,
                 eval_checkpoints: int, environ: dict[str, str], worker_pid: int, lock_fd: int | None,
                 defer_eval: bool = False) -> None:
    """The body of a job's child process: the worker's environment and the slot's device, then run_job."""
    _child_setup(slot, environ, worker_pid)
    from tina_sweep.run.job import run_job

    folder = Path(trial_dir)
    try:
        run_job(Trial.from_json(trial), folder, prices, slot.threads, _ProgressFile(folder / "progress.json", worker_pid),
                tracking, eval_checkpoints, defer_eval)
    except BaseException as error:
        _write_error([folder], error)
        raise SystemExit(1) from None
    finally:
        if lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(lock_fd)


def _evaluate_process(entries: list[tuple[str, dict, str]], prices: dict, slot: Slot, tracking: Any,
                      eval_checkpoints: int, environ: dict[str, str], worker_pid: int) -> None:
    """The shared evaluation's child process: ``evaluate_together`` on the jobs a worker holds."""
    _child_setup(slot, environ, worker_pid)
    from tina_sweep.run.job import evaluate_together

    jobs = [(Trial.from_json(trial), Path(folder)) for trial, folder in entries]
    try:
        evaluate_together(jobs, prices, tracking, eval_checkpoints)
    except BaseException as error:
        _write_error([folder for _, folder in jobs], error)
        raise SystemExit(1) from None


# ---------------------------------------------------------------------- signals
def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _raise_on_sigterm():
    """SIGTERM (a scheduler's preemption, say) stops a worker like Ctrl-C: its jobs are recorded as interrupted
    (not counted as failures) and re-enqueued for other workers. A handler someone else installed (submitit's,
    under ``launch slurm``) is left in place."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def _restore_sigterm(previous) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)
