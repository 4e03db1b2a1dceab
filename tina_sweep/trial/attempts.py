"""Attempt folders: every attempt at a job writes into a folder of its own, and only the winner's becomes the trial.

An attempt (one Optuna trial of the ledger, numbered) runs in ``<sweep>/attempts/<job>/<number>/``. Two processes
therefore never write one folder, even when a worker that was declared dead (paused past the grace period, say)
comes back while its successor runs. An attempt starts from the newest checkpoint that loads among the job's
earlier attempts (hard links, so nothing is copied; finished checkpoint files are never rewritten) and knows
what they cost (``earlier_attempts.json``). When it finishes, its worker renames its folder into place as
``<sweep>/trials/<job>/`` under the ledger lock, after checking that the attempt is still the job's live one;
a rename onto a trial folder that already holds a result fails, so even then only one result lands.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from tina_sweep.trial.result import TrialResult

ATTEMPTS = "attempts"
TRAIN_PROGRESS = "train_progress.json"  # an attempt's own training time and tokens so far (written each step)
EARLIER = "earlier_attempts.json"  # what the job's earlier attempts cost (written when an attempt starts)


def attempt_dir(sweep_dir: Path, job_id: str, number: int) -> Path:
    return sweep_dir / ATTEMPTS / job_id / str(number)


def trial_dir(sweep_dir: Path, job_id: str) -> Path:
    return sweep_dir / "trials" / job_id


def earlier_folders(sweep_dir: Path, job_id: str, exclude: Path | None = None) -> list[Path]:
    """The job's other attempt folders (oldest first), and a trial folder left unfinished by an older version."""
    root = sweep_dir / ATTEMPTS / job_id
    folders = sorted((p for p in root.iterdir() if p.is_dir() and p != exclude), key=_order) if root.is_dir() else []
    legacy = trial_dir(sweep_dir, job_id)
    if legacy.is_dir() and not (legacy / "result.json").exists():
        folders.insert(0, legacy)
    return folders


def _order(folder: Path) -> tuple[int, str]:
    return (int(folder.name), "") if folder.name.isdigit() else (-1, folder.name)


def checkpoint_step(folder: Path) -> int | None:
    """The step of a ``checkpoint-N`` folder that loads: its trainer state parses (transformers writes it last)
    and its adapter is there; None for a torn or partial checkpoint."""
    suffix = folder.name.rpartition("-")[2]
    if not folder.name.startswith("checkpoint-") or not suffix.isdigit():
        return None
    try:
        state = json.loads((folder / "trainer_state.json").read_text())
        if not isinstance(state, dict) or int(state.get("global_step", -1)) != int(suffix):
            return None
    except (OSError, ValueError, TypeError):
        return None
    if not (folder / "adapter_model.safetensors").is_file() or not (folder / "adapter_config.json").is_file():
        return None
    return int(suffix)


def loadable_checkpoints(checkpoints: Path) -> dict[int, Path]:
    """Every checkpoint under ``checkpoints`` that loads, by step."""
    if not checkpoints.is_dir():
        return {}
    found = {}
    for folder in checkpoints.iterdir():
        step = checkpoint_step(folder)
        if step is not None:
            found[step] = folder
    return dict(sorted(found.items()))


def seed_attempt(folder: Path, earlier: list[Path]) -> int | None:
    """Prepare a new attempt's folder: link in the checkpoints of the earlier attempt that got furthest (every
    loadable one up to its newest, so checkpoint-wise evaluation still finds them), and write what the earlier
    attempts cost. Returns the step it resumes from (None: from scratch)."""
    folder.mkdir(parents=True, exist_ok=True)
    best: dict[int, Path] = {}
    for previous in earlier:
        found = loadable_checkpoints(previous / "checkpoints")
        if found and (not best or max(found) > max(best)):
            best = found
    for step, source in best.items():
        _link_tree(source, folder / "checkpoints" / source.name)
    costs = [cost for previous in earlier if (cost := attempt_cost(previous)) is not None]
    write_json_atomic(folder / EARLIER, {"attempts": costs})
    return max(best) if best else None


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link a finished checkpoint's files (copy across filesystems)."""
    tmp = target.with_name(f"{target.name}.linking-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, tmp, copy_function=link)
    if target.exists():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, target)


def attempt_cost(folder: Path) -> dict[str, Any] | None:
    """What one attempt spent training (its ``train_progress.json``), or None when it trained nothing."""
    try:
        progress = json.loads((folder / TRAIN_PROGRESS).read_text())
    except (OSError, ValueError):
        return None
    return {"attempt": folder.name, "train_seconds": float(progress.get("seconds", 0.0)),
            "generated_tokens": int(progress.get("tokens", 0)), "step": int(progress.get("step", 0))}


def earlier_costs(folder: Path) -> list[dict[str, Any]]:
    """The earlier attempts' costs recorded when ``folder``'s attempt started ([] for a first attempt)."""
    try:
        return list(json.loads((folder / EARLIER).read_text()).get("attempts", []))
    except (OSError, ValueError, AttributeError):
        return []


def finished_result(folder: Path, job_id: str, eval_checkpoints: int = 0) -> TrialResult | None:
    """The folder's result.json when it is complete and belongs to this job (with the checkpoint block asked
    for). A result.json of this job that does not match the schema raises ValueError (one line): that is a
    version mismatch to see, not a result to redo silently."""
    try:
        data = json.loads((folder / "result.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("trial_id") != job_id:
        return None
    result = TrialResult.parse(data, str(folder / "result.json"))
    if eval_checkpoints and result.kind == "trial" and not result.checkpoints:
        return None
    return result


def commit(folder: Path, sweep_dir: Path, job_id: str) -> Path:
    """Rename an attempt's finished folder into place as the trial folder (call under the ledger lock, after
    checking the attempt is still live). A trial folder left unfinished by an older version is moved aside; one
    that holds a result already makes this raise FileExistsError (its result stands)."""
    target = trial_dir(sweep_dir, job_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and finished_result(target, job_id) is not None:
        raise FileExistsError(f"{target} holds a result already")
    if target.exists():
        aside = sweep_dir / ATTEMPTS / job_id / f"unfinished-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        os.rename(target, aside)
    os.rename(folder, target)
    return target


def clean_attempts(sweep_dir: Path, job_id: str, live: set[str]) -> None:
    """Remove a finished job's other attempt folders, except those named in ``live`` (attempts the ledger shows
    running)."""
    root = sweep_dir / ATTEMPTS / job_id
    if not root.is_dir():
        return
    for folder in root.iterdir():
        if folder.name not in live:
            shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        root.rmdir()
        (sweep_dir / ATTEMPTS).rmdir()


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON so that a reader (or a crash) never sees half of it; no temporary file survives a failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # several processes may write the same file
    try:
        with open(tmp, "w") as file:
            file.write(json.dumps(payload, indent=2, default=str))
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
