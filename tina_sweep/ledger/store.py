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
- **A journal on a shared filesystem, other machines**: a flock cannot be tested from another host, so a worker
  also touches its attempt lock files every heartbeat interval; another host declares the attempt dead when it
  has watched the file's modification time stand still for the grace period (measured on its own clock, so
  clock skew between hosts does not matter).
- **A worker's death is not the trial's failure**: attempts lost with their worker (killed, crashed, declared
  dead) do not count against ``max_retries``, which bounds the trial's own failures; they are bounded
  separately (``MAX_WORKER_LOSSES``) so a trial that keeps taking its worker down is given up eventually.
- **A declared-dead attempt never records a result**: its worker notices (its attempt is no longer RUNNING)
  and stops its child; ``complete`` refuses such an attempt, so a late result never becomes a second COMPLETE.
- **Every ledger lock has a timeout** (``TINA_SWEEP_LOCK_TIMEOUT``, default 300 s): a worker stopped inside
  it (Ctrl-Z) makes the others fail with a message naming the holder, not wait forever.
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
import json
import os
import socket
import threading
import time
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

HEARTBEAT_INTERVAL = 20  # seconds between heartbeats of a running attempt
GRACE_PERIOD = 120  # seconds without a heartbeat before an attempt is declared dead
LOCK_TIMEOUT = 300  # seconds a worker waits for the ledger lock before it gives up with a message
MAX_WORKER_LOSSES = 10  # a job whose worker died this many times is given up (worker deaths are not failures)
# Connections per worker process: the main thread, the heartbeat thread and the ledger lock's transaction.
# Small on purpose: many workers x (pool_size + max_overflow) must fit the server's max_connections
# (100 by default on PostgreSQL: about 25 workers at peak, 50 at rest; use pgbouncer beyond that).
ENGINE_KWARGS = {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 2, "pool_timeout": 120,
                 "pool_recycle": 1800}
# user attrs that belong to one attempt, not to the job (dropped when an attempt is re-enqueued)
ATTEMPT_ATTRS = ("worker", "lock", "heartbeat", "error", "interrupted", "progress", "result", "duplicate", "dead_worker",
                 "retry_of", "reused_result", "late", "lost")


class LedgerLockTimeout(RuntimeError):
    """The ledger lock was not free within ``TINA_SWEEP_LOCK_TIMEOUT`` seconds."""


def host_name() -> str:
    """This machine's name as the ledger records it (``TINA_SWEEP_HOST`` overrides it: containers on different
    machines may share a hostname)."""
    return os.environ.get("TINA_SWEEP_HOST") or socket.gethostname()


def worker_name() -> str:
    return f"{host_name()}:{os.getpid()}"


