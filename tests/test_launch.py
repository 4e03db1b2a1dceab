"""`tina-sweep launch slurm`: the sbatch script submitit would submit (dry run), the same workers run locally
(submitit's LocalExecutor), the one-line refusal without Slurm, and the password kept out of files."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import STUDIES_DIR
from tina_sweep.cli import app

pytest.importorskip("submitit", reason="the slurm extra (submitit) is not installed")

SMOKE = STUDIES_DIR / "smoke.py"
PASSWORD = "s3cret-Pa55"
URL = f"postgresql://tina:{PASSWORD}@db.example.org:5432/ledger"


def invoke(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "240", **(env or {})})


def launch(*args, env=None):
    return invoke("launch", "slurm", *args, env=env)


# ------------------------------------------------------------------ dry run

def test_dry_run_prints_the_sbatch_script(tmp_path):
    sweeps = tmp_path / "sweeps"
    result = launch(SMOKE, "--storage", URL, "--workers", "4", "--gpus-per-worker", "2", "--partition", "gpu-long",
                    "--time", "1-12:00:00", "--scale", "smoke", "--sweeps-dir", sweeps, "--sbatch", "account=proj",
                    "--dry-run")
    assert result.exit_code == 0, result.output
    script = result.stdout
    assert script.startswith("#!/bin/bash")
    lines = script.splitlines()
    for flag in ("#SBATCH --array=0-3%4", "#SBATCH --partition=gpu-long", "#SBATCH --time=2160",
                 "#SBATCH --gpus-per-node=2", "#SBATCH --requeue", "#SBATCH --account=proj",
                 "#SBATCH --job-name=tina-smoke", "#SBATCH --cpus-per-task=8"):
        assert flag in lines, f"{flag} not in the script:\n{script}"
    assert any(line.startswith("#SBATCH --signal=USR2@") for line in lines)  # submitit's checkpoint signal
    # the worker each task runs, with the password masked
    worker_line = next(line for line in lines if "tina-sweep worker" in line)
    assert f"tina-sweep worker {SMOKE} --scale smoke --sweeps-dir {sweeps.resolve()}" in worker_line
    assert "postgresql://tina:***@db.example.org:5432/ledger" in worker_line
    # and submitit's own runner, reading the pickled worker from the job folder
    assert any("-m submitit.core._submit" in line and line.startswith("srun ") for line in lines)
    assert PASSWORD not in result.output
    assert result.stderr.strip() == ""  # a database ledger: no shared-filesystem warning
    assert not sweeps.exists()  # a dry run writes nothing


def test_dry_run_with_gres_and_one_worker(tmp_path):
    result = launch(SMOKE, "--storage", URL, "--gres", "gpu:a100:2", "--partition", "gpu", "--time", "90",
                    "--scale", "smoke", "--sweeps-dir", tmp_path / "sweeps", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "#SBATCH --gres=gpu:a100:2" in lines and "#SBATCH --time=90" in lines
    assert not any(line.startswith("#SBATCH --gpus-per-node") for line in lines)
    assert not any(line.startswith("#SBATCH --array") for line in lines)  # one worker: one job, no array
    assert "#SBATCH --requeue" in lines


def test_journal_ledger_on_slurm_gets_a_shared_filesystem_warning(tmp_path):
    result = launch(SMOKE, "--scale", "smoke", "--sweeps-dir", tmp_path / "sweeps", "--partition", "p", "--dry-run")
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warning) == 1 and warning[0].startswith("warning: the ledger ")
    assert "ledger.journal is a file" in warning[0] and "shared filesystem" in warning[0]
    assert "postgresql://" in warning[0]


# ------------------------------------------------------------------ refusals, one line each

def _one_line_error(result, *fragments):
    assert result.exit_code not in (0, None), result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert PASSWORD not in result.output
    return lines[0]


def test_without_sbatch_it_says_so_in_one_line(tmp_path):
    sweeps = tmp_path / "sweeps"
    result = launch(SMOKE, "--storage", URL, "--workers", "2", "--scale", "smoke", "--sweeps-dir", sweeps,
                    env={"PATH": str(tmp_path)})
    _one_line_error(result, "sbatch is not on PATH", "--local", "--dry-run")
    assert result.exit_code == 1
    assert result.stdout.strip() == ""
    assert not sweeps.exists()


@pytest.mark.parametrize("args,fragments", [
    (["--time", "1x"], ["--time '1x': not a Slurm time"]),
    (["--time", "0"], ["--time '0': must be positive"]),
    (["--time", "10:75"], ["--time '10:75': minutes and seconds must be below 60"]),
    (["--workers", "0"], ["--workers", "got 0"]),
    (["--gpus-per-worker", "-1"], ["--gpus-per-worker", "got -1"]),
    (["--cpus-per-worker", "0"], ["--cpus-per-worker", "got 0"]),
    (["--sbatch", "account"], ["--sbatch 'account': expected KEY=VALUE"]),
    (["--storage", "no url"], ["--storage 'no url': not a storage URL"]),
    (["--scale", "huge"], ["--scale", "'huge'"]),
    (["--local"], ["--dry-run and --local: choose one"]),
])
def test_bad_launch_options(args, fragments, tmp_path):
    sweeps = tmp_path / "sweeps"
    result = launch(SMOKE, "--scale", "smoke", "--sweeps-dir", sweeps, "--dry-run", *args)
    _one_line_error(result, *fragments)
    assert not sweeps.exists()


@pytest.mark.parametrize("text,minutes", [("90", 90), ("1:30", 2), ("02:00:00", 120), ("1-0", 1440),
                                          ("1-02:30", 1590), ("2-00:00:30", 2881)])
def test_parse_time(text, minutes):
    from tina_sweep.run.launch import parse_time

    assert parse_time(text) == minutes


# ------------------------------------------------------------------ the password never reaches a file

def test_worker_pickle_carries_no_password(monkeypatch):
    from tina_sweep.run.launch import STORAGE_ENV, SlurmWorker, WorkerSettings, storage_in_environment

    worker = SlurmWorker(WorkerSettings("/abs/study.py", "smoke", "smoke", "/abs/sweeps"), URL)
    blob = pickle.dumps(worker)
    assert PASSWORD.encode() not in blob
    assert b"tina:***@db.example.org" in blob
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    with pytest.raises(RuntimeError) as caught:
        pickle.loads(blob).resolve_storage()
    assert PASSWORD not in str(caught.value) and STORAGE_ENV in str(caught.value)
    with storage_in_environment(URL):  # what submission does: the tasks inherit it
        assert pickle.loads(blob).resolve_storage() == URL
    assert STORAGE_ENV not in __import__("os").environ
    plain = SlurmWorker(WorkerSettings("/abs/study.py", "smoke", "smoke", "/abs/sweeps"), "postgresql://tina@db/x")
    assert pickle.loads(pickle.dumps(plain)).resolve_storage() == "postgresql://tina@db/x"


def test_checkpoint_hands_running_trials_back_and_resubmits(tmp_path):
    """What submitit calls on preemption / time-out: this process's running attempts go back to the ledger as
    interrupted (not failures), and the same worker is resubmitted."""
    import submitit
    from optuna.trial import TrialState

    from tina_sweep.run.launch import SlurmWorker, WorkerSettings
    from tina_sweep.ledger.store import Ledger
    from tina_sweep.run.runner import study_jobs
    from tina_sweep.study.study import load_study, resolve

    study = load_study(SMOKE)
    jobs = study_jobs(study, resolve(study, "smoke"))
    sweep = tmp_path / "sweeps" / "smoke"
    ledger = Ledger("smoke", None, sweep)
    ledger.sync({job.trial_id: job.to_json() for job in jobs})
    claimed = ledger.claim()
    assert claimed is not None
    worker = SlurmWorker(WorkerSettings(str(SMOKE), "smoke", "smoke", str(tmp_path / "sweeps")), None)
    delayed = worker.checkpoint(0)
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    assert delayed.function is worker and delayed.args == (0,)
    attempt = next(t for t in ledger.attempts() if t.number == claimed.number)
    assert attempt.state == TrialState.FAIL and attempt.user_attrs.get("interrupted") is True
    assert "preempted" in attempt.user_attrs["error"]
    ledger.sync({job.trial_id: job.to_json() for job in jobs})  # re-enqueued, not counted as a failure
    tries = ledger.by_job()[claimed.user_attrs["trial_id"]]
    assert [t.state for t in tries] == [TrialState.FAIL, TrialState.WAITING]
    ledger.close()


# ------------------------------------------------------------------ the same workers, locally

def test_local_two_workers_finish_every_trial_once(tmp_path, tiny_model_dir):
    from optuna.trial import TrialState

    from tina_sweep.ledger.store import Ledger

    sweeps = tmp_path / "sweeps"
    result = launch(SMOKE, "--workers", "2", "--gpus-per-worker", "0", "--scale", "smoke", "--sweeps-dir", sweeps,
                    "--time", "20", "--local")
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "smoke: 3 of 3 jobs finished" in " ".join(result.stdout.split())
    sweep = sweeps / "smoke"
    ledger = Ledger("smoke", None, sweep)
    attempts = ledger.by_job()
    ledger.close()
    assert len(attempts) == 3
    for job_id, tries in attempts.items():
        assert [t.state for t in tries] == [TrialState.COMPLETE], (job_id, [t.state for t in tries])
        assert json.loads((sweep / "trials" / job_id / "result.json").read_text())["trial_id"] == job_id
    workers = {tries[0].user_attrs.get("worker") for tries in attempts.values()}
    assert all(w and ":" in w for w in workers)
    # both array tasks ran (their logs are in the submitit folder, private to the user)
    logs = sorted((sweep / "slurm").glob("*_log.out"))
    assert len(logs) == 2
    assert oct((sweep / "slurm").stat().st_mode & 0o777) == "0o700"
    assert sys.executable  # the tasks ran with this interpreter (submitit's default)


# ------------------------------------------------------------------ a real submission, to a stand-in sbatch

def _fake_slurm(bin_dir: Path, record: Path) -> None:
    """`sbatch` that records its script and whether the storage URL came through the environment, and `srun`
    (submitit checks it is there)."""
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(
        "#!/bin/bash\n"
        f'cp "$1" {record}/script.sh\n'
        f'echo "${{TINA_SWEEP_STORAGE:+storage in environment}}" > {record}/env.txt\n'
        'echo "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text("#!/bin/bash\nexit 0\n")
    for name in ("sbatch", "srun"):
        (bin_dir / name).chmod(0o755)


def test_submission_through_slurm_executor(tmp_path, monkeypatch):
    """The real path (SlurmExecutor, a job array of pickled workers) against a stand-in sbatch: the submitted
    script, the message, and no password in any file submitit wrote."""
    import os

    import tina_sweep.cli as cli

    record = tmp_path / "record"
    record.mkdir()
    _fake_slurm(tmp_path / "bin", record)
    monkeypatch.setattr(cli, "_preflight", lambda *args, **kwargs: None)  # no database server here
    sweeps = tmp_path / "sweeps"
    result = launch(SMOKE, "--storage", URL, "--workers", "3", "--gpus-per-worker", "1", "--partition", "gpu",
                    "--time", "45", "--scale", "smoke", "--sweeps-dir", sweeps,
                    env={"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"})
    assert result.exit_code == 0, result.output + repr(result.exception)
    out = " ".join(result.stdout.split())
    assert "Submitted 3 worker(s) of smoke as Slurm job 4242" in out
    assert "--storage postgresql://tina:***@db.example.org:5432/ledger" in out
    script = (record / "script.sh").read_text()
    for flag in ("#SBATCH --array=0-2%3", "#SBATCH --partition=gpu", "#SBATCH --time=45", "#SBATCH --requeue",
                 "#SBATCH --gpus-per-node=1"):
        assert flag in script.splitlines()
    assert (record / "env.txt").read_text().strip() == "storage in environment"
    folder = sweeps / "smoke" / "slurm"
    pickles = list(folder.rglob("*.pkl"))
    assert len(pickles) == 3  # one pickled worker per array task
    written = [p for p in folder.rglob("*") if p.is_file()]
    assert not [str(p) for p in written if PASSWORD.encode() in p.read_bytes()]
    assert PASSWORD not in result.output
    assert "TINA_SWEEP_STORAGE" not in os.environ  # only while submitting


def test_without_submitit_it_says_how_to_install_it(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "submitit" else real(name, *a))
    sweeps = tmp_path / "sweeps"
    result = launch(SMOKE, "--storage", URL, "--partition", "gpu", "--time", "60", "--scale", "smoke",
                    "--sweeps-dir", sweeps, "--dry-run")
    assert result.exit_code == 1
    _one_line_error(result, "needs submitit", "pip install -e '.[slurm]'")
    assert not sweeps.exists()
