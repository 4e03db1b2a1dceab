"""``tina-sweep status``: every job of a study by state, and what each running worker is doing, read from the
ledger (journal file or database), so it works from any machine that can reach the ledger."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tina_sweep.ledger.store import Ledger, attempt_age, attempt_error, job_state
from tina_sweep.run.secrets import mask_url


class StatusError(Exception):
    """One line for the user: no such study, no ledger."""


def locate(target: str, sweeps_dir: Path) -> tuple[str, Path]:
    """(study name, sweep folder) for a study file, a sweep folder, or a study's name under ``sweeps_dir``."""
    path = Path(target)
    if path.is_file():
        from tina_sweep.study.study import load_study

        name = load_study(path).name  # ConfigError: the caller prints its one line
        return name, sweeps_dir / name
    if path.is_dir() and ((path / "study.json").is_file() or (path / "ledger.journal").is_file()):
        try:
            return json.loads((path / "study.json").read_text())["study"]["name"], path
        except (OSError, ValueError, KeyError):
            return path.name, path
    return target, sweeps_dir / target


def open_ledger(name: str, sweep_dir: Path, storage: str | None) -> Ledger:
    if storage is None and not (sweep_dir / "ledger.journal").exists():
        raise StatusError(f"no ledger for study {name!r} under {sweep_dir.parent} (run it first, or pass --storage)")
    try:
        return Ledger(name, storage, sweep_dir, max_retries=None, create=False)  # the bound run recorded
    except ValueError as error:  # a malformed TINA_SWEEP_* setting
        raise StatusError(str(error)) from None
    except KeyError:
        where = mask_url(storage) if storage else str(sweep_dir / "ledger.journal")
        raise StatusError(f"no study {name!r} in the ledger {where}") from None
    except ImportError as error:
        hint = "; pip install -e '.[postgres]'" if (storage or "").startswith("postgres") else ""
        raise StatusError(f"cannot open the ledger {mask_url(storage or '')}: its database driver is not installed "
                          f"({error.name or error}){hint}") from None
    except Exception as error:
        raise StatusError(mask_url(f"cannot open the ledger: {error}".splitlines()[0])) from None


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return str(datetime.timedelta(seconds=int(max(0, seconds))))


def _progress_text(progress: dict[str, Any] | None) -> str:
    if not progress:
        return ""
    phase = progress.get("phase", "")
    if "step" in progress and progress.get("total"):
        return f"{phase} {progress['step']}/{progress['total']}"
    if "step" in progress:
        return f"{phase} {progress['step']}"
    return phase


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return mask_url(lines[-1][:120]) if lines else ""


def show_status(name: str, sweep_dir: Path, storage: str | None, console: Console) -> dict[str, int]:
    """Print the jobs and workers tables; return the count of jobs per state."""
    ledger = open_ledger(name, sweep_dir, storage)
    try:
        jobs = ledger.by_job()
    finally:
        ledger.close()
    order: list[str] = []
    try:
        order = [j["trial_id"] for j in json.loads((sweep_dir / "study.json").read_text())["jobs"]]
    except (OSError, ValueError, KeyError):
        pass
    order += sorted(job for job in jobs if job not in order and job != "?")
    where = mask_url(storage) if storage else str(sweep_dir / "ledger.journal")
    table = Table(title=f"{name}: {where}")
    for column in ("trial id", "state", "attempts", "retried", "worker", "age", "progress", "Pass@1 / reason"):
        table.add_column(column)
    counts: dict[str, int] = {}
    running_rows = []
    for job_id in order:
        tries = jobs.get(job_id, [])
        state = job_state(tries, ledger.max_retries)
        counts[state] = counts.get(state, 0) + 1
        worker = age = progress = detail = ""
        if state == "finished":
            done = next(t for t in tries if t.state.name in ("COMPLETE", "PRUNED"))
            average = (done.user_attrs.get("result") or {}).get("average", done.value)
            worker, detail = done.user_attrs.get("worker", ""), f"{average:.3f}" if average is not None else ""
            if done.state.name == "PRUNED":
                detail += f" (pruned at step {(done.user_attrs.get('result') or {}).get('train_steps', '?')})"
        elif state == "running":
            run = next(t for t in tries if t.state.name == "RUNNING")
            worker = run.user_attrs.get("worker", "")
            age = _ago(attempt_age(run).total_seconds() if attempt_age(run) else None)
            progress = _progress_text(run.user_attrs.get("progress"))
            running_rows.append((worker, job_id, run))
        failed = [t for t in tries if t.state.name == "FAIL" and not t.user_attrs.get("duplicate")]
        if state in ("failed", "waiting") and failed:
            worker = worker or failed[-1].user_attrs.get("worker", "")
            detail = _last_line(attempt_error(failed[-1]))
        label = {"finished": "complete", "unqueued": "not queued"}.get(state, state)
        if state == "finished" and done.state.name == "PRUNED":
            label = "pruned"
        if state == "waiting" and failed:
            label = "waiting (retry)"
        table.add_row(job_id, label, str(len(tries)), str(len(failed)), worker, age, progress, detail)
    console.print(table)
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("finished", "running", "waiting", "failed"))
    console.print(f"{len(order)} jobs: {summary}" + (f", {counts['unqueued']} not queued" if counts.get("unqueued") else ""))
    if running_rows:
        workers = Table(title="workers")
        for column in ("worker", "trial id", "progress", "running for", "last progress"):
            workers.add_column(column)
        for worker, job_id, run in sorted(running_rows):
            progress = run.user_attrs.get("progress") or {}
            updated = progress.get("updated")
            workers.add_row(worker, job_id, _progress_text(progress),
                            _ago(attempt_age(run).total_seconds() if attempt_age(run) else None),
                            f"{_ago(time.time() - updated)} ago" if isinstance(updated, (int, float)) else "")
        console.print(workers)
    return counts
