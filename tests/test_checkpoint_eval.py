"""Checkpoint-wise evaluation: every K-th saved checkpoint is evaluated into eval/checkpoint-N/ and reported in
result.json's ``checkpoints`` block, with its cost counted in the evaluation's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import smoke_spec
from tina_sweep.run.job import checkpoints_to_evaluate, run_job
from tina_sweep.trial.trial import Trial


def test_every_kth_checkpoint_before_the_final_step():
    saved = {step: Path(f"checkpoint-{step}") for step in (10, 20, 30, 40, 45)}
    assert list(checkpoints_to_evaluate(saved, 1, 45)) == [10, 20, 30, 40]
    assert list(checkpoints_to_evaluate(saved, 2, 45)) == [20, 40]
    assert list(checkpoints_to_evaluate(saved, 3, 45)) == [30]
    assert list(checkpoints_to_evaluate(saved, 5, 45)) == []


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory, tiny_model_dir):
    """A smoke trial (2 steps, a checkpoint every step) run with --eval-checkpoints 1."""
    trial_dir = tmp_path_factory.mktemp("checkpointed") / "trial"
    job = Trial("rank=4-s42-ckpt", "trial", smoke_spec(), {"lora.rank": 4})
    result = run_job(job, trial_dir, {"cpu": 0.1}, 1, None, None, 1).to_json()
    return trial_dir, result


def test_result_has_the_checkpoints_block(checkpointed):
    trial_dir, result = checkpointed
    assert json.loads((trial_dir / "result.json").read_text()) == json.loads(json.dumps(result))
    block = result["checkpoints"]
    assert list(block) == ["checkpoint-1", "checkpoint-2"]
    for name, entry in block.items():
        step = int(name.split("-")[1])
        assert set(entry) == {"step", "pass_at_1", "average", "eval_dir", "eval_seconds"}
        assert entry["step"] == step and entry["eval_dir"] == f"eval/checkpoint-{step}"
        assert set(entry["pass_at_1"]) == {"arithmetic"} and entry["average"] == entry["pass_at_1"]["arithmetic"]
        outcomes = (trial_dir / entry["eval_dir"] / "arithmetic.jsonl").read_text().splitlines()
        assert len(outcomes) == 8  # the smoke benchmark: 8 problems
        rate = sum(json.loads(line)["success_rate"] for line in outcomes) / len(outcomes)
        assert rate == pytest.approx(entry["pass_at_1"]["arithmetic"])
    # the final step is the final adapter (same weights): its evaluation is reused, not repeated
    assert block["checkpoint-2"]["pass_at_1"] == result["pass_at_1"] and block["checkpoint-2"]["eval_seconds"] == 0
    assert (trial_dir / "eval/checkpoint-2/arithmetic.jsonl").read_text() == \
        (trial_dir / "eval/arithmetic.jsonl").read_text()
    assert block["checkpoint-1"]["eval_seconds"] > 0


def test_checkpoint_cost_counts_as_evaluation(checkpointed):
    _, result = checkpointed
    checkpoint_seconds = sum(c["eval_seconds"] for c in result["checkpoints"].values())
    assert result["cost"]["eval_seconds"] > checkpoint_seconds > 0
    assert result["cost"]["eval_tokens"] > result["benchmarks"]["arithmetic"]["generated_tokens"]


def test_training_keeps_every_checkpoint(checkpointed):
    trial_dir, _ = checkpointed
    assert json.loads((trial_dir / "grpo_config.json").read_text())["save_total_limit"] is None
    assert sorted(p.name for p in (trial_dir / "checkpoints").glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]



def test_vllm_backend_evaluates_final_adapter_and_checkpoints_from_one_engine(tmp_path, tiny_model_dir, monkeypatch):
    """With eval.backend vllm the final adapter and the chosen checkpoints share one engine and one generate call
    (vLLM needs a GPU: its LLM is a stand-in that answers 2 under the final adapter, 3 under a checkpoint)."""
    import tina_sweep.trial.evaluate.vllm_backend as vb
    from test_backends import FakeLLM, FakeParams, FakeRequest, _Choice, _Output

    class ByAdapter(FakeLLM):
        def generate(self, prompts, params, lora_request=None, use_tqdm=False):
            self.calls.append((list(prompts), params.kwargs, list(lora_request)))
            text = {"rank=4-s42-vllm": "\\boxed{2}", "rank=4-s42-vllm/checkpoint-1": "\\boxed{3}"}
            return [_Output([_Choice(text[r.lora_name], [1, 2]) for _ in range(params.kwargs["n"])])
                    for r in lora_request]

    monkeypatch.setattr(vb, "_default_classes", lambda: (ByAdapter, FakeRequest, FakeParams))
    FakeLLM.instances = []
    job = Trial("rank=4-s42-vllm", "trial", smoke_spec(**{"eval.backend": "vllm"}), {"lora.rank": 4})
    result = run_job(job, tmp_path / "trial", {"cpu": 0.1}, 1, None, None, 1).to_json()
    (engine,) = FakeLLM.instances  # the base model loaded once for the adapter and its checkpoint
    (call,) = engine.calls
    prompts, _, requests = call
    assert len(prompts) == 16
    assert [r.lora_name for r in requests] == ["rank=4-s42-vllm"] * 8 + ["rank=4-s42-vllm/checkpoint-1"] * 8
    assert requests[0].lora_path == str((tmp_path / "trial" / "adapter").resolve())
    assert requests[8].lora_path == str((tmp_path / "trial" / "checkpoints" / "checkpoint-1").resolve())
    answers = [json.loads(line)["answers"] for line in (tmp_path / "trial/eval/arithmetic.jsonl").read_text().splitlines()]
    twos = sum(a == ["2"] for a in answers) / 8
    assert result["pass_at_1"]["arithmetic"] == pytest.approx(twos)
    threes = sum(json.loads(line)["answers"] == ["3"]
                 for line in (tmp_path / "trial/eval/checkpoint-1/arithmetic.jsonl").read_text().splitlines()) / 8
    assert result["checkpoints"]["checkpoint-1"]["pass_at_1"]["arithmetic"] == pytest.approx(threes)
    assert result["checkpoints"]["checkpoint-2"]["pass_at_1"] == result["pass_at_1"]
    assert result["cost"]["eval_tokens"] == 16 * 2
