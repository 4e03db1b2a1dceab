"""The ledger: one Optuna study per tina-sweep study, holding one Optuna trial per attempt at a job.

Every job (the baseline evaluation and each trial spec) is enqueued once as a WAITING Optuna trial carrying
its ``trial_id`` in user attributes; a worker claims it with ``ask()`` (Optuna pops waiting trials in order and
marks them RUNNING atomically), runs it, and records it with ``tell()``. Failed attempts are re-enqueued up to
``max_retries`` times; a RUNNING attempt whose worker process is gone (same host, dead PID) is marked failed
and re-enqueued. The default storage is a journal file under ``sweeps/<study>/`` (several local processes can
share it); any Optuna storage URL works too (``postgresql://...``).
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def open_storage(storage: str | None, sweep_dir: Path) -> optuna.storages.BaseStorage:
    """The journal file in ``sweep_dir`` by default; an RDB URL or a ``.journal`` path when given."""
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    if storage is None or storage.endswith(".journal"):
        path = Path(storage) if storage else sweep_dir / "ledger.journal"
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
    return RDBStorage(storage, engine_kwargs={"pool_pre_ping": True})


@dataclass
class LedgerCounts:
    finished: int
    waiting: int
    running: int
    failed_for_good: int


class Ledger:
    """Claims, records and recovers the jobs of one study."""

    def __init__(self, study_name: str, storage: str | None, sweep_dir: Path, max_retries: int = 2):
        self.max_retries = max_retries
        self.study = optuna.create_study(study_name=study_name, storage=open_storage(storage, sweep_dir),
                                         direction="maximize", load_if_exists=True,
                                         sampler=optuna.samplers.RandomSampler(seed=0))

    # ------------------------------------------------------------------ views
    def attempts(self) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    def by_job(self) -> dict[str, list[FrozenTrial]]:
        jobs: dict[str, list[FrozenTrial]] = {}
        for attempt in self.attempts():
            jobs.setdefault(attempt.user_attrs.get("trial_id", "?"), []).append(attempt)
        return jobs

    def finished_ids(self) -> set[str]:
        return {job for job, tries in self.by_job().items() if any(t.state == TrialState.COMPLETE for t in tries)}

    def counts(self, job_ids: list[str]) -> LedgerCounts:
        jobs = self.by_job()
        states = Counter()
        for job in job_ids:
            tries = jobs.get(job, [])
            if any(t.state == TrialState.COMPLETE for t in tries):
                states["finished"] += 1
            elif any(t.state == TrialState.RUNNING for t in tries):
                states["running"] += 1
            elif any(t.state == TrialState.WAITING for t in tries):
                states["waiting"] += 1
            else:
                states["failed"] += 1
        return LedgerCounts(states["finished"], states["waiting"], states["running"], states["failed"])

    # ------------------------------------------------------------------ changes
    def sync(self, jobs: dict[str, dict[str, Any]]) -> None:
        """Enqueue jobs never seen, recover attempts of dead local workers, retry failures (bounded)."""
        self.recover_dead_workers()
        existing = self.by_job()
        for job_id, attrs in jobs.items():
            tries = existing.get(job_id, [])
            states = {t.state for t in tries}
            if states & {TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING}:
                continue
            failures = sum(t.state == TrialState.FAIL and not t.user_attrs.get("interrupted") for t in tries)
            if failures > self.max_retries:
                continue
            self.study.enqueue_trial({}, user_attrs={**attrs, "trial_id": job_id, "attempt": len(tries) + 1})

    def recover_dead_workers(self) -> int:
        """Mark RUNNING attempts whose worker process on this host no longer exists as failed."""
        host = socket.gethostname()
        recovered = 0
        for attempt in self.attempts():
            worker = attempt.user_attrs.get("worker", "")
            if attempt.state != TrialState.RUNNING or not worker.startswith(host + ":"):
                continue
            if not _pid_alive(int(worker.rsplit(":", 1)[1])):
                self.study._storage.set_trial_user_attr(attempt._trial_id, "error", "worker process died")
                self.study._storage.set_trial_user_attr(attempt._trial_id, "interrupted", True)
                self.study.tell(attempt.number, state=TrialState.FAIL, skip_if_finished=True)
                recovered += 1
        return recovered

    def claim(self) -> optuna.Trial | None:
        """The next waiting job, now RUNNING and owned by this process; None when nothing waits."""
        if not any(t.state == TrialState.WAITING for t in self.attempts()):
            return None
        trial = self.study.ask()
        if "trial_id" not in trial.user_attrs:  # nothing was waiting after all (another worker took it)
            self.study.tell(trial, state=TrialState.FAIL)
            return None
        trial.set_user_attr("worker", worker_name())
        return trial

    def complete(self, trial: optuna.Trial, value: float, attrs: dict[str, Any]) -> None:
        for key, item in attrs.items():
            trial.set_user_attr(key, item)
        self.study.tell(trial, value)

    def fail(self, trial: optuna.Trial, error: str, interrupted: bool = False) -> None:
        trial.set_user_attr("error", error[-2000:])
        if interrupted:
            trial.set_user_attr("interrupted", True)
        self.study.tell(trial, state=TrialState.FAIL)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
