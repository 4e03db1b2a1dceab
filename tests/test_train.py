"""Training: a real two-step GRPO / Dr. GRPO run of the tiny model, and the config TRL receives."""

from __future__ import annotations

import json

import pytest

from conftest import smoke_spec, smoke_tree
from tina_sweep.trial.algorithms import ALGORITHMS as ALGORITHM_FIELDS
from tina_sweep.trial.train.trainer import grpo_config, last_checkpoint, lora_config

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
    fields = ALGORITHM_FIELDS[spec.algorithm.name]  # every TRL field of the algorithm, as the trainer saved it
    assert {name: saved[name] for name in fields} == fields
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

    from tina_sweep.trial.models import load_model_and_tokenizer

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
    from tina_sweep.trial.train.trainer import train_trial

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
    from tina_sweep.trial.train.trainer import train_trial

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


# ------------------------------------------------------------------ the global batch (issue 12, item 2)

def _tina_global_prompts() -> tuple[int, int]:
    """Tina's prompts per optimizer step and its training processes, read from quotes of its recipe and launch
    script: per_device_train_batch_size x gradient_accumulation_steps x processes / num_generations."""
    import re

    from tina_sweep.trial.tina_source import quote

    recipe = {}
    for key in ("per_device_train_batch_size", "gradient_accumulation_steps", "num_generations"):
        recipe.update(quote(f"training.recipe.limr.{key}").yaml_value())
    gpus = quote("training.launch.paper.gpus").text
    assert "GPU_COUNT=$(python -c \"import torch; print(torch.cuda.device_count())\")" in gpus
    processes = len(re.search(r"CUDA_VISIBLE_DEVICES=([\d,]+)", gpus).group(1).split(","))
    assert '--num_processes="${GPU_COUNT}"' in quote("training.launch.paper.num_processes").text
    latest = quote("training.launch.latest.gpus").text  # the latest era: the same two GPUs, "make sure it is 2"
    assert len(re.search(r"CUDA_VISIBLE_DEVICES=([\d,]+)", latest).group(1).split(",")) == processes
    assert f"make sure it is {processes} GPUs" in latest
    assert '--num_processes="${GPU_COUNT}"' in quote("training.launch.latest.num_processes").text
    per_step = recipe["per_device_train_batch_size"] * recipe["gradient_accumulation_steps"] * processes
    assert per_step % recipe["num_generations"] == 0
    return per_step // recipe["num_generations"], processes


@pytest.mark.parametrize("processes", [1, 2, 4])
def test_paper_preset_global_batch_is_tinas(tmp_path, processes):
    from tina_sweep.trial.spec import TrialSpec
    from tina_sweep.study.recipes import preset as scale_preset
    from tina_sweep.trial.train.trainer import grpo_config_kwargs

    tina_prompts, tina_processes = _tina_global_prompts()
    assert (tina_prompts, tina_processes) == (8, 2)
    spec = TrialSpec.model_validate(scale_preset("paper"))
    assert spec.training.global_batch_processes == tina_processes
    assert spec.training.global_prompts_per_step == tina_prompts
    kwargs = grpo_config_kwargs(spec, tmp_path, use_cpu=False, processes=processes)
    completions = kwargs["per_device_train_batch_size"] * kwargs["gradient_accumulation_steps"] * processes
    assert completions // kwargs["num_generations"] == tina_prompts
    assert kwargs["steps_per_generation"] == kwargs["gradient_accumulation_steps"]  # one generation per step


def test_accumulation_scales_with_the_world_size(tmp_path):
    spec = smoke_spec(**{"training.gradient_accumulation_steps": 2, "training.global_batch_processes": 2,
                         "training.prompts_per_step": 3, "algorithm.num_generations": 2})
    assert spec.training.global_prompts_per_step == 12
    for processes, accumulation in ((1, 4), (2, 2), (4, 1)):
        config = grpo_config(spec, tmp_path, True, processes=processes)
        assert config.gradient_accumulation_steps == accumulation and config.per_device_train_batch_size == 6
        assert 3 * accumulation * processes == 12
    # without a process count: the processes the global batch is defined for (the recipe's own launch)
    assert grpo_config(spec, tmp_path, True).gradient_accumulation_steps == 2