def _env_seconds(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        seconds = int(value)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise ValueError(f"{name}: must be a positive whole number of seconds, got {value!r}")
    return seconds


def lock_timeout() -> int:
    """Seconds to wait for the ledger lock (TINA_SWEEP_LOCK_TIMEOUT)."""
    return _env_seconds("TINA_SWEEP_LOCK_TIMEOUT", LOCK_TIMEOUT)


def heartbeat_settings() -> tuple[int, int]:
    """(interval, grace period) in seconds, from TINA_SWEEP_HEARTBEAT_INTERVAL / TINA_SWEEP_GRACE_PERIOD."""
    interval = _env_seconds("TINA_SWEEP_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL)
    grace = _env_seconds("TINA_SWEEP_GRACE_PERIOD", max(GRACE_PERIOD, 3 * interval))
    if grace <= interval:
        raise ValueError(f"TINA_SWEEP_GRACE_PERIOD: must exceed the heartbeat interval ({interval}s), got {grace}")
    return interval, grace


def check_environment() -> None:
    """Raise ValueError (one line naming the variable and its value) for a malformed TINA_SWEEP_* setting."""
    heartbeat_settings()
    lock_timeout()


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
            if job is None or exhausted(tries, self.max_retries) or \
                    any(t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
                        for t in tries):
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
    from optuna.storages.journal import JournalFileOpenLock

    path = journal_path(storage, sweep_dir)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(RepairingJournalBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))
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


def _journal_backend_class():
    from optuna.storages.journal import JournalFileBackend

    return JournalFileBackend


class RepairingJournalBackend(_journal_backend_class()):
    """Optuna's journal file, made safe against torn writes. A write that fails part-way (the disk full, a quota)
    is cut back off before the error propagates, and a torn last line left by a process killed in the middle of
    a write is cut off (with a warning) before the next append, under the journal's own lock. Without this, the
    next append joins the torn line and every later read fails with a JSONDecodeError, for good."""

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        import json

        from optuna.storages.journal._file import get_lock_file

        payload = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode("utf-8")
        with get_lock_file(self._lock):
            with open(self._file_path, "r+b", buffering=0) as file:  # unbuffered: we know what reached the file
                size = repair_torn_tail(file, self._file_path)
                file.seek(size)
                try:
                    written = 0
                    while written < len(payload):
                        written += file.write(payload[written:])
                    os.fsync(file.fileno())
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.ftruncate(file.fileno(), size)  # nothing half-written stays behind
                    raise


def repair_torn_tail(file, name: str) -> int:
    """Cut a last line that does not end with a newline (a torn write) off an open journal; return the size."""
    file.seek(0, os.SEEK_END)
    size = file.tell()
    if size == 0:
        return 0
    file.seek(size - 1)
    if file.read(1) == b"\n":
        return size
    keep = size
    while keep > 0:  # back to the last newline
        step = min(keep, 65536)
        file.seek(keep - step)
        chunk = file.read(step)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            keep = keep - step + cut + 1
            break
        keep -= step
    os.ftruncate(file.fileno(), keep)
    os.fsync(file.fileno())
    warnings.warn(f"{name}: cut off a torn last record ({size - keep} bytes: a write interrupted by a full disk or "
                  "a kill); the attempt that wrote it was not recorded", stacklevel=2)
    return keep


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


def lost_with_worker(attempt: FrozenTrial) -> bool:
    """Whether a failed attempt died with its worker (killed, crashed, declared dead) rather than by itself."""
    attrs = attempt.user_attrs
    return attempt.state == TrialState.FAIL and bool(
        attrs.get("lost") or attrs.get("dead_worker") or (attrs.get("heartbeat") and not attrs.get("error")))


def _failures(tries: list[FrozenTrial]) -> int:
    """Failed attempts that count against the retry bound: the trial's own failures (not user interrupts, not
    retired duplicates, not attempts lost with their worker)."""
    return sum(t.state == TrialState.FAIL and not t.user_attrs.get("interrupted")
               and not t.user_attrs.get("duplicate") and not lost_with_worker(t) for t in tries)


def _losses(tries: list[FrozenTrial]) -> int:
    return sum(lost_with_worker(t) for t in tries)


def exhausted(tries: list[FrozenTrial], max_retries: int) -> bool:
    """Whether a job is given up: its own failures exceed ``max_retries``, or it lost its worker too often."""
    return _failures(tries) > max_retries or _losses(tries) >= MAX_WORKER_LOSSES


def _job_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if k not in ATTEMPT_ATTRS and k != "attempt"}


