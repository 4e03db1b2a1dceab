"""The ledger: one Optuna study per tina-sweep study, holding one Optuna trial per attempt at a job.

Every job (the baseline evaluation and each trial spec) is enqueued as a WAITING Optuna trial carrying its
``trial_id`` in user attributes; a worker claims it (WAITING -> RUNNING, which the storage lets only one
process win), runs it, and records it with ``tell()``. Failed attempts are re-enqueued up to ``max_retries``
times. Any number of workers, on this machine or others, may share one ledger:

- **Enqueueing and claiming are serialized by a ledger-wide lock** (``Ledger.lock``): an ``flock`` on a file
  beside a journal or SQLite file, a transaction-scoped advisory lock (``pg_advisory_xact_lock``) on
  PostgreSQL, ``GET_LOCK`` on MySQL. Several workers syncing the same study at the same moment therefore see
  each other's enqueues, and every job is enqueued once. A claim also skips (and retires) a waiting attempt
  whose job already has a running or finished attempt, so even a duplicate enqueue cannot run a job twice.
- **A dead worker is detected without guessing from timeouts on one machine**: a worker holds an exclusive
  ``flock`` on a per-attempt lock file (``<journal>.attempts/<study>-<number>.lock``) from the moment it claims
  an attempt (inside the ledger lock) until it records it; its trial's child process inherits the lock. The
  kernel releases the lock when they die, so a RUNNING attempt whose lock can be taken belongs to a dead
  worker (a reused PID cannot fool this), and a RUNNING attempt without a worker seen under the ledger lock
  was claimed by a worker that died inside its claim. Such attempts are failed and re-enqueued (bounded).
- **Across machines (PostgreSQL, MySQL)** a worker records an Optuna heartbeat for each attempt it runs (a
  background thread, every ``TINA_SWEEP_HEARTBEAT_INTERVAL`` seconds, default 20); an attempt without one for
  ``TINA_SWEEP_GRACE_PERIOD`` seconds (default 120) is failed by the next sync (``fail_stale_trials``) and
  re-enqueued by ``RetryHeartbeatStaleTrialCallback`` (Optuna's retry callback, bounded by ``max_retries``).

The default storage is a journal file under ``sweeps/<study>/``; any Optuna storage URL works too
(``postgresql://user:password@host/db``).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import hashlib
import os
import socket
import threading
import warnings
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)

HEARTBEAT_INTERVAL = 20  # seconds between heartbeats of a running attempt (RDB storages)
GRACE_PERIOD = 120  # seconds without a heartbeat before an attempt is declared dead (RDB storages)
# Connections per worker process: the main thread, the heartbeat thread and the ledger lock's transaction.
# Small on purpose: many workers x (pool_size + max_overflow) must fit the server's max_connections
# (100 by default on PostgreSQL: about 25 workers at peak, 50 at rest; use pgbouncer beyond that).
ENGINE_KWARGS = {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 2, "pool_timeout": 120,
                 "pool_recycle": 1800}
# user attrs that belong to one attempt, not to the job (dropped when an attempt is re-enqueued)
ATTEMPT_ATTRS = ("worker", "lock", "heartbeat", "error", "interrupted", "progress", "result", "duplicate", "dead_worker",
                 "retry_of", "reused_result", "late")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _env_seconds(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    seconds = int(value)
    if seconds <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return seconds


def heartbeat_settings() -> tuple[int, int]:
    """(interval, grace period) in seconds, from TINA_SWEEP_HEARTBEAT_INTERVAL / TINA_SWEEP_GRACE_PERIOD."""
    interval = _env_seconds("TINA_SWEEP_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL)
    grace = _env_seconds("TINA_SWEEP_GRACE_PERIOD", max(GRACE_PERIOD, 3 * interval))
    if grace <= interval:
        raise ValueError(f"TINA_SWEEP_GRACE_PERIOD ({grace}s) must exceed the heartbeat interval ({interval}s)")
    return interval, grace


def journal_path(storage: str | None, sweep_dir: Path) -> Path | None:
    """The journal file a storage argument names (None: the default in ``sweep_dir``), or None for a URL."""
    if storage is None:
        return sweep_dir / "ledger.journal"
    if storage.endswith(".journal") and "://" not in storage:
        return Path(storage)
    return None


def with_driver(url: str) -> str:
    """``postgresql://`` means psycopg 3 to SQLAlchemy 2.1; use psycopg2 (the ``postgres`` extra) when only it is
    installed."""
    import importlib.util

    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql+psycopg2://{rest}"
    return url


def _retry_callback_class():
    from optuna import storages

    return getattr(storages, "RetryHeartbeatStaleTrialCallback", None) or storages.RetryFailedTrialCallback


class _RetryStale(_retry_callback_class()):
    """Optuna's retry callback for heartbeat-stale attempts, bounded like every other retry of the ledger
    (``max_retries`` counted over all failed attempts of the job), re-enqueueing the job's attributes without
    the dead attempt's own (worker, progress). The stale attempt is already FAIL here, so it cannot be
    annotated: ``attempt_error`` derives its reason. Never raises: a later sync re-enqueues what it missed."""

    def __init__(self, max_retry: int, grace_period: int):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            super().__init__(max_retry=max_retry)
        self.max_retries, self.grace_period = max_retry, grace_period

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        try:
            job = trial.user_attrs.get("trial_id")
            tries = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("trial_id") == job]
            if job is None or _failures(tries) > self.max_retries or \
                    any(t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE) for t in tries):
                return
            trial.user_attrs = {**_job_attrs(trial.user_attrs), "attempt": len(tries) + 1,
                                "retry_of": trial.number}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                super().__call__(study, trial)
        except Exception:  # noqa: BLE001 - the next sync enqueues the retry instead
            return


def open_storage(storage: str | None, sweep_dir: Path, max_retries: int = 2) -> optuna.storages.BaseStorage:
    """The journal file in ``sweep_dir`` by default; an RDB URL (with heartbeats and a small connection pool)
    or a ``.journal`` path when given."""
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = journal_path(storage, sweep_dir)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
    storage = with_driver(storage)
    interval, grace = heartbeat_settings()
    kwargs: dict[str, Any] = {"heartbeat_interval": interval, "grace_period": grace}
    callback = _RetryStale(max_retries, grace)
    import inspect

    if "heartbeat_stale_trial_callback" in inspect.signature(RDBStorage.__init__).parameters:
        kwargs["heartbeat_stale_trial_callback"] = callback
    else:  # Optuna < 4.9
        kwargs["failed_trial_callback"] = callback
    engine_kwargs = dict(ENGINE_KWARGS) if not storage.startswith("sqlite") else {"pool_pre_ping": True}
    if storage.startswith(("postgres", "mysql", "mariadb")):  # an unreachable server fails in 10 s, not minutes
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    with warnings.catch_warnings(), _schema_lock(storage):
        warnings.simplefilter("ignore")  # heartbeat_interval is marked experimental
        return RDBStorage(storage, engine_kwargs=engine_kwargs, **kwargs)


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """On PostgreSQL, one process at a time creates Optuna's tables: workers starting together on an empty
    database would otherwise race in CREATE TABLE. A session lock on a connection of its own, closed after."""
    if not url.startswith("postgresql"):
        yield
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 10})
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": _lock_key("schema")})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": _lock_key("schema")})
    finally:
        engine.dispose()


def _lock_key(name: str) -> int:
    """A 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(f"tina-sweep:{name}".encode()).digest()[:8], "big", signed=True)


