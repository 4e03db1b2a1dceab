"""``eval.backend = "vllm"``: a worker evaluates the base model and every adapter it trained through ONE engine
(``--share-eval-engine``, the default), or one engine per job (``--engine-per-trial``). The real command line,
runner, worker and job processes run, real GRPO training of the tiny model included; only vLLM is the stand-in
tests/fake_vllm.py (no GPU here), which logs every engine start and generate call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINA_SWEEP = Path(sys.executable).with_name("tina-sweep")

STUDY = textwrap.dedent('''
    from tina_sweep import Study

    study = Study(
        name="shared",
        description="two ranks, vLLM evaluation",
        axes={"lora.rank": [2, 4]},
        # the length reward varies within a group, so GRPO moves the adapters (accuracy alone is always 0 for the
        # random tiny model: adapters exactly zero, which the adapter check passes over)
        scales={"smoke": {"base": {"eval.backend": "vllm", "algorithm.rewards": [
            {"name": "accuracy", "weight": 1.0}, {"name": "length", "weight": 1.0}]}}},
    )
''')


def run_study(tmp_path: Path, tiny_model_dir: Path, *flags: str, expect: int = 0,
              env_extra: dict[str, str] | None = None, command: str = "run"
              ) -> tuple[subprocess.CompletedProcess, list[dict]]:
    (tmp_path / "shared.py").write_text(STUDY)
    log = tmp_path / "vllm.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)]),
           "TINA_SWEEP_VLLM_MODULE": "fake_vllm", "FAKE_VLLM_LOG": str(log), "COLUMNS": "200", **(env_extra or {})}
    wandb = ["--wandb", "off"] if command == "run" else []
    done = subprocess.run([str(TINA_SWEEP), command, str(tmp_path / "shared.py"), "--scale", "smoke", "--sweeps-dir",
                           str(tmp_path / "sweeps"), *wandb, *flags], env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == expect, done.stdout[-3000:] + done.stderr[-3000:]
    events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, events


def results(tmp_path: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "sweeps" / "shared").glob("trials/*/result.json")}


@pytest.fixture(scope="module")
def shared(tmp_path_factory, tiny_model_dir):
    tmp_path = tmp_path_factory.mktemp("shared")
    done, events = run_study(tmp_path, tiny_model_dir)
    return tmp_path, done, events


def test_one_engine_evaluates_the_base_model_and_every_trained_adapter(shared):
    tmp_path, _, events = shared
    engines = [e for e in events if e["event"] == "engine" and not e["merged"]]
    (check_engine,) = [e for e in events if e["event"] == "engine" and e["merged"]]  # the adapter check's merged copy
    shared_calls = [e for e in events if e["event"] == "generate" and not e["merged"]]
    assert len(engines) == 1  # the base model loaded once, for the base model and both adapters
    assert len(shared_calls) == 2  # the adapter check (base vs adapter, greedy), then one call for everything
    (engine,), call = engines, shared_calls[-1]
    assert engine["kwargs"]["enable_lora"] is True and engine["kwargs"]["max_loras"] == 2
    assert engine["kwargs"]["max_lora_rank"] == 8  # vLLM's smallest allowed rank holding rank 4
    by_id = results(tmp_path)
    trials = sorted(k for k, r in by_id.items() if r["kind"] == "trial")
    assert len(by_id) == 3 and len(trials) == 2
    assert call["adapters"] == trials and call["base_prompts"] * 3 == call["prompts"]  # base + 2 adapters, same problems
    assert call["seeds"] == [0, 42]  # each job keeps its own sampling seed (baseline 0, trials 42)


def test_each_job_gets_its_own_result_with_training_and_shared_evaluation_costs(shared):
    tmp_path, _, _ = shared
    for trial_id, result in results(tmp_path).items():
        assert result["eval_engine"]["shared_by_jobs"] == 3 and result["eval_engine"]["models"] == 3
        check = result["eval_engine"]["adapter_check"]
        assert check["passed"] and check["differs_from_base"] == check["matches_merged"] == check["prompts"] > 0
        if result["kind"] == "baseline":
            assert result["average"] == 0.0 and result["cost"]["train_seconds"] == 0  # the stand-in's base says "no idea"
        else:
            assert result["average"] > 0 and result["train_steps"] > 0 and result["cost"]["train_seconds"] > 0
            folder = tmp_path / "sweeps" / "shared" / "trials" / trial_id  # the attempt's folder, renamed into place
            trained = json.loads((folder / "trained.json").read_text())
            assert trained["steps"] == result["train_steps"] and (folder / trained["adapter"]).is_dir()
        assert result["cost"]["eval_seconds"] > 0
        outcomes = tmp_path / "sweeps" / "shared" / "trials" / trial_id / "eval"
        assert list(outcomes.glob("*.jsonl"))  # per-problem outcomes, as with one engine per trial


def test_the_run_says_when_the_shared_evaluation_starts(shared):
    _, done, _ = shared
    assert "evaluating 2 trained trial(s) and the base model with one vLLM engine" in " ".join(done.stdout.split())


def test_a_second_run_starts_no_engine(shared, tiny_model_dir):
    tmp_path, _, events = shared
    done, again = run_study(tmp_path, tiny_model_dir)
    assert again == events  # nothing new in the log: every job was already finished
    assert "3 finished, 0 to run" in " ".join(done.stdout.split())


def test_engine_per_trial_starts_one_engine_per_job(tmp_path, tiny_model_dir):
    _, events = run_study(tmp_path, tiny_model_dir, "--engine-per-trial")
    engines = [e for e in events if e["event"] == "engine"]
    assert len(engines) == 3 and not any(e["merged"] for e in engines)  # base, rank 2, rank 4: an engine each
    assert all("eval_engine" not in r for r in results(tmp_path).values())


def test_checkpoints_join_the_shared_engine(tmp_path, tiny_model_dir):
    _, events = run_study(tmp_path, tiny_model_dir, "--eval-checkpoints", "1")
    (engine,) = [e for e in events if e["event"] == "engine" and not e["merged"]]
    call = [e for e in events if e["event"] == "generate" and not e["merged"]][-1]
    checkpoint_models = [name for name in call["adapters"] if "/checkpoint-" in name]
    assert checkpoint_models  # the trials' earlier checkpoints are LoRARequests of the same call
    for result in results(tmp_path).values():
        if result["kind"] == "trial":
            steps = sorted(entry["step"] for entry in result["checkpoints"].values())
            assert steps[-1] == result["train_steps"] and len(steps) >= 2
            assert result["eval_engine"]["models"] == 3 + len(checkpoint_models)


def test_an_adapter_that_does_not_load_stops_the_evaluation(tmp_path, tiny_model_dir):
    """The stand-in ignores every LoRARequest (outputs equal the base model's): the adapter check fails, no
    result is written, and each job records why (it will be retried on the next run)."""
    done, events = run_study(tmp_path, tiny_model_dir, "--max-retries", "0", expect=1,
                             env_extra={"FAKE_VLLM_BROKEN_LORA": "1"})
    assert "no trial finished" in done.stdout + done.stderr
    assert not results(tmp_path)
    errors = [json.loads(p.read_text())["error"] for p in (tmp_path / "sweeps" / "shared").glob("attempts/*/*/error.json")]
    assert len(errors) == 3 and all("adapter check failed" in e and "0 of 8 prompts" in e for e in errors)


def test_a_worker_started_anywhere_shares_its_engine_too(tmp_path, tiny_model_dir):
    done, events = run_study(tmp_path, tiny_model_dir, command="worker")
    assert "evaluating 2 trained trial(s) and the base model with one vLLM engine" in done.stdout
    assert len([e for e in events if e["event"] == "engine" and not e["merged"]]) == 1
    assert len(results(tmp_path)) == 3


def test_the_adapter_check_passes_over_exactly_zero_adapters(tmp_path):
    """An adapter training never moved serves the base model's outputs: the check takes the first non-zero one,
    and with none it is skipped (recorded), not failed."""
    import torch
    from safetensors.torch import save_file

    from tina_sweep.trial.evaluate.vllm_backend import EvalTarget
    from tina_sweep.trial.evaluate.vllm_backend import adapter_to_check

    def adapter(name: str, b_value: float) -> EvalTarget:
        folder = tmp_path / name
        folder.mkdir()
        save_file({"base_model.model.layers.0.q_proj.lora_A.weight": torch.ones(2, 8),
                   "base_model.model.layers.0.q_proj.lora_B.weight": torch.full((8, 2), b_value)},
                  str(folder / "adapter_model.safetensors"))
        return EvalTarget(name, folder, tmp_path / "eval" / name, 0)

    zero, moved = adapter("zero", 0.0), adapter("moved", 0.01)
    assert adapter_to_check([zero, moved]) is moved
    assert adapter_to_check([zero]) is None
