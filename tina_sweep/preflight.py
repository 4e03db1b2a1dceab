"""Checks that run before anything is written: what the trials need (models, the user's data files), the ledger's
storage, and the study's definition against the one the ledger already holds under the same name.

Every failure is a ``ConfigError`` whose message is one line naming what is wrong (the field or option and the
value); passwords in storage URLs are masked in every message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from tina_sweep.config import ConfigError, DataSpec
from tina_sweep.secrets import Secrets, mask_storage

if TYPE_CHECKING:
    import optuna

    from tina_sweep.study import Study, Trial

# a Hugging Face hub id: owner/name
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ------------------------------------------------------------------ what the trials need

def check_model_name(name: str) -> None:
    """A catalog name, an existing local model directory, or something shaped like a hub id (owner/name);
    whether a hub id exists is only known when it is loaded."""
    from tina_sweep.models import MODELS

    if name in MODELS:
        return
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"model.name: {name!r} is a directory without a config.json (not a model saved "
                              "with save_pretrained)")
        return
    if path.exists():
        raise ConfigError(f"model.name: {name!r} is a file, not a model directory")
    if name.startswith((".", "/", "~")) or (_HUB_ID.match(name) is None and "/" in name):
        raise ConfigError(f"model.name: no such model directory {name!r}")
    if _HUB_ID.match(name) is None:
        raise ConfigError(f"model.name: unknown model {name!r} (known: {', '.join(MODELS)}; or a local model "
                          "directory, or a hub id like owner/name)")


def check_data_file(spec: DataSpec, field: str) -> None:
    """A user's own data file (``path`` set) must exist and every row must be readable."""
    from tina_sweep.data import DataError, load_file

    try:
        problems = load_file(spec.path, spec.question_field, spec.answer_field, spec.answer_format, spec.path)
    except DataError as error:
        raise ConfigError(f"{field}: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{field}: {spec.path}: cannot be read ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''})") from None
    if not problems:
        raise ConfigError(f"{field}: {spec.path}: has no rows")


def check_trials(study_name: str, trials: list[Trial]) -> None:
    """Every model and every user data file the trials name, each checked once."""
    seen_models: set[str] = set()
    seen_files: set[str] = set()
    try:
        for trial in trials:
            spec = trial.spec
            if spec.model.name not in seen_models:
                seen_models.add(spec.model.name)
                check_model_name(spec.model.name)
            sources = [("dataset", spec.dataset)] + [(f"eval.benchmarks.{i}", b)
                                                     for i, b in enumerate(spec.eval.benchmarks)]
            for field, data in sources:
                if data.path is None:
                    continue
                key = data.canonical_json()
                if key not in seen_files:
                    seen_files.add(key)
                    check_data_file(data, f"{field}.path")
    except ConfigError as error:
        raise ConfigError(f"{study_name}: {error}") from None


# ------------------------------------------------------------------ the ledger's storage

def describe_storage(storage: str | None, sweep_dir: Path) -> str:
    """Where the ledger lives, printable (password masked)."""
    return mask_storage(storage) if storage else str(sweep_dir / "ledger.journal")


def check_storage_url(storage: str) -> None:
    """The shape of ``--storage``: a ``.journal`` file path or a database URL SQLAlchemy can parse."""
    shown = mask_storage(storage)
    if not storage.strip():
        raise ConfigError("--storage: empty (give a postgresql://user@host/db URL or a .journal file path)")
    if storage.endswith(".journal") and "://" not in storage:  # as tina_sweep.ledger.journal_path reads it
        path = Path(storage).expanduser()
        if path.is_dir():
            raise ConfigError(f"--storage {shown}: is a directory, not a journal file")
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(storage)
    except (ArgumentError, ValueError):
        raise ConfigError(f"--storage {shown!r}: not a storage URL (postgresql://user@host/db, sqlite:///file.db) "
                          "nor a .journal file path") from None
    if url.get_backend_name() not in ("postgresql", "mysql", "mariadb", "sqlite", "oracle", "mssql"):
        raise ConfigError(f"--storage {shown}: unknown database type {url.get_backend_name()!r} (use postgresql://, "
                          "mysql://, sqlite:/// or a .journal file path)")


