"""Issue 11, "no password on disk": a storage URL's password never reaches a W&B run's files (W&B records the
command line and the job's process sees the URL in its environment), nor any message, even when the password
holds a space, an "@" or a ":" and the error quotes only part of the URL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tina_sweep.run.secrets import Secrets, mask_url

PASSWORD = "s3cret-Pa55"
URL = f"postgresql://tina:{PASSWORD}@localhost/db"

# --- W&B: a real offline run, started the way tracking.py starts one, in a process whose command line and
# environment hold the storage URL

_RUN = textwrap.dedent("""
    import multiprocessing as mp
    import os
    import sys
    from pathlib import Path

    from tina_sweep.run import tracking


    def service_environments():
        \"\"\"The environments of this process's children (the W&B service), where /proc shows them.\"\"\"
        found = []
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
                if int(fields["PPid"]) == os.getpid():
                    found.append((status.parent / "environ").read_bytes())
            except (OSError, KeyError, ValueError):
                pass
        return found


    def start(directory):
        argv, storage = list(sys.argv), os.environ["TINA_SWEEP_STORAGE"]
        settings = tracking.Tracking("offline", "secrets", "secrets", directory, "smoke")
        run = tracking.start_run(settings, "train", "leak-check", {"study": "secrets"}, ["smoke"])
        assert run is not None, "no W&B run"
        # the command line and the environment are this process's own again once the run has started
        assert sys.argv == argv and os.environ["TINA_SWEEP_STORAGE"] == storage
        environments = service_environments()
        run.log({"reward": 0.5})
        tracking.finish_run(run)
        leaking = sum(b"s3cret" in environment for environment in environments)
        print(f"service environments: {len(environments)} read, {leaking} with the password")


    if __name__ == "__main__":
        directory, how = sys.argv[sys.argv.index("--sweeps-dir") + 1], sys.argv[sys.argv.index("--how") + 1]
        if how == "main":
            start(directory)
        else:  # the way the worker starts a job: a fork server's child, whose sys.argv is the worker's
            process = mp.get_context("forkserver").Process(target=start, args=(directory,))
            process.start()
            process.join()
            sys.exit(process.exitcode)
