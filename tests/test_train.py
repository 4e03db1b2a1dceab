"""Training: a real two-step GRPO / Dr. GRPO run of the tiny model, and the config TRL receives."""

from __future__ import annotations

import json

import pytest

from conftest import smoke_spec
from tina_sweep.train import ALGORITHM_FIELDS, grpo_config, last_checkpoint, lora_config

LOG_KEYS = ("reward", "reward_std", "completions/mean_length", "loss")


@pytest.mark.parametrize("algorithm,loss_type,scale_rewards", [("dr_grpo", "dr_grpo", "none"),
                                                              ("grpo", "grpo", "group")])
def test_grpo_config_fields(tmp_path, algorithm, loss_type, scale_rewards):
    spec = smoke_spec(**{"algorithm.name": algorithm, "algorithm.beta": 0.02, "algorithm.num_generations": 3,
                         "training.prompts_per_step": 2, "training.learning_rate": 3e-4, "training.max_steps": 7,
                         "training.gradient_accumulation_steps": 2, "algorithm.top_k": 5,
                         "algorithm.rewards": [{"name": "accuracy", "weight": 2.0}, {"name": "boxed_format", "weight": 0.5}],
                         "seed": 11})
    config = grpo_config(spec, tmp_path / "out", True)
    assert ALGORITHM_FIELDS[algorithm] == {"loss_type": loss_type, "scale_rewards": scale_rewards}
    assert config.loss_type == loss_type and config.scale_rewards == scale_rewards
    assert config.beta == 0.02
    assert config.num_generations == 3
    assert config.per_device_train_batch_size == 6  # prompts_per_step x num_generations
    assert config.gradient_accumulation_steps == 2
    assert config.learning_rate == 3e-4
    assert config.max_steps == 7
    assert config.top_k == 5 and config.temperature == 1.0
    assert config.max_completion_length == 8
    assert config.reward_weights == [2.0, 0.5]
    assert config.seed == 11 and config.data_seed == 11
    assert config.use_cpu is True and config.bf16 is False and config.gradient_checkpointing is False
    assert config.output_dir == str(tmp_path / "out")
    assert config.lr_scheduler_type == "constant"
    assert config.num_iterations == 1 and config.epsilon == 0.2


def test_cosine_with_min_lr_passes_min_lr_rate(tmp_path):
    spec = smoke_spec(**{"training.lr_scheduler_type": "cosine_with_min_lr", "training.min_lr_rate": 0.2,
                         "training.warmup_ratio": 0.1})
    config = grpo_config(spec, tmp_path, True)
    assert config.lr_scheduler_type == "cosine_with_min_lr"
    assert config.lr_scheduler_kwargs == {"min_lr_rate": 0.2}
    assert config.warmup_steps == 0.1
    assert grpo_config(smoke_spec(), tmp_path, True).lr_scheduler_kwargs in (None, {})


def test_lora_config_follows_spec():
    config = lora_config(smoke_spec(**{"lora.rank": 6, "lora.dropout": 0.1, "lora.target_modules": ["q_proj"]}))
    assert config.r == 6 and config.lora_alpha == 24 and config.lora_dropout == 0.1
    assert set(config.target_modules) == {"q_proj"}
    assert lora_config(smoke_spec(**{"lora.rank": 6, "lora.alpha": 5})).lora_alpha == 5


def test_trainer_received_the_algorithm_config(trained):
    spec, args = trained.spec, trained.received_args
    expected = ALGORITHM_FIELDS[spec.algorithm.name]
    assert args.loss_type == expected["loss_type"]
    assert args.scale_rewards == expected["scale_rewards"]
    assert args.beta == spec.algorithm.beta
    assert args.num_generations == spec.algorithm.num_generations == 2
    assert args.per_device_train_batch_size == spec.training.prompts_per_step * spec.algorithm.num_generations
    assert args.learning_rate == spec.training.learning_rate
    assert args.max_steps == 2


def test_saved_grpo_config(trained):
    spec = trained.spec
    saved = json.loads((trained.trial_dir / "grpo_config.json").read_text())
    if spec.algorithm.name == "dr_grpo":
        assert (saved["loss_type"], saved["scale_rewards"]) == ("dr_grpo", "none")
    else:
        assert (saved["loss_type"], saved["scale_rewards"]) == ("grpo", "group")
    assert saved["beta"] == spec.algorithm.beta
    assert saved["num_generations"] == spec.algorithm.num_generations
    assert saved["per_device_train_batch_size"] == spec.training.prompts_per_step * spec.algorithm.num_generations
    assert saved["learning_rate"] == spec.training.learning_rate
    assert saved["max_steps"] == 2 and saved["seed"] == spec.seed
    assert saved["temperature"] == spec.algorithm.temperature
    assert saved["max_completion_length"] == spec.algorithm.max_completion_length