class Ledger:
    """Claims, records and recovers the jobs of one study."""

    def __init__(self, study_name: str, storage: str | None, sweep_dir: Path, max_retries: int | None = 2,
                 create: bool = True, pruner: optuna.pruners.BasePruner | None = None):
        """``max_retries`` None: the bound the study's workers recorded in the ledger (``status`` reads it);
        ``pruner``: what ``should_prune`` asks (Optuna's pruners read the shared storage, so every worker's
        decisions see every other's trials)."""
        check_environment()
        self.study_name = study_name
        self.journal = journal_path(storage, sweep_dir)
        self.storage = open_storage(storage, sweep_dir, 2 if max_retries is None else max_retries)
        if create:
            self.study = optuna.create_study(study_name=study_name, storage=self.storage, direction="maximize",
                                             load_if_exists=True, sampler=optuna.samplers.RandomSampler(seed=0),
                                             pruner=pruner)
        else:  # raises KeyError when the study is not in the storage
            self.study = optuna.load_study(study_name=study_name, storage=self.storage,
                                           sampler=optuna.samplers.RandomSampler(seed=0), pruner=pruner)
        self._choices: dict[str, list[Any]] = {}  # each param's categorical choices, over the synced jobs
        if max_retries is None:
            max_retries = int(self.study.user_attrs.get("max_retries", 2))
            for name in ("heartbeat_stale_trial_callback", "failed_trial_callback"):
                callback = getattr(self.storage, name, None)
                if isinstance(callback, _RetryStale):
                    callback.max_retries = max_retries
        self.max_retries = max_retries
        self.interval, self.grace = heartbeat_settings()
        self._lock_depth = 0
        self._thread_lock = threading.RLock()
        self._held: dict[int, int] = {}  # optuna trial id -> fd of its attempt lock (file-lock liveness)
        self._beating: set[int] = set()  # optuna trial ids this process heartbeats (RDB liveness)
        self._heart: threading.Thread | None = None
        self._heart_stop = threading.Event()
        self._touching: dict[int, Path] = {}  # optuna trial id -> attempt lock file touched as a heartbeat
        self._watched: dict[str, tuple[float, float]] = {}  # other hosts' lock files: (mtime, first seen)
        self._declared_dead: set[int] = set()  # attempts of this process that others failed

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
        timeout = lock_timeout()
        local = self._local_file()
        if local is not None:
            path = local.with_name(local.name + ".claims")
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                _flock_within(fd, path, timeout)
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{worker_name()}\n".encode(), 0)  # who holds it, for the timeout message
                yield
            finally:
                os.close(fd)  # releases the flock
            return
        from sqlalchemy import text
        from sqlalchemy.exc import OperationalError

        key = _lock_key(f"study:{self.study_name}")
        engine = self._rdb.engine
        late = LedgerLockTimeout(f"the ledger lock of study {self.study_name!r} is still held after {timeout} s by "
                                 "another worker (one stopped with Ctrl-Z or SIGSTOP? resume it with `fg` / "
                                 "`kill -CONT`, or stop it; TINA_SWEEP_LOCK_TIMEOUT sets the wait)")
        if self._dialect == "postgresql":
            with engine.begin() as connection:  # released when the transaction ends (or the connection dies)
                connection.execute(text(f"SET LOCAL lock_timeout = '{int(timeout)}s'"))
                try:
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
                except OperationalError as error:
                    if "lock timeout" in str(error):
                        raise late from None
                    raise
                connection.execute(text("SET LOCAL lock_timeout = 0"))
                yield
        elif self._dialect in ("mysql", "mariadb"):
            with engine.connect() as connection:
                name = f"tina-sweep:{key}"
                got = connection.execute(text("SELECT GET_LOCK(:name, :timeout)"),
                                         {"name": name, "timeout": timeout}).scalar()
                if got != 1:
                    raise late
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
        self._choices = param_choices(jobs.values())
        with self.lock():
            if self.study.user_attrs.get("max_retries") != self.max_retries:
                self.study.set_user_attr("max_retries", self.max_retries)  # the bound `status` applies
            self.recover_dead_workers()
            existing = self.by_job()
            for job_id, attrs in jobs.items():
                tries = existing.get(job_id, [])
                if {t.state for t in tries} & {TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING,
                                               TrialState.RUNNING}:
                    continue  # a pruned job was stopped on purpose: never retried
                if exhausted(tries, self.max_retries):
                    continue
                self.study.enqueue_trial(job_params(attrs), user_attrs={**attrs, "trial_id": job_id,
                                                                        "attempt": len(tries) + 1})

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
            if host != host_name():  # a flock on another machine cannot be tested from here: its heartbeat can
                return self._stale_elsewhere(worker, Path(lock))
            if _lock_is_free(Path(lock)):
                return f"worker {worker} died (its attempt lock was released)"
            return None
        if attempt.user_attrs.get("heartbeat"):
            return None  # heartbeats tell (fail_stale_trials)
        if host == host_name() and pid.isdigit() and not _pid_alive(int(pid)):
            return f"worker {worker} died (no such process)"  # an attempt recorded by an older version
        return None

    def _stale_elsewhere(self, worker: str, lock: Path) -> str | None:
        """A worker on another machine touches its attempt lock every heartbeat interval; the attempt is dead
        once this process has seen the file's modification time stand still for the grace period (its own
        clock: no skew between hosts)."""
        try:
            mtime = lock.stat().st_mtime
        except FileNotFoundError:
            mtime = -1.0
        now = time.monotonic()
        seen, since = self._watched.get(str(lock), (None, now))
        if seen != mtime:
            self._watched[str(lock)] = (mtime, now)
            return None
        if now - since < self.grace:
            return None
        self._watched.pop(str(lock), None)
        return f"worker {worker} died (its attempt lock on another machine went {self.grace} s without a heartbeat)"

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
                if any(t.state in (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
                       for t in jobs.get(job, [])):
                    self._retire_duplicate(attempt)
                    continue
                try:
                    if not self.storage.set_trial_state_values(attempt._trial_id, TrialState.RUNNING):
                        continue
                except UpdateFinishedTrialError:
                    continue
                self._start_liveness(attempt)
                self.storage.set_trial_user_attr(attempt._trial_id, "worker", worker_name())
                trial = optuna.Trial(self.study, attempt._trial_id)
                self._record_params(trial, attempt)
                return trial
        return None

    def _record_params(self, trial: optuna.Trial, attempt: FrozenTrial) -> None:
        """The job's axis values (and seed) as Optuna params, so Optuna's tools (optuna-dashboard, importances)
        see what each trial varied: numbers with an int or float distribution over the study's range (log scale
        for positive floats: learning rates), anything else categorical over the study's values. A categorical
        whose values grew since the study began (Optuna cannot widen one) stays a user attribute only."""
        from optuna.distributions import FloatDistribution, IntDistribution

        fixed = attempt.system_attrs.get("fixed_params") or {}
        for name, value in fixed.items():
            choices = self._choices.get(name) or [value]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    distribution = param_distribution(choices)
                    if isinstance(distribution, IntDistribution):
                        trial.suggest_int(name, distribution.low, distribution.high)
                    elif isinstance(distribution, FloatDistribution):
                        trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log)
                    else:
                        trial.suggest_categorical(name, distribution.choices)
            except (ValueError, TypeError) as error:
                warnings.warn(f"Optuna param {name}: not recorded ({error})", stacklevel=2)

    def report(self, trial: optuna.Trial, value: float, step: int) -> None:
        """An intermediate value of a running attempt (its dev score at an optimizer step)."""
        with contextlib.suppress(UpdateFinishedTrialError, ValueError, RuntimeError, NotImplementedError):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial.report(value, step)

    def should_prune(self, trial: optuna.Trial) -> bool:
        """What the study's pruner says of a running attempt, from every trial in the shared storage."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return trial.should_prune()

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

    def still_running(self, trial: optuna.Trial) -> bool:
        """Whether this process's attempt is still RUNNING in the ledger (not declared dead by another worker)."""
        if trial._trial_id in self._declared_dead:
            return False
        return self.storage.get_trial(trial._trial_id).state == TrialState.RUNNING

    def declared_dead(self) -> set[int]:
        """Optuna trial ids of this process's attempts that another worker has failed (seen by the heartbeat)."""
        return set(self._declared_dead)

    def complete(self, trial: optuna.Trial, value: float, attrs: dict[str, Any], pruned: bool = False) -> bool:
        """Record a finished attempt (``pruned``: stopped by the pruner, recorded PRUNED, never retried; Optuna
        takes its value from its last intermediate value); False (nothing recorded) when it had been declared
        dead meanwhile: its job was handed to another attempt, which records it once (a late result never
        becomes a second COMPLETE)."""
        try:
            with self.lock():
                if not self.still_running(trial):
                    return False
                for key, item in attrs.items():
                    trial.set_user_attr(key, item)
                if pruned:
                    self.study.tell(trial, state=TrialState.PRUNED)
                else:
                    self.study.tell(trial, value)
                return True
        except (UpdateFinishedTrialError, ValueError, RuntimeError):
            return False  # failed by another worker's recovery between the check and the record
        finally:
            self._stop_liveness(trial)

    def fail(self, trial: optuna.Trial, error: str, interrupted: bool = False, lost: bool = False) -> None:
        """Record a failed attempt: the trial's own failure (counts against ``max_retries``), ``interrupted``
        (stopped by the user or the scheduler: does not count) or ``lost`` (its worker failed: does not count
        against ``max_retries``, bounded by ``MAX_WORKER_LOSSES``)."""
        try:
            trial.set_user_attr("error", error[-2000:])
            if interrupted:
                trial.set_user_attr("interrupted", True)
            if lost:
                trial.set_user_attr("lost", True)
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
        self._touching.clear()
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
            self._start_heart()
            return
        if self._local_file() is None:
            return
        path = self.attempt_lock_path(attempt.number)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh attempt number: nobody else holds it
        os.write(fd, f"{worker_name()}\n".encode())
        self._held[attempt._trial_id] = fd
        self._touching[attempt._trial_id] = path  # touched every interval: liveness seen from other machines
        self.storage.set_trial_user_attr(attempt._trial_id, "lock", str(path))
        self._start_heart()

    def _start_heart(self) -> None:
        if self._heart is None:
            self._heart = threading.Thread(target=self._beat, name="tina-sweep-heartbeat", daemon=True)
            self._heart.start()

    def _stop_liveness(self, trial: optuna.Trial) -> None:
        self._beating.discard(trial._trial_id)
        self._touching.pop(trial._trial_id, None)
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
        """Every interval: a heartbeat for each attempt this process runs (a database row, or the attempt lock
        file's modification time), and a look at whether another worker has declared it dead meanwhile (this
        process was paused past the grace period, say): the worker then stops its child."""
        while not self._heart_stop.is_set():
            for trial_id in list(self._beating):
                with contextlib.suppress(Exception):  # a database hiccup: try again next beat
                    self.storage.record_heartbeat(trial_id)
            for trial_id, path in list(self._touching.items()):
                with contextlib.suppress(OSError):
                    os.utime(path)
            for trial_id in list(self._beating) + list(self._touching):
                with contextlib.suppress(Exception):
                    if self.storage.get_trial(trial_id).state != TrialState.RUNNING:
                        self._declared_dead.add(trial_id)
            self._heart_stop.wait(self.interval)