""")


@pytest.mark.parametrize("how", ["main", "forkserver"])
def test_wandb_run_files_hold_no_password(tmp_path, how):
    pytest.importorskip("wandb")
    from test_wandb import wandb_records

    script = tmp_path / "script" / "tina_job.py"
    script.parent.mkdir()
    script.write_text(_RUN)
    tmp_path = tmp_path / "run"  # everything W&B writes (the script above names the password: it is not scanned)
    home = tmp_path / "home"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "TINA_SWEEP_STORAGE": URL,
           "NETRC": str(home / "netrc"), "HOME": str(home)}
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        env[name] = str(home / name.lower())
    env.pop("WANDB_API_KEY", None)
    env.pop("WANDB_SERVICE", None)  # a W&B service an earlier test started in this process: start our own
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    # the real command line holds the URL twice, as a separate value and in --option=value form
    command = [sys.executable, str(script), "run", "study.py", "--storage", URL, f"--storage={URL}",
               "--sweeps-dir", str(tmp_path), "--how", how]
    tmp_path.mkdir()
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, runs
    (log,) = runs[0].glob("run-*.wandb")
    files = [path for path in tmp_path.rglob("*") if path.is_file()]  # the run, its logs, W&B's cache and config
    assert len(files) > 3
    leaks = [str(path.relative_to(tmp_path)) for path in files if b"s3cret" in path.read_bytes()]
    assert leaks == []
    # W&B still records the command line (masked) with the rest of its metadata
    (environment,) = [record.environment for record in wandb_records(log)
                      if record.WhichOneof("record_type") == "environment" and record.environment.args]
    masked = "postgresql://tina:***@localhost/db"
    assert list(environment.args)[:5] == ["run", "study.py", "--storage", masked, f"--storage={masked}"]
    assert environment.host and environment.python
    if sys.platform.startswith("linux"):  # the W&B service process did not get the URL in its environment
        (line,) = [line for line in done.stdout.splitlines() if line.startswith("service environments:")]
        assert line.endswith(" 0 with the password") and not line.startswith("service environments: 0 read"), line


# --- mask_url: every URL's password in a text

@pytest.mark.parametrize("url, shown", [
    (URL, "postgresql://tina:***@localhost/db"),
    ("postgresql://tina:pa ss@host/db", "postgresql://tina:***@host/db"),  # a blank
    ("postgresql://tina:pa@ss@word@host:5432/db", "postgresql://tina:***@host:5432/db"),  # "@"s: up to the last
    ("postgresql://tina:pa:ss@host/db", "postgresql://tina:***@host/db"),  # a ":"
    ("postgresql://tina:pa%40ss%3A%20w@host/db", "postgresql://tina:***@host/db"),  # URL-encoded
    ("postgresql://tina:p@ss w:rd@host/db", "postgresql://tina:***@host/db"),  # all of them
    ("postgresql://:secret@host/db", "postgresql://:***@host/db"),  # no user
    ("postgresql+psycopg2://tina:pa/ss@host/db", "postgresql+psycopg2://tina:***@host/db"),
    ("postgresql://tina@host/db?sslmode=require&password=s3cret",
     "postgresql://tina@host/db?sslmode=require&password=***"),
    ("postgresql://tina@host/db?PASSWORD=s3cret&sslmode=require",
     "postgresql://tina@host/db?PASSWORD=***&sslmode=require"),
    ("postgresql://tina@host/db?password=pa'ss w&sslmode=require",  # a URL alone: to the next "&"
     "postgresql://tina@host/db?password=***&sslmode=require"),
    ("mysql+pymysql://tina@host/db?pwd=s%20cret", "mysql+pymysql://tina@host/db?pwd=***"),
])
def test_mask_url(url, shown):
    assert mask_url(url) == shown
    assert mask_url(shown) == shown  # masking twice changes nothing


@pytest.mark.parametrize("url", ["postgresql://tina@host/db", "postgresql://host:5432/db", "sqlite:///ledger.db",
                                 "postgresql://tina@host:5432/db?sslmode=require", "sweeps/smoke/ledger.journal"])
def test_mask_url_leaves_urls_without_a_password_alone(url):
    assert mask_url(url) == url  # what tina_sweep.run.launch reads as "no password to hide"


def test_mask_url_in_a_message():
    assert mask_url("cannot open postgresql://tina:pa ss@host:1/db: connection refused") == \
        "cannot open postgresql://tina:***@host:1/db: connection refused"
    assert mask_url("from postgresql://a:p1@h1/db to postgresql://b:p 2@h2/db, twice") == \
        "from postgresql://a:***@h1/db to postgresql://b:***@h2/db, twice"
    assert mask_url("postgresql://host:5432/db and postgresql://u:p w@h/db") == \
        "postgresql://host:5432/db and postgresql://u:***@h/db"
    assert mask_url("'postgresql://tina@host/db?password=s3cret' refused") == \
        "'postgresql://tina@host/db?password=***' refused"


# --- Secrets: the password we were given, wherever it shows, whole or in part

def test_secrets_mask_the_parts_a_driver_quotes():
    secrets = Secrets.from_url("postgresql://tina:pa@ssword@127.0.0.1:1/db")
    assert secrets.mask('could not translate host name "ssword@127.0.0.1" to address') == \
        'could not translate host name "***@127.0.0.1" to address'
    two = Secrets.from_url("postgresql://tina:pa@ss@word@127.0.0.1:1/db")
    assert two.mask('host name "ss@word@127.0.0.1"; then "word@127.0.0.1"') == \
        'host name "***@127.0.0.1"; then "***@127.0.0.1"'
    # a short part is masked only before an "@" (where a host name shows it), not in every word
    short = Secrets.from_url("postgresql://tina:secret@x@127.0.0.1/db")
    assert short.mask('host name "x@127.0.0.1": exit') == 'host name "***@127.0.0.1": exit'


def test_secrets_mask_the_password_outside_any_url():
    secrets = Secrets.from_url("postgresql://tina:pa%40ss%20word@host/db")  # URL-encoded
    assert secrets.mask("password 'pa@ss word' was refused; pa%40ss%20word too") == \
        "password '***' was refused; *** too"
    blank = Secrets.from_url("postgresql://tina:pa ss@host/db")
    assert blank.mask("auth failed for 'pa ss'") == "auth failed for '***'"
    query = Secrets.from_url("postgresql://tina@host/db?password=pa'ss w&sslmode=require")
    assert "ss w" not in query.mask("postgresql://tina@host/db?password=pa'ss w&sslmode=require: refused")
    assert Secrets.from_url("--storage=postgresql://tina:s3cret@host/db").passwords == ("s3cret",)


def test_secrets_without_a_password():
    for url in (None, "", "postgresql://tina@host/db", "sweeps/smoke/ledger.journal"):
        secrets = Secrets.from_url(url)
        assert not secrets and secrets.passwords == ()
        assert secrets.mask("tina at postgresql://a:b@c/db") == "tina at postgresql://a:***@c/db"  # still mask_url


# --- the command line: a driver's error that quotes part of the password

def _one_line(result) -> str:
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("command", ["run", "worker", "status"])
def test_driver_error_quoting_part_of_the_password(command, tmp_path):
    pytest.importorskip("psycopg2", reason="the postgres extra (psycopg2-binary) is not installed")
    from typer.testing import CliRunner

    from conftest import STUDIES_DIR
    from tina_sweep.cli import app

    url = "postgresql://tina:pa@ssword@127.0.0.1:1/db"  # SQLAlchemy takes "pa" and host "ssword@127.0.0.1"
    target = "smoke" if command == "status" else str(STUDIES_DIR / "smoke.py")
    scale = [] if command == "status" else ["--scale", "smoke"]
    result = CliRunner().invoke(app, [command, target, *scale, "--sweeps-dir", str(tmp_path / "sweeps"),
                                      "--storage", url], env={"COLUMNS": "240"})
    line = _one_line(result)
    assert "could not translate host name" in line and '"***@127.0.0.1"' in line, line
    assert "ssword" not in result.output
    assert not (tmp_path / "sweeps").exists()


@pytest.mark.parametrize("url", ["postgresql://tina:pa ss-w0rd@127.0.0.1:1/db",
                                 "postgresql://tina:pa%40ss-w0rd@127.0.0.1:1/db",
                                 "postgresql://tina@127.0.0.1:1/db?password=pa'ss-w0rd"])
def test_unreachable_ledger_hides_odd_passwords(url, tmp_path):
    pytest.importorskip("psycopg2", reason="the postgres extra (psycopg2-binary) is not installed")
    from typer.testing import CliRunner

    from conftest import STUDIES_DIR
    from tina_sweep.cli import app

    result = CliRunner().invoke(app, ["run", str(STUDIES_DIR / "smoke.py"), "--scale", "smoke", "--sweeps-dir",
                                      str(tmp_path / "sweeps"), "--storage", url], env={"COLUMNS": "240"})
    line = _one_line(result)
    assert "cannot open the ledger" in line and "127.0.0.1" in line, line
    assert "ss-w0rd" not in result.output
