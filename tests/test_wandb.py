"""W&B tracking (real wandb, offline): one run per trial per job type plus a study report run, read back from the
runs' own ``.wandb`` files; the mode defaults; and a W&B failure never failing a trial."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from conftest import STUDIES_DIR, smoke_spec
from tina_sweep.run import tracking
from tina_sweep.run.job import run_job
from tina_sweep.trial.trial import Trial

wandb = pytest.importorskip("wandb")


@pytest.fixture(autouse=True)
def _wandb_sandbox(tmp_path_factory, monkeypatch):
    """Keep W&B's settings and caches out of the user's home, and no key from the environment."""
    home = tmp_path_factory.mktemp("wandb-home")
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(home / name.lower()))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(home / "netrc"))


# --- reading an offline run back: the .wandb file is a LevelDB-style log of wandb's own protobuf records ---

def wandb_records(path: Path):
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B", "not a .wandb file"
    position, pending = 7, b""
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if kind == 0:
            position += block - position % block
            continue
        chunk = data[position + 7:position + 7 + length]
        position += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk  # full, first | middle, last
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""


def _apply(tree: dict, item) -> None:
    path = [item.key] if item.key else list(item.nested_key)
    node = tree
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = json.loads(item.value_json)


def read_run(folder: Path) -> dict[str, Any]:
    """The run's metadata, final config and summary, as written by wandb itself."""
    (log,) = folder.glob("run-*.wandb")
    run: dict[str, Any] = {"config": {}, "summary": {}, "history_keys": set()}
    for record in wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(group=record.run.run_group, job_type=record.run.job_type, name=record.run.display_name,
                       project=record.run.project, tags=list(record.run.tags))
            for item in record.run.config.update:
                _apply(run["config"], item)
        elif kind == "config":
            for item in record.config.update:
                _apply(run["config"], item)
        elif kind == "summary":
            for item in record.summary.update:
                _apply(run["summary"], item)
        elif kind == "history":
            run["history_keys"] |= {item.key or "/".join(item.nested_key) for item in record.history.item}
    return run


# --- the command line, offline, on the smoke study ---

