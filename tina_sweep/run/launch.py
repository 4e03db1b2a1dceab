"""``tina-sweep launch slurm``: a study's workers as a Slurm job array, submitted through submitit.

Each array task runs the same worker loop as ``tina-sweep worker`` (claim a waiting trial from the ledger, run
it, record it, until none waits), so N tasks work through one study together, sharing its ledger. The ledger
must be one every node reaches: a PostgreSQL URL (``--storage postgresql://user@host/db``); a journal file
works only on a shared filesystem with working file locks, and says so.

Preemption and time limits: the job is submitted with ``--requeue`` and submitit's signal
(``--signal=USR2@<delay>``); the worker is a ``submitit.helpers.Checkpointable`` whose ``checkpoint()`` hands
the trials it was running back to the ledger (as interrupted, so they do not count as failures) and resubmits
itself. The requeued task claims them again and training resumes from the trial's last saved checkpoint
(``trials/<id>/checkpoints/``).

Passwords: a storage URL with a password never reaches a file. The pickled worker carries the URL with the
password masked; the real URL travels in the job's environment (``TINA_SWEEP_STORAGE``, which ``sbatch``
exports to the job by default) and the submitit folder is private to the user. Everything printed (the
dry-run script, the worker command, messages) shows the masked URL.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tina_sweep.trial.spec import ConfigError
from tina_sweep.run.secrets import STORAGE_ENV, mask_url



# ------------------------------------------------------------------ the worker each array task runs

@dataclass
class WorkerSettings:
    """What every array task is given (besides the storage URL)."""

    study_file: str  # absolute: the tasks run elsewhere
    study_name: str
    scale: str
    sweeps_dir: str  # absolute
    slots: int = 1  # trials at a time in one task (one per GPU)
    threads: int | None = None  # CPU threads per trial (None: the task's cores / slots)
    prices: dict[str, float] | None = None
    max_retries: int = 2


def run_worker(settings: WorkerSettings, storage: str | None) -> Any:
    """The worker loop of one array task: the same loop as ``tina-sweep worker``."""
    from tina_sweep.run.runner import RunOptions, run_worker as work
    from tina_sweep.study.study import load_study, resolve

    study = load_study(settings.study_file)
    options = RunOptions(settings.scale, Path(settings.sweeps_dir), storage, settings.slots, settings.threads,
                         settings.max_retries, settings.prices)
    return work(study, resolve(study, settings.scale), options)


def release_attempts(study_name: str, storage: str | None, sweep_dir: Path, reason: str) -> int:
    """Hand the attempts this process is running back to the ledger as interrupted (not failures): the next sync
    re-enqueues them, and training resumes from the last checkpoint. The worker running here stops its children
    first (an attempt recorded while its child still runs could be retried elsewhere at once); attempts left
    RUNNING under this process's name without a worker (none normally) are released directly. Best effort;
    returns how many."""
    import optuna
    from optuna.trial import TrialState

    from tina_sweep.ledger.store import open_storage, worker_name
    from tina_sweep.run.worker import hand_back_running

    released = hand_back_running(reason)

    backend = open_storage(storage, sweep_dir)
    study = optuna.load_study(study_name=study_name, storage=backend)
    me = worker_name()
    for attempt in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if attempt.user_attrs.get("worker") == me:
            backend.set_trial_user_attr(attempt._trial_id, "error", reason)
            backend.set_trial_user_attr(attempt._trial_id, "interrupted", True)
            study.tell(attempt.number, state=TrialState.FAIL, skip_if_finished=True)
            released += 1
    return released


def _checkpointable_base() -> type:
    try:
        from submitit.helpers import Checkpointable
    except ImportError:  # submitit is optional; the class still pickles without it
        return object
    return Checkpointable


class SlurmWorker(_checkpointable_base()):
    """One array task: runs the worker loop; on preemption or time-out, hands its trials back and resubmits."""

    def __init__(self, settings: WorkerSettings, storage: str | None):
        self.settings = settings
        self.storage_shown = mask_url(storage) if storage else None
        # a URL with a password stays out of the pickle: the task reads it from its environment
        self.storage = storage if storage is None or self.storage_shown == storage else None

    def resolve_storage(self) -> str | None:
        if self.storage_shown is None or self.storage is not None:
            return self.storage
        url = os.environ.get(STORAGE_ENV, "")
        if mask_url(url) != self.storage_shown:
            raise RuntimeError(f"this task's environment has no {STORAGE_ENV} for {self.storage_shown} (sbatch must "
                               "export the submitting environment: do not set SBATCH_EXPORT=NONE)")
        return url

    def __call__(self, index: int = 0) -> Any:
        return run_worker(self.settings, self.resolve_storage())

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on preemption or time-out, before the job is requeued."""
        import submitit

        try:
            release_attempts(self.settings.study_name, self.resolve_storage(),
                             Path(self.settings.sweeps_dir) / self.settings.study_name,
                             "preempted or timed out on Slurm; requeued (resumes from its last checkpoint)")
        except Exception as error:  # the ledger's dead-worker detection recovers the attempt instead
            print(f"warning: could not hand the running trials back: {mask_url(str(error))[:200]}", file=sys.stderr)
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


# ------------------------------------------------------------------ options -> sbatch parameters

_TIME = re.compile(r"^(?:(?P<days>\d+)-)?(?P<rest>\d+(?::\d+){0,2})$")


