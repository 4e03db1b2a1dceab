"""Shared fixtures: a per-session model cache, the tiny random model, smoke-scale specs and trained trials."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STUDIES_DIR = REPO / "studies"

# No network here: make every Hugging Face lookup fail fast instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# W&B off unless a test asks for it (tests/test_wandb.py passes --wandb offline)
os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(scope="session", autouse=True)
def tina_cache(tmp_path_factory) -> Path:
    """TINA_SWEEP_CACHE points at a fresh directory for the whole session (child processes inherit it)."""
    path = tmp_path_factory.mktemp("tina-cache")
    previous = os.environ.get("TINA_SWEEP_CACHE")
    os.environ["TINA_SWEEP_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("TINA_SWEEP_CACHE", None)
    else:
        os.environ["TINA_SWEEP_CACHE"] = previous


@pytest.fixture(scope="module", autouse=True)
def _pin_cache(tina_cache) -> None:
    """Re-point TINA_SWEEP_CACHE at the session cache for every module, in case a test elsewhere changed it."""
    os.environ["TINA_SWEEP_CACHE"] = str(tina_cache)


@pytest.fixture(scope="session")
def tiny_model_dir(tina_cache) -> Path:
    """The tiny random Qwen2, built once per session inside the session cache."""
    from tina_sweep.trial.models import resolve_model

    path = Path(resolve_model("tiny-random-qwen2"))
    assert path == tina_cache / "models" / "tiny-random-qwen2"
    assert (path / "model.safetensors").is_file()
    return path


def smoke_tree(**dotted) -> dict:
    """The smoke preset with dotted overrides applied (``smoke_tree(**{"lora.rank": 2})``)."""
    from tina_sweep.study.recipes import preset as scale_preset
    from tina_sweep.study.study import set_dotted

    tree = scale_preset("smoke")
    for field, value in dotted.items():
        set_dotted(tree, field, value)
    return tree


def smoke_spec(**dotted):
    from tina_sweep.trial.spec import TrialSpec

    return TrialSpec.model_validate(smoke_tree(**dotted))


# The two trainings the train and evaluate tests inspect: the smoke preset (Dr. GRPO, alpha from the rule)
# and a GRPO variant with a KL term, an explicit alpha, two prompts per step and two rewards.
TRAIN_VARIANTS = {
    "dr_grpo": {},
    "grpo": {"algorithm.name": "grpo", "algorithm.beta": 0.04, "lora.rank": 2, "lora.alpha": 6,
             "training.learning_rate": 5e-4, "training.prompts_per_step": 2, "seed": 7,
             # the random model is never right, so accuracy alone gives zero advantages: the length reward
             # (which varies within a group) makes the update non-zero
             "algorithm.rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "length", "weight": 1.0}]},
    "dapo": {"algorithm.name": "dapo", "algorithm.beta": 0.0, "training.prompts_per_step": 2,
             "algorithm.rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "overlong", "weight": 1.0,
                                                                        "params": {"cache": 4}}]},
}


class TrainedTrial:
    def __init__(self, name, spec, trial_dir, outcome, received_args):
        self.name, self.spec, self.trial_dir, self.outcome = name, spec, trial_dir, outcome
        self.received_args = received_args  # the GRPOConfig object GRPOTrainer.__init__ was given


_TRAINED: dict[str, TrainedTrial] = {}


def train_variant(name: str, root: Path) -> TrainedTrial:
    """Train one variant for two steps (once per session), recording the args the trainer received."""
    if name in _TRAINED:
        return _TRAINED[name]
    import tina_sweep.trial.train.trainer as train_module

    spec = smoke_spec(**TRAIN_VARIANTS[name])
    received = []
    originals = {name: getattr(train_module, name) for name in ("GRPOTrainer", "FastCpuGRPOTrainer")}

    def recording(original):
        class RecordingTrainer(original):
            def __init__(self, *args, **kwargs):
                received.append(kwargs.get("args"))
                super().__init__(*args, **kwargs)

        return RecordingTrainer

    for attribute, original in originals.items():
        setattr(train_module, attribute, recording(original))
    try:
        trial_dir = root / name
        outcome = train_module.train_trial(spec, trial_dir)
    finally:
        for attribute, original in originals.items():
            setattr(train_module, attribute, original)
    assert len(received) == 1
    _TRAINED[name] = TrainedTrial(name, spec, trial_dir, outcome, received[0])
    return _TRAINED[name]


@pytest.fixture(scope="session")
def train_root(tmp_path_factory, tiny_model_dir) -> Path:
    return tmp_path_factory.mktemp("trained")


@pytest.fixture(scope="session")
def trained_dr_grpo(train_root) -> TrainedTrial:
    return train_variant("dr_grpo", train_root)


@pytest.fixture(scope="session", params=sorted(TRAIN_VARIANTS))
def trained(request, train_root) -> TrainedTrial:
    return train_variant(request.param, train_root)


# ---------------------------------------------------------------------------- a throwaway PostgreSQL server

def _postgres_bin() -> Path | None:
    """The newest PostgreSQL server's bin folder (Debian: /usr/lib/postgresql/<version>/bin), or None."""
    import glob

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
                   if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    import shutil

    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """A server on 127.0.0.1 in a temp folder with a password-protected role ``tina``; ``database()`` gives a
    fresh database's URL (``postgresql://tina:<password>@127.0.0.1:<port>/<db>``)."""

    password = "s3cret-Pw"

    def __init__(self, bin_dir: Path, root: Path, port: int, as_user: list[str]):
        self.bin_dir, self.root, self.port, self.as_user = bin_dir, root, port, as_user
        self.data, self.socket_dir, self.log = root / "data", root / "socket", root / "server.log"
        self.count = 0

    def _run(self, *args: str) -> None:
        import subprocess

        result = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed: {result.stderr[-2000:]}{log}")

    def start(self) -> None:
        self._run("mkdir", "-m", "700", str(self.socket_dir))  # owned by the server's user
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8")
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off " \
                  "-c max_connections=200"
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", "60", "start")
        with self._admin() as admin:
            admin.cursor().execute(f"CREATE ROLE tina LOGIN PASSWORD '{self.password}'")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "-t", "60", "stop")

    def _admin(self):
        import psycopg2

        connection = psycopg2.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname="postgres")
        connection.autocommit = True
        return contextlib.closing(connection)

    def database(self) -> str:
        self.count += 1
        name = f"tina_test_{self.count}"
        with self._admin() as admin:
            admin.cursor().execute(f"CREATE DATABASE {name} OWNER tina")
        return f"postgresql://tina:{self.password}@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the session (skipped, with the reason, where it cannot run)."""
    import shutil
    import tempfile

    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): apt-get install postgresql")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 is not installed: pip install -e '.[test]'")
    as_user: list[str] = []
    owner = None
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the postgres user
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server as")
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root and `runuser` is missing (util-linux)")
        as_user = [runuser, "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="tina-scaleout-pg-"))  # not under pytest's 0700 root-owned tmp: postgres reads it
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    server = PostgresServer(bin_dir, root, _free_port(), as_user)
    try:
        server.start()
    except (RuntimeError, OSError) as error:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL server: {str(error)[-600:]}")
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database on the session's server, as a URL with a password."""
    return postgres_server.database()