@pytest.mark.parametrize("processes", [3, 8])
def test_a_world_size_that_cannot_hold_the_global_batch_is_one_line(tmp_path, processes):
    from tina_sweep.trial.train.trainer import grpo_config_kwargs

    spec = smoke_spec(**{"training.gradient_accumulation_steps": 2, "training.global_batch_processes": 2})
    with pytest.raises(ValueError) as error:
        grpo_config_kwargs(spec, tmp_path, True, processes=processes)
    message = str(error.value)
    assert "\n" not in message and message.startswith("training.global_batch_processes:")
    assert "gradient_accumulation_steps 2 x global_batch_processes 2 = 4" in message
    assert f"over {processes} process(es)" in message


def test_global_batch_counts_every_process(tmp_path):
    """Under W processes TRL's generation batch (and the logged mean length) spans all of them: the record, and
    the tokens an attempt is charged for, count W x one process's completions."""
    from types import SimpleNamespace

    from tina_sweep.trial.train.trainer import global_batch, grpo_config_kwargs

    spec = smoke_spec(**{"training.gradient_accumulation_steps": 2, "training.global_batch_processes": 2,
                         "algorithm.num_generations": 2})
    kwargs = grpo_config_kwargs(spec, tmp_path, True, processes=2)
    # GRPOConfig's own rule: generation_batch_size = per_device_train_batch_size x processes x steps_per_generation
    args = SimpleNamespace(**kwargs, generation_batch_size=kwargs["per_device_train_batch_size"] * 2
                           * kwargs["steps_per_generation"])
    assert global_batch(args, spec, 2) == {"prompts_per_step": 4, "completions_per_step": 8, "processes": 2,
                                           "gradient_accumulation_steps": 2, "prompts_per_micro_step": 1,
                                           "defined_for_processes": 2}
    args.generation_batch_size = 4  # a trainer that saw half the batch is refused
    with pytest.raises(RuntimeError, match="the trainer sees 2 prompts per optimizer step, the spec asks for 4"):
        global_batch(args, spec, 2)


def test_world_size_reads_the_launchers_environment(monkeypatch):
    from tina_sweep.trial.train.trainer import world_size

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert world_size() == 1
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert world_size() == 4
    monkeypatch.setenv("WORLD_SIZE", "zero")
    with pytest.raises(ValueError, match="WORLD_SIZE: must be a positive integer, got 'zero'"):
        world_size()


# ------------------------------------------------------------------ stop step (issue 12, item 5)

def test_stop_at_step_must_not_pass_the_horizon():
    from pydantic import ValidationError

    from tina_sweep.trial.spec import TrialSpec, first_error_line

    with pytest.raises(ValidationError) as error:
        TrialSpec.model_validate(smoke_tree(**{"training.max_steps": 6, "training.stop_at_step": 7}))
    assert first_error_line(error.value) == "training.stop_at_step: must be <= training.max_steps (6), got 7"
    assert smoke_spec(**{"training.max_steps": 6, "training.stop_at_step": 6}).training.stop_at_step == 6
    assert smoke_spec(**{"training.max_steps": None, "training.stop_at_step": 9}).training.stop_at_step == 9
    assert smoke_spec().training.stop_at_step is None


