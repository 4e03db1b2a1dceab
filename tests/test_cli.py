"""The real command line on the smoke study: a full run, an idempotent rerun, a resumed bigger study, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from conftest import STUDIES_DIR
from tina_sweep.cli import app

SMOKE = STUDIES_DIR / "smoke.py"
TINA_SWEEP = Path(sys.executable).with_name("tina-sweep")


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "240"})


def flat(text: str) -> str:
    """Rich may wrap long lines: compare with whitespace collapsed."""
    return " ".join(text.split())


def result_mtimes(sweep: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in sweep.glob("trials/*/result.json")}


def complete_jobs(sweep: Path, name: str = "smoke") -> dict[str, int]:
    from tina_sweep.ledger.store import Ledger

    ledger = Ledger(name, None, sweep)
    return {job: sum(t.state == TrialState.COMPLETE for t in tries) for job, tries in ledger.by_job().items()}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, tiny_model_dir):
    """`tina-sweep run studies/smoke.py --scale smoke --sweeps-dir <tmp>`, once for the module."""
    root = tmp_path_factory.mktemp("sweeps")
    result = invoke("run", SMOKE, "--scale", "smoke", "--sweeps-dir", root)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return root, result


def test_run_completes(smoke_run):
    root, result = smoke_run
    out = flat(result.stdout)
    assert "smoke at scale smoke: 3 jobs (0 finished, 3 to run)" in out
    assert out.count("done ") == 3
    sweep = root / "smoke"
    assert (sweep / "ledger.journal").is_file()
    assert (sweep / "results.md").is_file()
    study = json.loads((sweep / "study.json").read_text())
    assert study["scale"] == "smoke" and len(study["jobs"]) == 3


def test_results_table(smoke_run):
    root, _ = smoke_run
    sweep = root / "smoke"
    frame = pl.read_parquet(sweep / "results.parquet")
    assert frame.height == 3
    for column in ("trial_id", "kind", "lora.rank", "arithmetic", "average", "n", "train_steps", "cost_usd", "device"):
        assert column in frame.columns
    assert frame["kind"].to_list() == ["baseline", "trial", "trial"]
    assert frame["lora.rank"].to_list() == [None, "2", "4"]
    assert frame["n"].to_list() == [8, 8, 8]  # smoke eval: arithmetic limit 8, one sample
    assert frame["train_steps"].to_list() == [0, 2, 2]
    assert all(0.0 <= v <= 1.0 for v in frame["arithmetic"].to_list())
    assert frame["average"].to_list() == frame["arithmetic"].to_list()  # one benchmark
    assert all(v >= 0 for v in frame["cost_usd"].to_list())
    markdown = (sweep / "results.md").read_text()
    assert markdown.startswith("| trial_id | kind | lora.rank | arithmetic | average | n |")
    assert len([line for line in markdown.splitlines() if line.startswith("| ")]) == 4  # header + 3 rows
    for trial_id in frame["trial_id"]:
        assert trial_id in markdown


def test_trial_folders(smoke_run):
    root, _ = smoke_run
    sweep = root / "smoke"
    folders = sorted(p.name for p in (sweep / "trials").iterdir())
    assert len(folders) == 3
    assert folders[0].startswith("base-")
    assert folders[1].startswith("rank=2-s42-") and folders[2].startswith("rank=4-s42-")
    frame = pl.read_parquet(sweep / "results.parquet")
    for folder in folders:
        result = json.loads((sweep / "trials" / folder / "result.json").read_text())
        assert result["trial_id"] == folder
        assert set(result["pass_at_1"]) == {"arithmetic"}
        row = frame.filter(pl.col("trial_id") == folder).row(0, named=True)
        assert row["average"] == result["average"]
        assert row["cost_usd"] == result["cost"]["total_usd"]
        assert (sweep / "trials" / folder / "eval" / "arithmetic.jsonl").is_file()
        if result["kind"] == "trial":
            assert result["train_steps"] == 2
            assert (sweep / "trials" / folder / "adapter" / "adapter_config.json").is_file()
            rank = json.loads((sweep / "trials" / folder / "adapter" / "adapter_config.json").read_text())["r"]
            assert f"rank={rank}-" in folder
        else:
            assert result["train_steps"] == 0 and not (sweep / "trials" / folder / "adapter").exists()
    assert complete_jobs(sweep) == {folder: 1 for folder in folders}


def test_second_run_trains_nothing(smoke_run):
    root, _ = smoke_run
    sweep = root / "smoke"
    before_mtimes = result_mtimes(sweep)
    before_ledger = complete_jobs(sweep)
    before_frame = pl.read_parquet(sweep / "results.parquet")
    result = invoke("run", SMOKE, "--scale", "smoke", "--sweeps-dir", root)
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "3 jobs (3 finished, 0 to run)" in out
    assert "done " not in out
    assert result_mtimes(sweep) == before_mtimes
    assert complete_jobs(sweep) == before_ledger
    assert len(list((sweep / "trials").iterdir())) == 3
    assert pl.read_parquet(sweep / "results.parquet").equals(before_frame)


def test_bigger_study_runs_only_the_new_trial(smoke_run, tmp_path):
    root, _ = smoke_run
    copy = tmp_path / "sweeps"
    shutil.copytree(root, copy)
    sweep = copy / "smoke"
    before_mtimes = result_mtimes(sweep)
    study_file = tmp_path / "smoke_bigger.py"
    study_file.write_text(textwrap.dedent("""
        from tina_sweep import Study

        study = Study(name="smoke", axes={"lora.rank": [2, 4, 8]})
        """))
    result = invoke("run", study_file, "--scale", "smoke", "--sweeps-dir", copy)
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "smoke at scale smoke: 4 jobs (3 finished, 1 to run)" in out
    assert out.count("done ") == 1 and "done rank=8-s42-" in out
    folders = sorted(p.name for p in (sweep / "trials").iterdir())
    assert len(folders) == 4 and any(f.startswith("rank=8-s42-") for f in folders)
    mtimes = result_mtimes(sweep)
    assert {k: v for k, v in mtimes.items() if k in before_mtimes} == before_mtimes
    frame = pl.read_parquet(sweep / "results.parquet")
    assert frame.height == 4 and frame["lora.rank"].to_list() == [None, "2", "4", "8"]
    assert sorted(complete_jobs(sweep).values()) == [1, 1, 1, 1]


def test_misspelled_field_fails_with_one_line(tmp_path):
    study_file = tmp_path / "typo.py"
    study_file.write_text('from tina_sweep import Study\nstudy = Study(name="typo", axes={"lora.rnak": [2]})\n')
    sweeps = tmp_path / "sweeps"
    result = invoke("run", study_file, "--scale", "smoke", "--sweeps-dir", sweeps)
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["error: typo: lora.rnak: unknown field (check its spelling)"]
    assert result.stdout.strip() == ""
    assert not sweeps.exists()


def test_bad_value_and_bad_file_fail_with_one_line(tmp_path):
    study_file = tmp_path / "badrank.py"
    study_file.write_text('from tina_sweep import Study\nstudy = Study(name="badrank", axes={"lora.rank": [0, 2]})\n')
    result = invoke("run", study_file, "--scale", "smoke", "--sweeps-dir", tmp_path / "sweeps")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: badrank: lora.rank: must be a positive integer, got 0"
    broken = tmp_path / "broken.py"
    broken.write_text("study = (\n")
    result = invoke("run", broken, "--scale", "smoke", "--sweeps-dir", tmp_path / "sweeps")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "syntax error" in result.stderr
    assert not (tmp_path / "sweeps").exists()


def test_paper_scale_needs_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = invoke("run", SMOKE, "--scale", "paper", "--sweeps-dir", tmp_path / "sweeps")
    assert result.exit_code != 0
    message = flat(result.stderr)
    assert message.startswith("error: --scale paper needs a CUDA GPU")
    assert "GPU" in message and "--scale cpu" in message
    assert not (tmp_path / "sweeps").exists()


def test_plan_lists_trials():
    result = invoke("plan", SMOKE, "--scale", "smoke")
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert "smoke at scale smoke, recipe arithmetic_smoke: 2 trials + base model" in out
    assert "rank=2-s42-" in out and "rank=4-s42-" in out
    assert "2/8" in out and "4/16" in out  # lora r/alpha


def test_status_shows_finished_jobs(smoke_run):
    root, _ = smoke_run
    result = invoke("status", "smoke", "--sweeps-dir", root)
    assert result.exit_code == 0, result.output
    assert flat(result.stdout).count("complete") == 3
    missing = invoke("status", "nothing-here", "--sweeps-dir", root)
    assert missing.exit_code != 0 and "no ledger for study 'nothing-here'" in flat(missing.stderr)


def test_help():
    for args in (["--help"], ["run", "--help"]):
        result = subprocess.run([str(TINA_SWEEP), *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout
    result = invoke("run", "--help")
    assert result.exit_code == 0
    out = flat(result.stdout)
    for option in ("--scale", "--sweeps-dir", "--storage", "--workers", "--max-retries", "--prices"):
        assert option in out
    top = invoke("--help")
    assert top.exit_code == 0 and all(cmd in top.stdout for cmd in ("run", "plan", "status", "models", "data"))


def test_models_and_data_listings():
    result = invoke("models")
    assert result.exit_code == 0 and "tiny-random-qwen2" in result.stdout
    result = invoke("data")
    assert result.exit_code == 0
    for name in ("aime24", "minerva", "gpqa_diamond", "limr", "deepscaler"):
        assert name in result.stdout


def test_plan_shows_each_recipes_stop_step_and_global_batch():
    """At paper scale a trial stops before its schedule's horizon and sees Tina's 8 prompts per optimizer step."""
    result = invoke("plan", Path(__file__).resolve().parents[1] / "studies" / "tina_main.py", "--scale", "paper")
    assert result.exit_code == 0, result.output
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.stdout.splitlines()
            if line.startswith("│ recipe=")]
    by_recipe = {cells[1]: cells for cells in rows}
    assert by_recipe["recipe=open_rs3"][-2:] == ["850/1500", "8"]
    assert by_recipe["recipe=deepscaler"][-2:] == ["5500/11000", "8"]
