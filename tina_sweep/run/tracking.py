"""Weights & Biases tracking: one run per trial per job type (``train``, ``eval``) and one ``report`` run per study.

Runs of a study share its name as their group and live under ``sweeps/<study>/wandb/``; with no API key they
are written offline, for ``wandb sync`` later. W&B is an observer, never a dependency of a result: every W&B
error (an outage, a missing key, a bad project name) becomes one warning line and the trial goes on.
"""

from __future__ import annotations

import importlib.util
import netrc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from tina_sweep.trial.train.wandb_guard import warn  # one warning format for every W&B failure

if TYPE_CHECKING:
    import polars as pl

    from tina_sweep.trial.result import TrialResult
    from tina_sweep.trial.trial import Trial

# WANDB_MODE values (W&B's own convention) -> our modes
_ENV_MODES = {"online": "online", "run": "online", "offline": "offline", "dryrun": "offline", "disabled": "off"}


@dataclass(frozen=True)
class Tracking:
    """Where and how a study's W&B runs are written; passed explicitly to every job's process."""

    mode: str  # "online" or "offline" ("off" is no Tracking at all)
    project: str
    group: str  # the study's name
    directory: str  # W&B writes its run folders under <directory>/wandb/
    scale: str




def wandb_installed() -> bool:
    return importlib.util.find_spec("wandb") is not None


def api_key_configured() -> bool:
    """WANDB_API_KEY is set, or the netrc file has an entry for the W&B host (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def choose_mode(requested: str | None) -> str:
    """The W&B mode to run with: the request, else WANDB_MODE, else online with an API key, offline without,
    off without wandb. Raises ValueError (one line) when W&B is requested but not installed; online without a
    key falls back to offline with a warning, since a missing key must not fail trials."""
    if requested is None:
        requested = _ENV_MODES.get(os.environ.get("WANDB_MODE", "").strip().lower())
    if requested == "off" or (requested is None and not wandb_installed()):
        return "off"
    if not wandb_installed():
        raise ValueError("wandb is not installed (pip install 'tina-sweep[wandb]')")
    if requested == "offline" or not api_key_configured():
        if requested == "online":
            print("warning: W&B online needs an API key (WANDB_API_KEY or `wandb login`) and none is set: "
                  "logging offline instead, upload later with `wandb sync`", file=sys.stderr)
        return "offline"
    return "online"


def job_config(tracking: Tracking, job: Trial) -> dict[str, Any]:
    """A job's W&B config: the resolved spec and the axis values, nested so trainer fields cannot clash."""
    return {"study": tracking.group, "scale": tracking.scale, "trial_id": job.trial_id, "kind": job.kind,
            "axes": dict(job.axes), "spec": job.spec.model_dump(mode="json")}


def job_tags(tracking: Tracking, job: Trial) -> list[str]:
    tags = [tracking.scale] + (["baseline"] if job.kind == "baseline" else [])
    return tags + [f"{axis}={value}" for axis, value in job.axes.items()]


def start_run(tracking: Tracking | None, job_type: str, name: str, config: dict[str, Any],
              tags: list[str] | None = None) -> Any | None:
    """A new W&B run, or None when tracking is off or W&B fails."""
    if tracking is None:
        return None
    os.environ.setdefault("WANDB_SILENT", "true")  # W&B's own console chatter would break the progress display
    try:
        import wandb

        with _no_storage_password():
            return wandb.init(project=tracking.project, group=tracking.group, job_type=job_type, name=name,
                              dir=tracking.directory, mode=tracking.mode, config=config,
                              tags=[tag[:64] for tag in tags or []],  # W&B's limit on a tag's length
                              settings=wandb.Settings(silent=True, console="off"))
    except Exception as error:
        warn(f"{job_type} run for {name}", error)
        return None