# A 6-step cosine schedule stopped at step 3, trained with a global batch of 2 processes on one: a checkpoint every
# 2 steps (so step 3's checkpoint is the stop's own), the length reward (normalised per prompt group) beside
# accuracy, two prompts per optimizer step (one per micro-step, accumulated twice).
STOPPED = {"training.max_steps": 6, "training.stop_at_step": 3, "training.save_steps": 2,
           "training.lr_scheduler_type": "cosine", "training.global_batch_processes": 2,
           "algorithm.rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "length", "weight": 1.0}]}


class _Calls:
    """Records every reward call's prompts (by reward name), wrapping tina_sweep.trial.train.trainer.reward_function."""

    def __init__(self):
        self.prompts: dict[str, list[list]] = {}

    def wrap(self, make):
        def reward_function(name, *args, **kwargs):
            inner = make(name, *args, **kwargs)

            def recorded(prompts, completions, **rest):
                self.prompts.setdefault(name, []).append(list(prompts))
                return inner(prompts=prompts, completions=completions, **rest)

            recorded.__name__ = name
            return recorded

        return reward_function


class _Progress:
    def __init__(self):
        self.messages = []

    def put(self, message):
        self.messages.append(message)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, tiny_model_dir):
    """The STOPPED trial run as a job (train, evaluate every checkpoint), recording reward calls and progress."""
    import tina_sweep.trial.train.trainer as train_module
    from tina_sweep.run.job import run_job
    from tina_sweep.trial.trial import Trial

    calls, progress = _Calls(), _Progress()
    original = train_module.reward_function
    train_module.reward_function = calls.wrap(original)
    try:
        trial_dir = tmp_path_factory.mktemp("stopped") / "trial"
        result = run_job(Trial("stopped", "trial", smoke_spec(**STOPPED), {}), trial_dir, {"cpu": 0.1}, 1, progress,
                         None, 1).to_json()
    finally:
        train_module.reward_function = original
    return trial_dir, result, calls, progress


@pytest.fixture(scope="module")
def full_horizon(tmp_path_factory, tiny_model_dir):
    """The same trial without the stop: all 6 steps."""
    from tina_sweep.trial.train.trainer import train_trial

    spec = smoke_spec(**{**STOPPED, "training.stop_at_step": None})
    return train_trial(spec, tmp_path_factory.mktemp("full") / "trial")


