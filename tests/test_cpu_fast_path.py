"""training.cpu_fast_path: the log-probs, gradients and rollouts of TRL's own GRPOTrainer path (called here as
``GRPOTrainer.<method>(trainer, ...)``), computed with each prompt once and prepacked rollout weights."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig
from trl import GRPOConfig, GRPOTrainer

from conftest import smoke_spec
from tina_sweep.trial.tiny import build_tiny_model, build_tiny_tokenizer
from tina_sweep.trial.train.cpu_fast_path import (FastCpuGRPOTrainer, generate_sharing_prompts, prepacked_linears,
                                                  prepacking_available, prompt_groups, shared_prompt_logps)

PROMPTS = ["What is 1 + 2 ?", "How many is 12 and 7 and 30 ?"]  # different lengths: the shorter one is left-padded
GENERATIONS = 3


def make_trainer(tmp_path, bf16: bool = False) -> FastCpuGRPOTrainer:
    tokenizer = build_tiny_tokenizer()
    args = GRPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, bf16=bf16, report_to="none",
                      per_device_train_batch_size=len(PROMPTS) * GENERATIONS, num_generations=GENERATIONS,
                      max_completion_length=6, max_steps=1, logging_steps=1, temperature=1.0, top_k=0)
    trainer = FastCpuGRPOTrainer(
        model=build_tiny_model(len(tokenizer)), args=args, processing_class=tokenizer,
        reward_funcs=[lambda completions, **kwargs: [0.0] * len(completions)],
        train_dataset=Dataset.from_list([{"prompt": prompt} for prompt in PROMPTS]),
        peft_config=LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                               target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                               "down_proj"]))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in trainer.model.named_parameters():
            if "lora_B" in name:  # a trained adapter, so that the LoRA branch changes the numbers
                parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
    return trainer


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    return make_trainer(tmp_path_factory.mktemp("fast_path"))


def prompt_completion_batch(tokenizer):
    """GRPO's batch: each prompt (left-padded) repeated GENERATIONS times, then completions of different lengths
    (right-padded, masked), as TRL concatenates them."""
    prompt_ids = [tokenizer(prompt, add_special_tokens=False)["input_ids"] for prompt in PROMPTS]
    width = max(map(len, prompt_ids))
    completions = [[5, 6, 7, 8, 3], [9, 3], [10, 11, 12, 13, 14], [15, 3], [16, 17, 18, 3], [19, 20, 21, 22, 23]]
    ids, mask = [], []
    for row, completion in enumerate(completions):
        prompt = prompt_ids[row // GENERATIONS]
        pad = width - len(prompt)
        ids.append([0] * pad + prompt + completion + [0] * (5 - len(completion)))
        mask.append([0] * pad + [1] * len(prompt) + [1] * len(completion) + [0] * (5 - len(completion)))
    return torch.tensor(ids), torch.tensor(mask), 5


def test_prompt_groups_finds_each_distinct_prompt():
    ids = torch.tensor([[0, 4, 5], [0, 4, 5], [7, 8, 9], [0, 4, 5], [7, 8, 9]])
    mask = (ids != 0).long()
    first, inverse = prompt_groups(ids, mask)
    assert torch.equal(ids[first][inverse], ids)
    assert sorted(first.tolist()) == [0, 2]
    assert prompt_groups(ids[:3][1:], mask[:3][1:]) is None  # all distinct: nothing to share
    # the same tokens with another mask are another prompt
    assert prompt_groups(ids[:2], torch.tensor([[0, 1, 1], [1, 1, 1]])) is None


@pytest.mark.parametrize("compute_entropy", [False, True])
def test_shared_prompt_logps_match_trl(trainer, compute_entropy):
    ids, mask, keep = prompt_completion_batch(trainer.processing_class)
    scored = mask[:, -keep:].bool()
    assert shared_prompt_logps(trainer.model, ids, mask, keep, 1.0, False) is not None  # the shared path runs
    fast_logps, fast_entropy, _ = trainer._get_per_token_logps_and_entropies(
        trainer.model, ids, mask, keep, compute_entropy=compute_entropy)
    trl_logps, trl_entropy, _ = GRPOTrainer._get_per_token_logps_and_entropies(
        trainer, trainer.model, ids, mask, keep, compute_entropy=compute_entropy)
    assert fast_logps.shape == trl_logps.shape == (6, keep)
    torch.testing.assert_close(fast_logps[scored], trl_logps[scored], atol=1e-5, rtol=1e-5)
    assert fast_logps[scored].abs().min() > 0  # real log-probs, not zeros
    if compute_entropy:
        torch.testing.assert_close(fast_entropy[scored], trl_entropy[scored], atol=1e-5, rtol=1e-5)
    else:
        assert fast_entropy is None and trl_entropy is None


def test_shared_prompt_gradients_match_trl(trainer):
    ids, mask, keep = prompt_completion_batch(trainer.processing_class)
    scored = mask[:, -keep:].float()
    advantages = torch.linspace(-1, 1, ids.size(0)).unsqueeze(1)  # rows pull in different directions
    gradients = []
    for method in (trainer._get_per_token_logps_and_entropies,
                   lambda *a, **k: GRPOTrainer._get_per_token_logps_and_entropies(trainer, *a, **k)):
        trainer.model.zero_grad(set_to_none=True)
        logps, _, _ = method(trainer.model, ids, mask, keep)
        (logps * scored * advantages).sum().backward()
        gradients.append({name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.requires_grad})
    fast, trl = gradients
    assert fast.keys() == trl.keys() and len(fast) == 2 * 7 * 2  # A and B of 7 layers x 2 decoder layers
    for name in trl:
        torch.testing.assert_close(fast[name], trl[name], atol=1e-6, rtol=1e-4, msg=name)
    assert any(g.abs().max() > 0 for g in trl.values())


@pytest.mark.parametrize("sampled", [True, False])
def test_rollouts_match_trl(trainer, sampled):
    tokenizer = trainer.processing_class
    prompt_ids = [tokenizer(prompt, add_special_tokens=False)["input_ids"]
                  for prompt in PROMPTS for _ in range(GENERATIONS)]
    trainer.generation_config.do_sample = sampled
    try:
        runs = []
        for method in (trainer._generate_single_turn,
                       lambda *a: GRPOTrainer._generate_single_turn(trainer, *a)):
            torch.manual_seed(123)
            completions, logprobs = method(prompt_ids, None, {}, GENERATIONS)
            runs.append(completions)
    finally:
        trainer.generation_config.do_sample = True
    fast, trl = runs
    assert fast == trl
    assert len(fast) == 6 and all(1 <= len(c) <= 6 for c in fast)
    if sampled:  # sampling at temperature 1: the completions of one prompt differ
        assert len({tuple(c) for c in fast[:GENERATIONS]}) > 1


@pytest.mark.skipif(not prepacking_available(), reason="this PyTorch cannot prepack linear weights for oneDNN")
def test_prepacked_linears_swap_frozen_layers_and_restore(trainer):
    model = trainer.model
    ids, mask, _ = prompt_completion_batch(trainer.processing_class)
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=mask).logits
        packed_weights = {}
        with prepacked_linears(model, packed_weights) as swapped:
            frozen = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and not m.weight.requires_grad]
            assert swapped == len(frozen) == 2 * 7 + 1  # the base weights under LoRA and the LM head
            assert all("forward" in vars(m) for m in frozen)
            assert not any("forward" in vars(m) for m in model.modules() if isinstance(m, torch.nn.Linear)
                           and m.weight.requires_grad)  # the LoRA matrices are not packed
            packed = model(input_ids=ids, attention_mask=mask).logits
        assert not any("forward" in vars(m) for m in model.modules() if isinstance(m, torch.nn.Linear))  # restored
        torch.testing.assert_close(packed, plain, atol=1e-5, rtol=1e-5)
        first = {key: value[3] for key, value in packed_weights.items()}
        with prepacked_linears(model, packed_weights):
            pass
        assert all(packed_weights[key][3] is first[key] for key in first)  # unchanged weights: packed once
        head = model.get_output_embeddings()
        head.weight.mul_(2.0)  # an in-place change is repacked
        try:
            with prepacked_linears(model, packed_weights):
                pass
            assert packed_weights[id(head)][3] is not first[id(head)]
        finally:
            head.weight.mul_(0.5)
        with prepacked_linears(model, {}, dtype=torch.bfloat16):
            in_bf16 = model(input_ids=ids, attention_mask=mask).logits
        assert in_bf16.dtype == torch.float32
        assert (in_bf16 - plain).abs().max() < 0.05 * plain.abs().max()


def test_generate_sharing_prompts_is_generate(trainer):
    model, tokenizer = trainer.model, trainer.processing_class
    tokenizer.padding_side = "left"
    batch = tokenizer([p for p in PROMPTS for _ in range(GENERATIONS)], return_tensors="pt", padding=True,
                      add_special_tokens=False)
    settings = dict(max_new_tokens=6, do_sample=True, temperature=1.0, top_k=0, pad_token_id=0)
    outputs = []
    for generate in (generate_sharing_prompts, lambda m, i, a, **k: m.generate(input_ids=i, attention_mask=a, **k)):
        torch.manual_seed(5)
        outputs.append(generate(model, batch["input_ids"], batch["attention_mask"], **settings))
    assert torch.equal(outputs[0], outputs[1])


def test_a_trial_trains_the_same_either_way(tmp_path, monkeypatch):
    """Two smoke trainings from one seed, TRL's path and the fast path: the same rollouts (so the same rewards)
    and the same losses, step by step."""
    import tina_sweep.trial.train.cpu_fast_path as fast_path
    from tina_sweep.trial.train.trainer import train_trial

    calls = {"shared_prompt_logps": 0, "generate_sharing_prompts": 0}
    for name in calls:
        def counted(*args, _original=getattr(fast_path, name), _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(fast_path, name, counted)
    logs = {}
    for fast in (False, True):
        assert calls == {"shared_prompt_logps": 0, "generate_sharing_prompts": 0} or fast
        spec = smoke_spec(**{"training.cpu_fast_path": fast, "training.prompts_per_step": 2,
                             "algorithm.num_generations": 3, "lora.rank": 4,
                             "algorithm.rewards": [{"name": "length", "weight": 1.0}]})
        outcome = train_trial(spec, tmp_path / str(fast))
        logs[fast] = outcome.log_history
        config = json.loads((tmp_path / str(fast) / "grpo_config.json").read_text())
        assert config["per_device_train_batch_size"] == 6
    assert calls == {"shared_prompt_logps": 2, "generate_sharing_prompts": 2}  # one of each per step
    assert len(logs[True]) == len(logs[False]) == 2
    for fast_step, trl_step in zip(logs[True], logs[False]):
        assert fast_step["reward"] == trl_step["reward"]
        assert fast_step["completions/mean_length"] == trl_step["completions/mean_length"]
        assert fast_step["loss"] == pytest.approx(trl_step["loss"], abs=1e-5)
    assert any(step["loss"] != 0 for step in logs[True])


def test_bf16_autocast_goes_through_the_shared_path(tmp_path):
    trainer = make_trainer(tmp_path, bf16=True) if torch.cpu._is_avx512_bf16_supported() else None
    if trainer is None:
        pytest.skip("this CPU has no native bf16")
    ids, mask, keep = prompt_completion_batch(trainer.processing_class)
    scored = mask[:, -keep:].bool()
    fast, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, keep)
    trl, _, _ = GRPOTrainer._get_per_token_logps_and_entropies(trainer, trainer.model, ids, mask, keep)
    assert (fast[scored] - trl[scored]).abs().max() < 0.05  # bf16 products summed in another order