@contextmanager
def _no_storage_password() -> Iterator[None]:
    """While a W&B run starts: the command line with storage passwords masked, and no storage URL in the
    environment.

    ``wandb.init`` records ``sys.argv[1:]`` in the run's metadata (the ``environment`` record of the offline
    ``run-*.wandb`` file, ``wandb-metadata.json`` once synced), read only while the run starts; W&B has no
    setting that leaves the arguments out but keeps the rest of the metadata (``x_disable_meta`` drops it all).
    A job's process, started by the worker's fork server, has the worker's ``sys.argv`` (``--storage
    postgresql://user:password@host/db``) and its environment (``TINA_SWEEP_STORAGE``, on Slurm): the W&B
    service process started by the first run of a process inherits that environment, so it is left out too."""
    from tina_sweep.run.secrets import STORAGE_ENV
    from tina_sweep.run.secrets import Secrets

    argv, hidden = sys.argv, os.environ.pop(STORAGE_ENV, None)
    secrets = Secrets.from_url(hidden, *(arg for arg in argv if "://" in arg))
    sys.argv = [secrets.mask(arg) for arg in argv]
    try:
        yield
    finally:
        sys.argv = argv
        if hidden is not None:
            os.environ[STORAGE_ENV] = hidden


def finish_run(run: Any | None, failed: bool = False) -> None:
    if run is None:
        return
    try:
        run.finish(exit_code=1 if failed else 0)
    except Exception as error:
        warn(f"finishing run {getattr(run, 'name', '')}", error)


@contextmanager
def tracked(tracking: Tracking | None, job_type: str, job: Trial) -> Iterator[Any | None]:
    """A W&B run for one job and one job type, marked failed when the job raises."""
    run = start_run(tracking, job_type, job.trial_id, job_config(tracking, job), job_tags(tracking, job)) \
        if tracking is not None else None
    try:
        yield run
    except BaseException:
        finish_run(run, failed=True)
        raise
    finish_run(run)


def record_summary(run: Any | None, values: dict[str, Any]) -> None:
    """Put values in a run's summary (no-op without a run)."""
    if run is None:
        return
    try:
        run.summary.update(values)
    except Exception as error:
        warn("summary", error)


def train_summary(steps: int, seconds: float, tokens: int, final_reward: float | None) -> dict[str, Any]:
    return {"train_steps": steps, "train_seconds": seconds, "train_tokens": tokens,
            "final_train_reward": final_reward}


def record_eval(run: Any | None, result: TrialResult) -> None:
    """An eval run: Pass@1 per benchmark, the average and the cost in the summary; checkpoints as a series."""
    if run is None:
        return
    try:
        checkpoints = sorted(result.checkpoints.values(), key=lambda c: c.step)
        if checkpoints:
            run.define_metric("checkpoint/step")
            run.define_metric("checkpoint/*", step_metric="checkpoint/step")
        for checkpoint in checkpoints:
            run.log({"checkpoint/step": checkpoint.step, "checkpoint/pass@1/average": checkpoint.mean,
                     **{f"checkpoint/pass@1/{b}": v for b, v in checkpoint.pass_at_1.items()}})
        summary = {f"pass@1/{benchmark}": value for benchmark, value in result.pass_at_1.items()}
        summary["pass@1/average"] = result.average
        summary.update({f"cost/{key}": value for key, value in result.cost.model_dump().items() if value is not None})
        summary["train_steps"] = result.train_steps
        run.summary.update(summary)
    except Exception as error:
        warn("eval summary", error)


def report_study(tracking: Tracking | None, frame: pl.DataFrame, study_config: dict[str, Any]) -> None:
    """The study-level run: the results table and a cost-vs-Pass@1 scatter plot."""
    run = start_run(tracking, "report", f"{tracking.group}-report", study_config, [tracking.scale]) \
        if tracking is not None else None
    if run is None:
        return
    failed = False
    try:
        import wandb

        table = wandb.Table(columns=list(frame.columns), data=[list(row) for row in frame.iter_rows()])
        run.log({"results": table,
                 "cost_vs_pass@1": wandb.plot.scatter(table, "cost_usd", "average",
                                                      title="Cost ($) vs average Pass@1")})
        trials = frame.filter(frame["kind"] == "trial")
        if trials.height:
            best = trials.row(trials["average"].arg_max(), named=True)
            run.summary.update({"best/trial_id": best["trial_id"], "best/average": best["average"],
                                "trials": trials.height})
    except Exception as error:
        failed = True
        warn("study report", error)
    finish_run(run, failed)
    if tracking.mode == "offline":
        print(f"W&B: offline runs in {os.path.join(tracking.directory, 'wandb')}; upload them with "
              f"`wandb sync {os.path.join(tracking.directory, 'wandb', 'offline-run-*')}`")