def test_stop_at_step_ends_training_there_and_keeps_the_schedule(stopped, full_horizon):
    import math

    trial_dir, result, _, _ = stopped
    log = [json.loads(line) for line in (trial_dir / "train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2, 3]
    assert [entry["step"] for entry in full_horizon.log_history] == [1, 2, 3, 4, 5, 6]
    stopped_rates = [entry["learning_rate"] for entry in log]
    assert stopped_rates == [entry["learning_rate"] for entry in full_horizon.log_history[:3]]
    # a 6-step cosine (lr 1e-3: 1e-3 x (1 + cos(pi k / 6)) / 2), not a 3-step one ((1 + cos(pi k / 3)) / 2)
    assert stopped_rates == pytest.approx([1e-3 * (1 + math.cos(math.pi * k / 6)) / 2 for k in range(3)])
    assert stopped_rates[1] != pytest.approx(1e-3 * (1 + math.cos(math.pi / 3)) / 2)
    state = json.loads((trial_dir / "checkpoints" / "checkpoint-3" / "trainer_state.json").read_text())
    assert (state["global_step"], state["max_steps"]) == (3, 6)


def test_stop_step_checkpoint_adapter_and_records(stopped):
    trial_dir, result, _, progress = stopped
    # save_steps 2 saves step 2; the stop saves step 3 (its own checkpoint), nothing after it
    assert sorted(p.name for p in (trial_dir / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    assert (trial_dir / "adapter" / "adapter_model.safetensors").read_bytes() == \
        (trial_dir / "checkpoints" / "checkpoint-3" / "adapter_model.safetensors").read_bytes()
    assert result["train_steps"] == 3
    assert [a["step"] for a in result["train_attempts"]] == [3]
    assert list(result["checkpoints"]) == ["checkpoint-2", "checkpoint-3"]
    assert result["checkpoints"]["checkpoint-3"]["pass_at_1"] == result["pass_at_1"]
    assert json.loads((trial_dir / "train_progress.json").read_text())["step"] == 3
    steps = [(step, total) for _, kind, *rest in progress.messages if kind == "step" for step, total in [rest]]
    assert steps == [(1, 3), (2, 3), (3, 3)]  # progress counts to the stop, not the horizon


def test_global_batch_recorded_and_seen_by_the_rewards(stopped):
    trial_dir, result, calls, _ = stopped
    # prompts_per_step 1 x gradient_accumulation_steps 1 x global_batch_processes 2 on one process: accumulate 2
    expected = {"prompts_per_step": 2, "completions_per_step": 4, "processes": 1, "gradient_accumulation_steps": 2,
                "prompts_per_micro_step": 1, "defined_for_processes": 2}
    assert result["global_batch"] == expected
    assert json.loads((trial_dir / "grpo_config.json").read_text())["gradient_accumulation_steps"] == 2
    # TRL 1.16 scores the whole generation batch in one call per optimizer step: 2 prompts x 2 generations
    for name in ("accuracy", "length"):
        assert [len(prompts) for prompts in calls.prompts[name]] == [4, 4, 4]
    for prompts in calls.prompts["length"]:  # RepeatSampler order: each prompt's group is a consecutive run
        assert prompts[0] == prompts[1] and prompts[2] == prompts[3]
    # the attempt's generated tokens: each step's mean completion length x its 4 completions
    log = [json.loads(line) for line in (trial_dir / "train_log.jsonl").read_text().splitlines()]
    tokens = sum(round(entry["completions/mean_length"] * 4) for entry in log)
    assert result["cost"]["train_tokens"] == tokens


def test_a_stopped_trial_rerun_reuses_its_last_checkpoint(stopped):
    from tina_sweep.trial.train.trainer import train_trial

    trial_dir, _, _, _ = stopped
    def entries() -> list[dict]:
        return [json.loads(line) for line in (trial_dir / "train_log.jsonl").read_text().splitlines()]

    before = entries()
    again = train_trial(smoke_spec(**STOPPED), trial_dir)
    assert again.resumed_from == "checkpoint-3" and again.steps == 3
    assert entries() == before  # nothing trained: the log is the checkpoint's own (steps 1-3)
    assert sorted(p.name for p in (trial_dir / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]


def test_deferred_evaluation_keeps_the_global_batch(tmp_path):
    """trained.json (training now, evaluation later through a shared engine) carries the global batch on to
    result.json."""
    from tina_sweep.run.job import Trained

    batch = {"prompts_per_step": 8, "completions_per_step": 32, "processes": 1, "gradient_accumulation_steps": 8,
             "prompts_per_micro_step": 1, "defined_for_processes": 2}
    (tmp_path / "adapter").mkdir()
    Trained(1.0, 10, 3, str(tmp_path / "adapter"), None, 0.5, [], batch).write(tmp_path)
    assert Trained.read(tmp_path).global_batch == batch


TWO_PROCESS = {"training.max_steps": 2, "training.save_steps": 2, "training.global_batch_processes": 2,
               "training.gradient_accumulation_steps": 2,
               "algorithm.rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "length", "weight": 1.0}]}


def test_two_processes_split_the_global_batch(tmp_path, tiny_model_dir):
    """A real data-parallel run: ``python -m tina_sweep.trial.train.trainer`` under torchrun with 2 CPU processes (gloo). Each
    accumulates 2 micro-steps where one process alone accumulates 4; every optimizer step still generates 4 prompts
    x 2 completions (TRL's generation batch spans both processes), the length reward's groups hold together on each
    process, and the tokens charged count both processes' completions."""
    import os
    import socket
    import subprocess
    import sys

    spec = smoke_spec(**TWO_PROCESS)
    (tmp_path / "spec.json").write_text(spec.model_dump_json())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                           "127.0.0.1", "--master_port", str(port), "-m", "tina_sweep.trial.train.trainer",
                           str(tmp_path / "spec.json"), str(tmp_path / "trial")],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((tmp_path / "trial" / "grpo_config.json").read_text())
    assert (config["gradient_accumulation_steps"], config["steps_per_generation"]) == (2, 2)
    assert config["per_device_train_batch_size"] == 2 and config["generation_batch_size"] == 8
    assert grpo_config(spec, tmp_path, True, processes=1).gradient_accumulation_steps == 4  # one process: 4
    log = [json.loads(line) for line in (tmp_path / "trial" / "train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2] and all("rewards/length/mean" in entry for entry in log)
    printed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 2 and {p["steps"] for p in printed} == {2}
    main = max(printed, key=lambda p: p["generated_tokens"])  # the main process keeps the cost records
    assert main["generated_tokens"] == sum(round(entry["completions/mean_length"] * 8) for entry in log)


def test_the_launcher_refuses_a_world_size_that_cannot_hold_the_global_batch(tmp_path, monkeypatch, capsys):
    from tina_sweep.trial.train.trainer import main

    (tmp_path / "spec.json").write_text(smoke_spec(**TWO_PROCESS).model_dump_json())
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "spec.json"), str(tmp_path / "trial")])
    assert str(stop.value) == ("python -m tina_sweep.trial.train.trainer: training.global_batch_processes: gradient_accumulation_steps "
                               "2 x global_batch_processes 2 = 4 micro-steps per optimizer step cannot be split evenly "
                               "over 3 process(es); launch with a number of processes that divides 4")
    assert not (tmp_path / "trial").exists()


def test_preflight_needs_one_global_batch_of_problems():
    from tina_sweep.trial.spec import ConfigError
    from tina_sweep.run.preflight import check_training_size

    spec = smoke_spec(**{"training.gradient_accumulation_steps": 2, "training.global_batch_processes": 2,
                         "dataset.limit": 3})
    check_training_size(spec, 4)  # 1 prompt x 2 micro-steps x 2 processes = 4 prompts per optimizer step
    with pytest.raises(ConfigError) as error:
        check_training_size(spec, 3)
    assert str(error.value) == ("dataset.limit: 3 training problem(s), fewer than one optimizer step takes "
                                "(training.prompts_per_step 1 x training.gradient_accumulation_steps 2 x "
                                "training.global_batch_processes 2 = 4), got 3")


@pytest.mark.parametrize("processes_defined", [1, 2])
def test_an_epoch_counts_global_batches(tmp_path, tiny_model_dir, processes_defined):
    """Recipes without max_steps train one epoch: 4 problems at 1 prompt per optimizer step are 4 steps, at the
    batch of 2 processes (2 prompts, accumulated on this one) 2 steps, as Tina's 2 processes took."""
    from tina_sweep.trial.train.trainer import train_trial

    spec = smoke_spec(**{"training.max_steps": None, "dataset.limit": 4, "training.save_steps": 100,
                         "training.global_batch_processes": processes_defined})
    outcome = train_trial(spec, tmp_path / "trial")
    assert outcome.steps == 4 // processes_defined
    assert outcome.global_batch["prompts_per_step"] == processes_defined


@pytest.mark.parametrize("setting, native, expected", [("off", True, False), ("bf16", True, True),
                                                        ("bf16", False, False)])
def test_cpu_autocast_is_bf16_only_where_the_cpu_computes_bf16(tmp_path, monkeypatch, setting, native, expected):
    """training.cpu_autocast bf16 turns on TRL's bf16 mixed precision on a CPU with native bf16, fp32 elsewhere."""
    import tina_sweep.trial.train.trainer as trainer

    monkeypatch.setattr(trainer, "cpu_computes_bf16", lambda: native)
    config = grpo_config(smoke_spec(**{"training.cpu_autocast": setting}), tmp_path, True)
    assert config.bf16 is expected and config.use_cpu
    assert smoke_spec().training.cpu_autocast == "off"  # the default, and absent from the trial hash
    assert "cpu_autocast" not in smoke_spec().training.model_dump()