@dataclass
class LedgerCounts:
    finished: int
    waiting: int
    running: int
    failed_for_good: int


def _failures(tries: list[FrozenTrial]) -> int:
    """Failed attempts that count against the retry bound (not user interrupts, not retired duplicates)."""
    return sum(t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")
               and not t.user_attrs.get("duplicate") for t in tries)


def _job_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if k not in ATTEMPT_ATTRS and k != "attempt"}


class Ledger:
    """Claims, records and recovers the jobs of one study."""

    def __init__(self, study_name: str, storage: str | None, sweep_dir: Path, max_retries: int = 2,
                 create: bool = True):
        self.max_retries = max_retries
        self.study_name = study_name
        self.journal = journal_path(storage, sweep_dir)
        self.storage = open_storage(storage, sweep_dir, max_retries)
        if create:
            self.study = optuna.create_study(study_name=study_name, storage=self.storage, direction="maximize",
                                             load_if_exists=True, sampler=optuna.samplers.RandomSampler(seed=0))
        else:  # raises KeyError when the study is not in the storage
            self.study = optuna.load_study(study_name=study_name, storage=self.storage,
                                           sampler=optuna.samplers.RandomSampler(seed=0))
        self._lock_depth = 0
        self._thread_lock = threading.RLock()
        self._held: dict[int, int] = {}  # optuna trial id -> fd of its attempt lock (file-lock liveness)
        self._beating: set[int] = set()  # optuna trial ids this process heartbeats (RDB liveness)
        self._heart: threading.Thread | None = None
        self._heart_stop = threading.Event()

    # ------------------------------------------------------------------ storage kinds
    @property
    def _rdb(self):
        from optuna.storages import RDBStorage

        return self.storage if isinstance(self.storage, RDBStorage) else None

    @property
    def _dialect(self) -> str:
        rdb = self._rdb
        return rdb.engine.dialect.name if rdb is not None else "journal"

    @property
    def uses_heartbeats(self) -> bool:
        return self._dialect not in ("journal", "sqlite")

    def _local_file(self) -> Path | None:
        """The ledger's file on this machine (journal or SQLite database), if it is one."""
        if self.journal is not None:
            return self.journal
        if self._dialect == "sqlite":
            database = self._rdb.engine.url.database
            return Path(database) if database and database != ":memory:" else None
        return None

    def attempt_lock_path(self, number: int) -> Path:
        file = self._local_file()
        assert file is not None
        return Path(os.path.abspath(file.with_name(file.name + ".attempts") / f"{self.study_name}-{number}.lock"))

    # ------------------------------------------------------------------ the ledger lock
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive, ledger-wide (all processes, all machines sharing the storage), re-entrant in a process."""
        with self._thread_lock:
            if self._lock_depth:
                self._lock_depth += 1
                try:
                    yield
                finally:
                    self._lock_depth -= 1
                return
            with self._acquire():
                self._lock_depth = 1
                try:
                    yield
                finally:
                    self._lock_depth = 0

    @contextlib.contextmanager
    def _acquire(self) -> Iterator[None]:
        local = self._local_file()
        if local is not None:
            path = local.with_name(local.name + ".claims")
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock
            return
        from sqlalchemy import text

        key = _lock_key(f"study:{self.study_name}")
        engine = self._rdb.engine
        if self._dialect == "postgresql":
            with engine.begin() as connection:  # released when the transaction ends (or the connection dies)
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
                yield
        elif self._dialect in ("mysql", "mariadb"):
            with engine.connect() as connection:
                name = f"tina-sweep:{key}"
                connection.execute(text("SELECT GET_LOCK(:name, -1)"), {"name": name})
                try:
                    yield
                finally:
                    connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        else:  # no server-side lock known: claims stay safe (storage-level), duplicate enqueues are retired
            yield

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
            states[job_state(jobs.get(job, []), self.max_retries)] += 1
        return LedgerCounts(states["finished"], states["waiting"], states["running"], states["failed"])

    def open_jobs(self, job_ids: Collection[str]) -> bool:
        """Whether any of ``job_ids`` is still waiting or running (anywhere)."""
        jobs = self.by_job()
        return any(job_state(jobs.get(job, []), self.max_retries) in ("waiting", "running") for job in job_ids)

    # ------------------------------------------------------------------ changes
    def sync(self, jobs: dict[str, dict[str, Any]]) -> None:
        """Enqueue jobs never seen, recover attempts of dead workers, retry failures (bounded); under the
        ledger lock, so concurrent syncs enqueue each job once."""
        with self.lock():
            self.recover_dead_workers()
            existing = self.by_job()
            for job_id, attrs in jobs.items():
                tries = existing.get(job_id, [])
                if {t.state for t in tries} & {TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING}:
                    continue
                if _failures(tries) > self.max_retries:
                    continue
                self.study.enqueue_trial({}, user_attrs={**attrs, "trial_id": job_id, "attempt": len(tries) + 1})

    def recover_dead_workers(self) -> int:
        """Fail RUNNING attempts whose worker is gone: on a journal or SQLite file, those whose attempt lock is
        free (or that have no worker, which only a worker dying inside its claim leaves); on a database server,
        those without a heartbeat for the grace period (their jobs are re-enqueued by the retry callback)."""
        recovered = 0
        with self.lock():
            if self.uses_heartbeats:
                before = {t._trial_id for t in self.attempts() if t.state == TrialState.RUNNING}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    optuna.storages.fail_stale_trials(self.study)
                recovered += len(before - {t._trial_id for t in self.attempts() if t.state == TrialState.RUNNING})
            for attempt in self.attempts():
                if attempt.state != TrialState.RUNNING or attempt._trial_id in self._held \
                        or attempt._trial_id in self._beating:
                    continue
                reason = self._dead_reason(attempt)
                if reason is None:
                    continue
                try:
                    self.storage.set_trial_user_attr(attempt._trial_id, "error", reason)
                    self.storage.set_trial_user_attr(attempt._trial_id, "dead_worker",
                                                     attempt.user_attrs.get("worker", "?"))
                    if self.storage.set_trial_state_values(attempt._trial_id, TrialState.FAIL):
                        recovered += 1
                except UpdateFinishedTrialError:  # it finished after all, just now
                    pass
                self._remove_lock_file(attempt)
        return recovered

    def _dead_reason(self, attempt: FrozenTrial) -> str | None:
        worker = attempt.user_attrs.get("worker")
        if worker is None:  # claims set the worker under the ledger lock, which we hold: its claimer died
            return "worker died while claiming the trial"
        host, _, pid = worker.rpartition(":")
        lock = attempt.user_attrs.get("lock")
        if lock:
            if host != socket.gethostname():
                return None  # a lock on another machine cannot be tested from here
            if _lock_is_free(Path(lock)):
                return f"worker {worker} died (its attempt lock was released)"
            return None
        if attempt.user_attrs.get("heartbeat"):
            return None  # heartbeats tell (fail_stale_trials)
        if host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)):
            return f"worker {worker} died (no such process)"  # an attempt recorded by an older version
        return None

    def claim(self, job_ids: Collection[str] | None = None) -> optuna.Trial | None:
        """The next waiting job (among ``job_ids`` when given), now RUNNING and owned by this process, with
        its liveness (attempt lock or heartbeat) set up; None when nothing waits."""
        with self.lock():
            jobs = self.by_job()
            for attempt in self.attempts():
                if attempt.state != TrialState.WAITING:
                    continue
                job = attempt.user_attrs.get("trial_id")
                if job is None or (job_ids is not None and job not in job_ids):
                    continue
                if any(t.state in (TrialState.RUNNING, TrialState.COMPLETE) for t in jobs.get(job, [])):
                    self._retire_duplicate(attempt)
                    continue
                try:
                    if not self.storage.set_trial_state_values(attempt._trial_id, TrialState.RUNNING):
                        continue
                except UpdateFinishedTrialError:
                    continue
                self._start_liveness(attempt)
                self.storage.set_trial_user_attr(attempt._trial_id, "worker", worker_name())
                return optuna.Trial(self.study, attempt._trial_id)
        return None

    def _retire_duplicate(self, attempt: FrozenTrial) -> None:
        try:
            self.storage.set_trial_user_attr(attempt._trial_id, "duplicate", True)
            self.storage.set_trial_user_attr(attempt._trial_id, "error", "duplicate of a running or finished attempt")
            self.storage.set_trial_state_values(attempt._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            pass

    def lock_fd(self, trial: optuna.Trial) -> int | None:
        """The fd of the attempt lock this process holds for ``trial`` (to pass to its child process)."""
        return self._held.get(trial._trial_id)

    def complete(self, trial: optuna.Trial, value: float, attrs: dict[str, Any]) -> None:
        try:
            for key, item in attrs.items():
                trial.set_user_attr(key, item)
            self.study.tell(trial, value)
        except (UpdateFinishedTrialError, ValueError, RuntimeError) as error:
            self._record_late(trial, value, attrs, error)
        finally:
            self._stop_liveness(trial)

    def _record_late(self, trial: optuna.Trial, value: float, attrs: dict[str, Any], error: Exception) -> None:
        """This attempt was declared dead while it was still running (no heartbeat for the grace period: a
        network partition, say). Keep its result as a finished attempt unless the job has one already."""
        frozen = self.storage.get_trial(trial._trial_id)
        if frozen.state != TrialState.FAIL:
            raise error
        with self.lock():
            job = frozen.user_attrs.get("trial_id")
            tries = self.by_job().get(job, [])
            if any(t.state == TrialState.COMPLETE for t in tries):
                return
            for waiting in (t for t in tries if t.state == TrialState.WAITING):
                self._retire_duplicate(waiting)
            user_attrs = {**_job_attrs(frozen.user_attrs), **attrs, "attempt": frozen.user_attrs.get("attempt"),
                          "worker": frozen.user_attrs.get("worker"), "late": True}
            self.study.add_trial(optuna.create_trial(state=TrialState.COMPLETE, value=value, user_attrs=user_attrs))

    def fail(self, trial: optuna.Trial, error: str, interrupted: bool = False) -> None:
        try:
            trial.set_user_attr("error", error[-2000:])
            if interrupted:
                trial.set_user_attr("interrupted", True)
            self.study.tell(trial, state=TrialState.FAIL)
        except (UpdateFinishedTrialError, ValueError, RuntimeError):
            pass  # already failed by another worker's recovery
        finally:
            self._stop_liveness(trial)

    def set_progress(self, trial: optuna.Trial, progress: dict[str, Any]) -> None:
        """What the attempt is doing now (phase, step, total), for ``tina-sweep status``."""
        with contextlib.suppress(UpdateFinishedTrialError, ValueError, RuntimeError):
            self.storage.set_trial_user_attr(trial._trial_id, "progress", progress)

    def close(self) -> None:
        """Stop heartbeats and release attempt locks (their attempts stay RUNNING until recovered)."""
        self._heart_stop.set()
        if self._heart is not None:
            self._heart.join(timeout=5)
        for fd in self._held.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._held.clear()

    # ------------------------------------------------------------------ liveness
    def _start_liveness(self, attempt: FrozenTrial) -> None:
        if self.uses_heartbeats:
            self.storage.record_heartbeat(attempt._trial_id)  # before the worker attr: see _dead_reason
            self.storage.set_trial_user_attr(attempt._trial_id, "heartbeat", True)
            self._beating.add(attempt._trial_id)
            if self._heart is None:
                self._heart = threading.Thread(target=self._beat, name="tina-sweep-heartbeat", daemon=True)
                self._heart.start()
            return
        if self._local_file() is None:
            return
        path = self.attempt_lock_path(attempt.number)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh attempt number: nobody else holds it
        os.write(fd, f"{worker_name()}\n".encode())
        self._held[attempt._trial_id] = fd
        self.storage.set_trial_user_attr(attempt._trial_id, "lock", str(path))

    def _stop_liveness(self, trial: optuna.Trial) -> None:
        self._beating.discard(trial._trial_id)
        fd = self._held.pop(trial._trial_id, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.attempt_lock_path(trial.number))
            os.close(fd)

    def _remove_lock_file(self, attempt: FrozenTrial) -> None:
        lock = attempt.user_attrs.get("lock")
        if lock:
            with contextlib.suppress(OSError):
                os.unlink(lock)

    def _beat(self) -> None:
        interval = self.storage.get_heartbeat_interval() or HEARTBEAT_INTERVAL
        while not self._heart_stop.is_set():
            for trial_id in list(self._beating):
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # a database hiccup: try again next beat (the grace period allows a few)
                    pass
            self._heart_stop.wait(interval)


def job_state(tries: list[FrozenTrial], max_retries: int) -> str:
    """finished, running, waiting, failed (for good: retries exhausted) or unqueued (never enqueued)."""
    states = {t.state for t in tries}
    if TrialState.COMPLETE in states:
        return "finished"
    if TrialState.RUNNING in states:
        return "running"
    if TrialState.WAITING in states:
        return "waiting"
    if not tries:
        return "unqueued"
    return "failed" if _failures(tries) > max_retries else "waiting"


def attempt_error(attempt: FrozenTrial) -> str:
    """Why an attempt failed: its recorded error, or (a heartbeat-stale attempt, failed by Optuna before
    anything could be recorded on it) that its worker died."""
    error = attempt.user_attrs.get("error")
    if error:
        return error
    if attempt.state == TrialState.FAIL and attempt.user_attrs.get("heartbeat"):
        return f"worker {attempt.user_attrs.get('worker', '?')} died (no heartbeat for the grace period)"
    return ""


def attempt_age(attempt: FrozenTrial) -> datetime.timedelta | None:
    """How long ago the attempt started (journal times are UTC-aware, RDB times local and naive)."""
    start = attempt.datetime_start
    if start is None:
        return None
    now = datetime.datetime.now(start.tzinfo) if start.tzinfo else datetime.datetime.now()
    return now - start


def _lock_is_free(path: Path) -> bool:
    """Whether nobody holds an exclusive flock on ``path`` (a missing file is free)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            return False
        raise
    finally:
        os.close(fd)
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