def parse_time(text: str) -> int:
    """Slurm's --time formats (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS) -> whole minutes (> 0)."""
    match = _TIME.match(text.strip())
    if not match:
        raise ConfigError(f"--time {text!r}: not a Slurm time (minutes, HH:MM:SS or D-HH:MM:SS, e.g. 90 or 1-12:00:00)")
    days = int(match["days"] or 0)
    parts = [int(p) for p in match["rest"].split(":")]
    if match["days"] is not None:  # D-HH, D-HH:MM, D-HH:MM:SS
        hours, minutes, seconds = (parts + [0, 0])[:3]
    elif len(parts) == 1:
        hours, minutes, seconds = 0, parts[0], 0
    elif len(parts) == 2:  # MM:SS
        hours, (minutes, seconds) = 0, parts
    else:
        hours, minutes, seconds = parts
    if match["days"] is None and len(parts) > 1 and (seconds >= 60 or (len(parts) == 3 and minutes >= 60)):
        raise ConfigError(f"--time {text!r}: minutes and seconds must be below 60")
    total = days * 24 * 60 + hours * 60 + minutes + (1 if seconds else 0)
    if total <= 0:
        raise ConfigError(f"--time {text!r}: must be positive")
    return total


@dataclass
class SlurmOptions:
    workers: int
    time_minutes: int
    gpus_per_worker: int = 1
    cpus_per_worker: int = 8
    partition: str | None = None
    gres: str | None = None
    mem_gb: int | None = None
    max_requeues: int = 3
    signal_delay_s: int = 120
    sbatch: dict[str, str] = field(default_factory=dict)  # more #SBATCH flags (account, qos, constraint, ...)


def parse_sbatch_flags(items: list[str]) -> dict[str, str]:
    flags = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9-]*", key):
            raise ConfigError(f"--sbatch {item!r}: expected KEY=VALUE with a sbatch option name, e.g. account=myproj")
        flags[key] = value
    return flags


def worker_command(study_file: str, storage: str | None, scale: str, sweeps_dir: str) -> str:
    """The command line each array task is equivalent to (password masked)."""
    args = ["tina-sweep", "worker", study_file, "--scale", scale, "--sweeps-dir", sweeps_dir]
    if storage:
        args += ["--storage", mask_url(storage)]
    return shlex.join(args)


def slurm_parameters(options: SlurmOptions, job_name: str, command: str) -> dict[str, Any]:
    """SlurmExecutor parameters (see submitit.slurm.slurm._make_sbatch_string)."""
    parameters: dict[str, Any] = {
        "job_name": job_name,
        "time": options.time_minutes,
        "cpus_per_task": options.cpus_per_worker,
        "array_parallelism": options.workers,
        "signal_delay_s": options.signal_delay_s,
        "setup": ["# each array task runs the worker loop of:", f"#   {command}"],
        "additional_parameters": {"requeue": True, **options.sbatch},
    }
    if options.partition:
        parameters["partition"] = options.partition
    if options.gres:
        parameters["gres"] = options.gres
    elif options.gpus_per_worker:
        parameters["gpus_per_node"] = options.gpus_per_worker
    if options.mem_gb:
        parameters["mem"] = f"{options.mem_gb}GB"
    return parameters


def _dry_run_executor_class() -> type:
    from submitit.slurm.slurm import SlurmExecutor

    class DryRunSlurmExecutor(SlurmExecutor):
        """Builds the sbatch script on a machine without Slurm (SlurmExecutor insists on srun)."""

        @classmethod
        def affinity(cls) -> int:
            return 2

    return DryRunSlurmExecutor


def sbatch_script(folder: Path, options: SlurmOptions, job_name: str, command: str) -> str:
    """The sbatch script submitit would submit for the worker array, from submitit's own generator."""
    executor = _dry_run_executor_class()(folder, max_num_timeout=options.max_requeues)
    executor.update_parameters(**slurm_parameters(options, job_name, command))
    if options.workers > 1:  # what SlurmExecutor does for an array of submissions
        executor.parameters["map_count"] = options.workers
    return executor._make_submission_file_text(executor._submitit_command_str, "dry-run")


def sbatch_available() -> bool:
    return shutil.which("sbatch") is not None


def is_shared_storage(storage: str | None) -> bool:
    """A database server every node reaches (not a file: a journal or SQLite)."""
    return bool(storage) and "://" in storage and not storage.startswith("sqlite")


@contextlib.contextmanager
def storage_in_environment(storage: str | None) -> Iterator[None]:
    """Put a storage URL that carries a password into this process's environment while jobs are submitted (sbatch
    and submitit's local controller pass it on to the tasks), and take it out again afterwards."""
    if not storage or mask_url(storage) == storage:
        yield
        return
    previous = os.environ.get(STORAGE_ENV)
    os.environ[STORAGE_ENV] = storage
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(STORAGE_ENV, None)
        else:
            os.environ[STORAGE_ENV] = previous


def private_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        folder.chmod(0o700)
    return folder


def submit(worker: SlurmWorker, folder: Path, options: SlurmOptions, job_name: str, command: str, storage: str | None,
           local: bool) -> list:
    """Submit ``options.workers`` copies of ``worker``: a Slurm job array, or local processes (``local``)."""
    from submitit import LocalExecutor
    from submitit.slurm.slurm import SlurmExecutor

    private_folder(folder)
    if local:
        import torch

        executor = LocalExecutor(folder, max_num_timeout=options.max_requeues)
        gpus = min(options.gpus_per_worker, torch.cuda.device_count()) if torch.cuda.is_available() else 0
        executor.update_parameters(timeout_min=options.time_minutes, gpus_per_node=gpus,
                                   signal_delay_s=options.signal_delay_s)
    else:
        executor = SlurmExecutor(folder, max_num_timeout=options.max_requeues)
        executor.update_parameters(**slurm_parameters(options, job_name, command))
    with storage_in_environment(storage):
        return executor.map_array(worker, range(options.workers))