def test_adapter_loads_and_matches_spec(trained, tiny_model_dir):
    import torch
    from peft import PeftModel

    from tina_sweep.train import load_model_and_tokenizer

    adapter_dir = trained.outcome.adapter_dir
    assert adapter_dir == trained.trial_dir / "adapter"
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["r"] == trained.spec.lora.rank
    assert config["lora_alpha"] == trained.spec.lora.resolved_alpha
    assert set(config["target_modules"]) == {"q_proj", "v_proj"}
    base, tokenizer = load_model_and_tokenizer("tiny-random-qwen2", "float32")
    model = PeftModel.from_pretrained(base, str(adapter_dir))
    lora_weights = {n: p for n, p in model.named_parameters() if "lora_B" in n}
    assert len(lora_weights) == 2 * 2  # 2 layers x (q_proj, v_proj)
    for name, weight in lora_weights.items():
        assert weight.shape[1] == trained.spec.lora.rank
    moved = any(float(w.abs().sum()) > 0 for w in lora_weights.values())
    if len(trained.spec.algorithm.rewards) > 1:
        # rewards that vary within a group: training moved B away from its zero initialisation
        assert moved
    else:
        # accuracy alone on a random model: every reward is 0, every advantage 0, so nothing moves
        assert not moved
    ids = tokenizer("What is 2 + 3?", return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    assert logits.shape[-1] == len(tokenizer)
    assert torch.isfinite(logits).all()


def test_train_log_one_line_per_step(trained):
    lines = (trained.trial_dir / "train_log.jsonl").read_text().splitlines()
    assert len(lines) == 2
    entries = [json.loads(line) for line in lines]
    assert [e["step"] for e in entries] == [1, 2]
    for entry in entries:
        for key in LOG_KEYS:
            assert isinstance(entry[key], (int, float)), key
        names = [r.name for r in trained.spec.algorithm.rewards]
        for name in names:
            assert f"rewards/{name}/mean" in entry
        if names == ["accuracy"]:
            assert entry["reward"] == 0.0 and entry["reward_std"] == 0.0  # a random model is never right
        else:
            assert entry["reward"] == pytest.approx(sum(entry[f"rewards/{n}/mean"] for n in names))
            assert entry["reward_std"] >= 0
        assert 0 < entry["completions/mean_length"] <= trained.spec.algorithm.max_completion_length
    assert trained.outcome.log_history == entries
    completions_per_step = trained.spec.training.prompts_per_step * trained.spec.algorithm.num_generations
    assert trained.outcome.generated_tokens == sum(round(e["completions/mean_length"] * completions_per_step)
                                                   for e in entries)
    assert trained.outcome.steps == 2
    assert trained.outcome.wall_seconds > 0
    assert trained.outcome.resumed_from is None


def test_checkpoints_written(trained):
    checkpoints = trained.trial_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    for name in ("checkpoint-1", "checkpoint-2"):
        assert (checkpoints / name / "trainer_state.json").is_file()
        assert (checkpoints / name / "adapter_model.safetensors").is_file()
    assert last_checkpoint(checkpoints) == checkpoints / "checkpoint-2"


def test_last_checkpoint_ignores_incomplete(tmp_path):
    for step in (2, 10, 9, 12):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
        (folder / "adapter_model.safetensors").write_bytes(b"weights")
        (folder / "adapter_config.json").write_text("{}")
    (tmp_path / "checkpoint-11").mkdir()  # no trainer state: a checkpoint cut off mid-write
    (tmp_path / "checkpoint-12" / "trainer_state.json").write_text('{"global_step": 12, "log_hi')  # torn
    (tmp_path / "checkpoint-9" / "adapter_model.safetensors").unlink()
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    assert last_checkpoint(tmp_path / "nothing") is None


@pytest.fixture(scope="module")
def step_calls(tmp_path_factory, tiny_model_dir):
    """A two-step training with no checkpoint, recording every on_step call."""
    from tina_sweep.train import train_trial

    trial_dir = tmp_path_factory.mktemp("on-step")
    spec = smoke_spec(**{"training.save_steps": 5})
    calls = []
    outcome = train_trial(spec, trial_dir, on_step=lambda step, total, logs: calls.append((step, total, dict(logs))))
    return trial_dir, outcome, calls


def test_on_step_callback_reports_each_step(step_calls):
    trial_dir, outcome, calls = step_calls
    assert [(step, total) for step, total, _ in calls] == [(1, 2), (2, 2)]
    assert outcome.steps == 2
    # save_steps 5 > max_steps 2: only the final step is checkpointed
    assert [p.name for p in (trial_dir / "checkpoints").glob("checkpoint-*")] == ["checkpoint-2"]
    assert (trial_dir / "adapter" / "adapter_model.safetensors").is_file()


def test_on_step_callback_gets_that_steps_logs(step_calls):
    _, outcome, calls = step_calls
    assert [logs for _, _, logs in calls] == [
        {k: v for k, v in entry.items() if k != "step"} for entry in outcome.log_history]


@pytest.fixture(scope="module")
def rerun(step_calls):
    """The same trial trained again in its folder (a retried job): it resumes from the last checkpoint."""
    from tina_sweep.train import train_trial

    trial_dir, _, _ = step_calls
    before = (trial_dir / "train_log.jsonl").read_text()
    return trial_dir, before, train_trial(smoke_spec(**{"training.save_steps": 5}), trial_dir)


def test_rerun_resumes_from_last_checkpoint(rerun):
    trial_dir, _, again = rerun
    assert again.resumed_from == "checkpoint-2"
    assert (trial_dir / "adapter" / "adapter_model.safetensors").is_file()


def test_rerun_does_not_train_past_max_steps(rerun):
    trial_dir, before, again = rerun
    assert again.steps == 2
    assert [json.loads(line)["step"] for line in (trial_dir / "train_log.jsonl").read_text().splitlines()] == [1, 2]
    def rewards(text: str) -> list[tuple[int, float]]:
        return [(entry["step"], entry["reward"]) for entry in map(json.loads, text.splitlines())]

    assert rewards((trial_dir / "train_log.jsonl").read_text()) == rewards(before)