def param_value(value: Any) -> Any:
    """An axis value as an Optuna categorical choice (None, bool, int, float or str; anything else as text)."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value, sort_keys=True)


def job_params(attrs: dict[str, Any]) -> dict[str, Any]:
    """A job's Optuna params: its axis values and its seed (a trained trial); none for the base model."""
    if attrs.get("kind") != "trial":
        return {}
    params = {name: param_value(value) for name, value in (attrs.get("axes") or {}).items()}
    params["seed"] = (attrs.get("spec") or {}).get("seed", params.get("seed"))
    return {name: value for name, value in params.items() if value is not None}


def param_choices(jobs: Collection[dict[str, Any]]) -> dict[str, list[Any]]:
    """Each param's values over the jobs, in first-seen order (the categorical distribution's choices)."""
    choices: dict[str, list[Any]] = {}
    for attrs in jobs:
        for name, value in job_params(attrs).items():
            if value not in choices.setdefault(name, []):
                choices[name].append(value)
    return choices


def param_distribution(choices: list[Any]) -> optuna.distributions.BaseDistribution:
    """An Optuna distribution over an axis's values: int or float over their range (a float axis of positive
    values on a log scale) -- ranges can grow with the study, a categorical's choices cannot -- else
    categorical."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    numbers = [c for c in choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
    if numbers and len(numbers) == len(choices):
        if all(isinstance(c, int) for c in numbers):
            return IntDistribution(min(numbers), max(numbers))
        return FloatDistribution(min(numbers), max(numbers), log=min(numbers) > 0)
    return CategoricalDistribution(choices)


def job_state(tries: list[FrozenTrial], max_retries: int) -> str:
    """finished, running, waiting, failed (for good: retries exhausted) or unqueued (never enqueued)."""
    states = {t.state for t in tries}
    if states & {TrialState.COMPLETE, TrialState.PRUNED}:
        return "finished"
    if TrialState.RUNNING in states:
        return "running"
    if TrialState.WAITING in states:
        return "waiting"
    if not tries:
        return "unqueued"
    return "failed" if exhausted(tries, max_retries) else "waiting"


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


def _flock_within(fd: int, path: Path, timeout: float) -> None:
    """An exclusive flock on ``fd`` within ``timeout`` seconds, else LedgerLockTimeout naming the holder."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                raise
        if time.monotonic() >= deadline:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another worker"
            pid = holder.rpartition(":")[2]
            resume = f"`kill -CONT {pid}`" if pid.isdigit() else "`kill -CONT`"
            raise LedgerLockTimeout(f"the ledger lock {path} is still held after {timeout:.0f} s by {holder} (a worker "
                                    f"stopped with Ctrl-Z or SIGSTOP? resume it with {resume} or stop it; "
                                    "TINA_SWEEP_LOCK_TIMEOUT sets the wait)")
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


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