def open_storage_checked(storage: str | None, sweep_dir: Path) -> optuna.storages.BaseStorage:
    """The ledger's storage, opened (and, for a database, connected: failing fast, not hanging); every failure
    is one ConfigError line with the password masked."""
    from tina_sweep.ledger import open_storage

    if storage is not None:
        check_storage_url(storage)
    shown = describe_storage(storage, sweep_dir)
    try:
        return open_storage(storage, sweep_dir)
    except ImportError as error:
        missing = getattr(error.__cause__, "name", None) or getattr(error, "name", None)
        hint = ""
        if storage and storage.startswith("postgres"):
            hint = "; pip install -e '.[postgres]' (psycopg2), or psycopg 3: pip install 'psycopg[binary]'"
        raise ConfigError(f"--storage {shown}: its database driver is not installed"
                          f"{f' (no module {missing!r})' if missing else ''}{hint}") from None
    except Exception as error:
        raise ConfigError(f"--storage {shown}: cannot open the ledger: "
                          f"{Secrets.from_url(storage).mask(_first_line(error))}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    first = text.splitlines()[0].strip() if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


# ------------------------------------------------------------------ one name, one study

DEFINITION_KEY = "tina_sweep:jobs:{scale}"


def check_definition(ledger_study: optuna.Study, study: Study, scale: str, job_ids: list[str], where: str,
                     redefine: bool = False) -> None:
    """Refuse a study whose trials clash with the ones the ledger already holds under the same name and scale,
    then record this definition's jobs.

    The ledger records, per scale, the job ids of the definition last run under the study's name. A new
    definition that only adds trials (more axis values, more seeds) or only drops some is the same study,
    edited; one that does both (a changed base field, another study file that happens to share the name)
    would mix two studies in one ledger, whose workers would hand each other's trials back and forth, so it is
    refused with a message that says how to proceed (``redefine`` accepts it)."""
    key = DEFINITION_KEY.format(scale=scale)
    recorded = ledger_study.user_attrs.get(key)
    current = sorted(job_ids)
    if recorded and not redefine:
        old, new = set(recorded), set(current)
        if not (old <= new or new <= old):
            missing = sorted(old - new)
            raise ConfigError(
                f"{study.name}: the ledger {where} already holds a study named {study.name!r} at scale {scale} "
                f"with other trials ({len(missing)} of its {len(old)} jobs are not in this study file, e.g. "
                f"{missing[0]}, and {len(new - old)} of this file's are new): give this study another name, or "
                f"use another --storage or --sweeps-dir, or pass --redefine to replace the recorded definition "
                f"(its finished trials stay in the ledger)")
    if recorded != current:
        ledger_study.set_user_attr(key, current)


def guard_ledger(study: Study, scale: str, job_ids: list[str], storage: str | None, sweep_dir: Path,
                 redefine: bool = False) -> None:
    """Open the ledger's storage (failing fast), and check and record the study's definition in it. Call it
    after every other check: a ledger that does not hold the study yet gets it (empty, with this definition
    recorded), and the default journal file is created."""
    import optuna

    backend = open_storage_checked(storage, sweep_dir)
    where = describe_storage(storage, sweep_dir)
    try:  # load first: creating an existing study appends to a journal even when it fails
        try:
            backend.get_study_id_from_name(study.name)
        except KeyError:
            ledger_study = optuna.create_study(study_name=study.name, storage=backend, direction="maximize",
                                               load_if_exists=True)
        else:
            ledger_study = optuna.load_study(study_name=study.name, storage=backend)
    except Exception as error:
        raise ConfigError(f"--storage {where}: cannot open study {study.name!r}: "
                          f"{Secrets.from_url(storage).mask(_first_line(error))}") from None
    check_definition(ledger_study, study, scale, job_ids, where, redefine)