@pytest.fixture(scope="module")
def wandb_sweep(tmp_path_factory, tiny_model_dir):
    from typer.testing import CliRunner

    from tina_sweep.cli import app

    root = tmp_path_factory.mktemp("sweeps")
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("wandb-home-cli")
        for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
            patch.setenv(name, str(home / name.lower()))
        result = CliRunner().invoke(app, ["run", str(STUDIES_DIR / "smoke.py"), "--scale", "smoke", "--sweeps-dir",
                                          str(root), "--wandb", "offline", "--eval-checkpoints", "1"],
                                    env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output + repr(result.exception)
    sweep = root / "smoke"
    runs = [read_run(folder) for folder in sorted((sweep / "wandb").glob("offline-run-*"))]
    return sweep, runs, result


def test_one_run_per_trial_per_job_type_plus_report(wandb_sweep):
    sweep, runs, result = wandb_sweep
    trials = sorted(p.name for p in (sweep / "trials").iterdir())
    trained = [t for t in trials if not t.startswith("base-")]
    assert len(trials) == 3 and len(trained) == 2
    expected = sorted([(t, "train") for t in trained] + [(t, "eval") for t in trials] + [("smoke-report", "report")])
    assert sorted((r["name"], r["job_type"]) for r in runs) == expected
    assert {r["group"] for r in runs} == {"smoke"} and {r["project"] for r in runs} == {"smoke"}
    assert "wandb sync" in " ".join(result.stdout.split())


def test_config_holds_spec_and_axes(wandb_sweep):
    sweep, runs, _ = wandb_sweep
    for run in runs:
        if run["job_type"] == "report":
            assert run["config"]["study"]["name"] == "smoke" and run["config"]["scale"] == "smoke"
            continue
        saved = json.loads((sweep / "trials" / run["name"] / "spec.json").read_text())
        assert run["config"]["spec"] == saved["spec"]
        assert run["config"]["axes"] == saved["axes"]
        assert run["config"]["trial_id"] == run["name"] and run["config"]["scale"] == "smoke"
        assert "smoke" in run["tags"]
        if saved["kind"] == "trial":
            rank = saved["axes"]["lora.rank"]
            assert f"lora.rank={rank}" in run["tags"]


def test_eval_summaries_hold_pass_at_1_and_cost(wandb_sweep):
    sweep, runs, _ = wandb_sweep
    for run in (r for r in runs if r["job_type"] == "eval"):
        result = json.loads((sweep / "trials" / run["name"] / "result.json").read_text())
        summary = run["summary"]
        assert summary["pass@1/arithmetic"] == result["pass_at_1"]["arithmetic"]
        assert summary["pass@1/average"] == result["average"]
        assert summary["cost/total_usd"] == pytest.approx(result["cost"]["total_usd"])
        assert summary["cost/eval_seconds"] == pytest.approx(result["cost"]["eval_seconds"])
        if result["kind"] == "trial":  # --eval-checkpoints 1: checkpoint-1 and checkpoint-2, as a series
            assert summary["checkpoint/step"] == 2
            assert "checkpoint/pass@1/arithmetic" in run["history_keys"]


def test_train_runs_stream_trl_metrics(wandb_sweep):
    sweep, runs, _ = wandb_sweep
    for run in (r for r in runs if r["job_type"] == "train"):
        assert run["summary"]["train_steps"] == 2
        assert {"train/reward", "train/loss", "train/global_step"} <= run["history_keys"]
        assert run["config"]["report_to"] == ["wandb"]  # the GRPOConfig, added by transformers' callback
        grpo = json.loads((sweep / "trials" / run["name"] / "grpo_config.json").read_text())
        assert grpo["report_to"] == ["wandb"]


def test_report_run_has_table_and_scatter(wandb_sweep):
    _, runs, _ = wandb_sweep
    (report,) = [r for r in runs if r["job_type"] == "report"]
    assert report["summary"]["results"]["nrows"] == 3
    assert report["summary"]["best/average"] >= 0 and report["summary"]["trials"] == 2
    assert "cost_vs_pass@1" in report["config"]["_wandb"]["visualize"]


# --- defaults and failures ---

def test_mode_defaults(monkeypatch, tmp_path):
    assert tracking.choose_mode(None) == "offline"  # installed, no key
    assert tracking.choose_mode("off") == "off"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert tracking.choose_mode(None) == "online"
    monkeypatch.delenv("WANDB_API_KEY")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert tracking.choose_mode(None) == "online"
    assert tracking.choose_mode("offline") == "offline"
    monkeypatch.setenv("WANDB_MODE", "offline")  # W&B's own variable is the default when set
    assert tracking.choose_mode(None) == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert tracking.choose_mode(None) == "off" and tracking.choose_mode("online") == "online"
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setattr(tracking, "wandb_installed", lambda: False)
    assert tracking.choose_mode(None) == "off"
    with pytest.raises(ValueError, match="wandb is not installed"):
        tracking.choose_mode("offline")


def test_online_without_key_falls_back_to_offline(capsys):
    assert tracking.choose_mode("online") == "offline"
    assert "W&B online needs an API key" in capsys.readouterr().err


def _smoke_job() -> Trial:
    return Trial("rank=4-s42-outage", "trial", smoke_spec(), {"lora.rank": 4})


def test_wandb_outage_never_fails_a_trial(tmp_path, tiny_model_dir, monkeypatch, capfd):
    def refuse(*args, **kwargs):
        raise ConnectionError("api.wandb.ai unreachable\nsecond line")

    monkeypatch.setattr(wandb, "init", refuse)
    settings = tracking.Tracking("online", "smoke", "smoke", str(tmp_path), "smoke")
    result = run_job(_smoke_job(), tmp_path / "trial", {"cpu": 0.1}, 1, None, settings, 0).to_json()
    assert result["train_steps"] == 2 and (tmp_path / "trial" / "result.json").is_file()
    warnings = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning: W&B")]
    assert warnings == [
        f"warning: W&B {phase} run for rank=4-s42-outage failed (ConnectionError: api.wandb.ai unreachable); "
        "continuing without it" for phase in ("train", "eval")]
    assert not (tmp_path / "wandb").exists()
    import polars as pl

    tracking.report_study(settings, pl.DataFrame({"trial_id": ["a"], "kind": ["trial"], "average": [0.5],
                                                  "cost_usd": [0.1]}), {})
    err = capfd.readouterr().err
    assert err.count("warning: W&B report run for smoke-report failed (ConnectionError") == 1


def test_wandb_error_while_training_is_a_warning(tmp_path, tiny_model_dir, monkeypatch, capfd):
    from wandb.sdk.wandb_run import Run

    log = Run.log

    def broken_log(self, data, *args, **kwargs):
        if "train/global_step" in data:  # what transformers' WandbCallback logs each step
            raise RuntimeError("wandb service died")
        return log(self, data, *args, **kwargs)

    monkeypatch.setattr(Run, "log", broken_log)
    settings = tracking.Tracking("offline", "smoke", "smoke", str(tmp_path), "smoke")
    result = run_job(_smoke_job(), tmp_path / "trial", {"cpu": 0.1}, 1, None, settings, 0).to_json()
    assert result["train_steps"] == 2
    err = capfd.readouterr().err
    assert err.count("warning: W&B training log failed (RuntimeError: wandb service died)") == 1
    runs = {read_run(f)["job_type"]: read_run(f) for f in (tmp_path / "wandb").glob("offline-run-*")}
    assert set(runs) == {"train", "eval"}
    assert runs["eval"]["summary"]["pass@1/arithmetic"] == result["pass_at_1"]["arithmetic"]


# --- a trial with a dev split: its curve and where it stopped, in its train run ---

def test_dev_curve_and_early_stop_are_logged_to_the_trials_run(tmp_path, tiny_model_dir, monkeypatch):
    from typer.testing import CliRunner

    from tina_sweep.cli import app

    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "home" / name.lower()))
    study = tmp_path / "dev.py"
    study.write_text('from tina_sweep import Study\n\nstudy = Study(name="dev", axes={"lora.rank": [2]}, '
                     'evaluate_base_model=False, base={"training.max_steps": 4, "training.save_steps": 1}, '
                     'stopping={"problems": 4, "patience": 1, "min_delta": 1.0})\n')
    result = CliRunner().invoke(app, ["run", str(study), "--scale", "smoke", "--sweeps-dir", str(tmp_path / "sweeps"),
                                      "--wandb", "offline"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output + repr(result.exception)
    runs = [read_run(f) for f in (tmp_path / "sweeps" / "dev" / "wandb").glob("offline-run-*")]
    train = next(r for r in runs if r["job_type"] == "train")
    assert {"dev/pass_at_1", "stopping/early_stopped_at"} <= train["history_keys"]
    assert "early stopped at step 2 of 4" in " ".join(result.stdout.split())


def test_wandb_is_in_the_default_install():
    from importlib.metadata import requires

    core = [r for r in requires("tina-sweep") if "extra ==" not in r]
    assert any(r.startswith("wandb") for r in core), core
