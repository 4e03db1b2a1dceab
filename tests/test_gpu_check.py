"""The CPU-runnable parts of benchmarks/gpu_check.py: the tiny model on disk, the local study it writes (resolved
at paper scale with vLLM rollouts and vLLM evaluation), merging an adapter, and the summary arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import load_script


@pytest.fixture(scope="module")
def gpu_check():
    return load_script("gpu_check")


@pytest.fixture(scope="module")
def prepared(gpu_check, tmp_path_factory):
    """The study as written on a machine where vllm imports."""
    work = tmp_path_factory.mktemp("gpu-check")
    available = gpu_check.vllm_available
    gpu_check.vllm_available = lambda: True
    try:
        gpu_check.prepare(work)
    finally:
        gpu_check.vllm_available = available
    return work


def test_without_vllm_the_study_uses_transformers_for_rollouts_and_evaluation(gpu_check, tmp_path, monkeypatch):
    monkeypatch.setenv("TINA_GPU_CHECK_VLLM", "0")
    assert gpu_check.vllm_available() is False
    gpu_check.prepare(tmp_path)
    assert json.loads((tmp_path / "prepare.json").read_text())["vllm"] is False
    for trial in gpu_check.trials(tmp_path):
        assert trial.spec.algorithm.use_vllm is False and trial.spec.eval.backend == "transformers"


def test_prepare_builds_a_local_model_and_a_two_trial_study(gpu_check, prepared):
    report = json.loads((prepared / "prepare.json").read_text())
    assert len(report["trials"]) == 2
    config = json.loads((Path(report["model"]) / "config.json").read_text())
    assert config["hidden_size"] // config["num_attention_heads"] == 64  # a head size vLLM's kernels take
    trials = gpu_check.trials(prepared)
    for trial in trials:
        spec = trial.spec
        assert spec.model.name == report["model"] and spec.model.dtype == "bfloat16"
        assert spec.algorithm.use_vllm and spec.algorithm.vllm_mode == "colocate"
        assert spec.eval.backend == "vllm" and spec.eval.samples_per_problem == 4
    assert sorted(t.spec.lora.rank for t in trials) == [8, 32]


def test_merge_adapter_on_the_tiny_model(gpu_check, prepared, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tina_sweep.trial.evaluate.lighteval_backend import merge_adapter
    from tina_sweep.trial.spec import ModelSpec

    model_dir = json.loads((prepared / "prepare.json").read_text())["model"]
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    peft = get_peft_model(base, LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))
    peft.save_pretrained(tmp_path / "adapter")
    merged = merge_adapter(ModelSpec(name=model_dir), tmp_path / "adapter", tmp_path / "merged", "float32")
    assert (merged / "model.safetensors").is_file() and (merged / "tokenizer_config.json").is_file()
    stamp = (merged / "tina_merged_from.json").stat().st_mtime
    assert merge_adapter(ModelSpec(name=model_dir), tmp_path / "adapter", tmp_path / "merged", "float32") == merged
    assert (merged / "tina_merged_from.json").stat().st_mtime == stamp  # reused, not merged again
    ids = torch.tensor([[5, 6, 7, 8]])
    reloaded = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    with torch.no_grad():
        assert torch.allclose(reloaded(ids).logits, peft(ids).logits, atol=1e-4)
        fresh = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        assert not torch.allclose(reloaded(ids).logits, fresh(ids).logits, atol=1e-4)  # the adapter changed it


def test_summary_ratio(gpu_check, tmp_path):
    (tmp_path / "train.json").write_text(json.dumps({"device": "NVIDIA H100 80GB HBM3", "device_count": 1, "trials": {
        "a": {"wall_seconds": 60, "step_seconds": [20, 2, 3, 4]}, "b": {"wall_seconds": 50, "step_seconds": [9, 1]}}}))
    (tmp_path / "one_engine.json").write_text(json.dumps({"seconds_total": 40, "generated_tokens": 8000,
                                                          "tokens_per_second_total": 200,
                                                          "tokens_per_second_generating": 800}))
    for name in "ab":
        (tmp_path / f"restart-{name}.json").write_text(json.dumps({"seconds_total": 50, "generated_tokens": 4000}))
    (tmp_path / "prepare.json").write_text(json.dumps({"vllm": True}))
    report = gpu_check.summary(tmp_path)
    assert report["ratio_restart_over_one_engine"] == pytest.approx(2.5)
    assert report["train_step_seconds_median"] == 3 and report["eval_restart_tokens_per_second"] == 80
    assert report["device"] == "NVIDIA H100 80GB HBM3 x1"


def test_summary_without_vllm(gpu_check, tmp_path):
    (tmp_path / "prepare.json").write_text(json.dumps({"vllm": False}))
    (tmp_path / "train.json").write_text(json.dumps({"device": "NVIDIA H100 80GB HBM3", "device_count": 1, "trials": {
        "a": {"wall_seconds": 6, "step_seconds": [5, 0.5, 0.7]}}}))
    (tmp_path / "hf_eval.json").write_text(json.dumps({
        "seconds_total": 40, "tokens_per_second_total": 300, "tokens_per_second_generating": 400,
        "models": {"base": {"pass_at_1": 0.25, "device": "cuda:0"}, "a": {"pass_at_1": 0.5, "device": "cuda:0"}}}))
    (tmp_path / "shape.json").write_text(json.dumps({"step_seconds": [60, 29, 31], "peak_gpu_memory_gb": 4.9}))
    report = gpu_check.summary(tmp_path)
    assert report["ratio_restart_over_one_engine"] is None and "vllm" in report["note"]
    assert report["train_step_seconds_median"] == 0.7 and report["eval_transformers_devices"] == ["cuda:0"]
    assert report["pass_at_1"] == {"base": 0.25, "a": 0.5} and report["paper_shape_step_seconds"] == [60, 29, 31]


def test_the_check_study_gives_a_random_model_a_gradient(gpu_check, tmp_path, monkeypatch):
    """A random model earns neither the accuracy nor the format reward; the study's length reward must still give
    GRPO a gradient, or the adapters stay equal to the base model (the first vLLM run on an H100: grad_norm 0.0 at
    every step, and the adapter check found the adapter's outputs identical to the base's)."""
    from safetensors.torch import load_file

    from tina_sweep.trial.train.trainer import train_trial

    monkeypatch.setenv("TINA_GPU_CHECK_VLLM", "0")
    gpu_check.prepare(tmp_path)
    spec = gpu_check.trials(tmp_path)[0].spec.model_copy(deep=True)
    assert "length" in [r.name for r in spec.algorithm.rewards]
    spec.training.max_steps = spec.training.save_steps = 2
    outcome = train_trial(spec, tmp_path / "trial")
    logs = [json.loads(line) for line in (tmp_path / "trial" / "train_log.jsonl").read_text().splitlines()]
    steps = [log for log in logs if "grad_norm" in log]
    assert steps and all(log["rewards/accuracy/mean"] == 0 for log in steps)  # nothing right, as expected
    assert any(log["reward_std"] > 0 and log["grad_norm"] > 0 for log in steps)
    weights = load_file(Path(outcome.adapter_dir) / "adapter_model.safetensors")
    assert any(tensor.abs().sum() > 0 for name, tensor in weights.items() if "lora_B" in name)  # not the base


def test_failed_vllm_rollouts_fall_back_to_transformers_generation_but_keep_vllm_evaluation(gpu_check, tmp_path,
                                                                                           monkeypatch):
    monkeypatch.setattr(gpu_check, "vllm_available", lambda: True)
    monkeypatch.setenv("TINA_GPU_CHECK_VLLM_ROLLOUTS", "0")  # what gpu_check.sh sets after a failed train phase
    gpu_check.prepare(tmp_path)
    report = json.loads((tmp_path / "prepare.json").read_text())
    assert report["vllm"] is True and report["rollouts"] == "transformers"
    for trial in gpu_check.trials(tmp_path):
        assert trial.spec.algorithm.use_vllm is False and trial.spec.eval.backend == "vllm"


def test_the_check_models_tokenizer_survives_vllms_loader(gpu_check, prepared):
    """vLLM loads a tokenizer with AutoTokenizer, which rebuilds a Qwen2 model's tokenizer as Qwen2Tokenizer; the
    check model's byte-level BPE must come out of that rebuild as training and transformers see it."""
    from transformers import AutoTokenizer

    from tina_sweep.trial.models import load_tokenizer

    model_dir = json.loads((prepared / "prepare.json").read_text())["model"]
    ours, vllms = load_tokenizer(model_dir), AutoTokenizer.from_pretrained(model_dir)
    text = ours.apply_chat_template([{"role": "system", "content": "Give only the final number inside \\boxed{}."},
                                     {"role": "user", "content": "What is 12 + 7?\n  How many?"}],
                                    tokenize=False, add_generation_prompt=True) + "so \\boxed{19}"
    assert vllms(text).input_ids == ours(text).input_ids
    assert vllms.decode(ours(text).input_ids, skip_special_tokens=True) == \
        ours.decode(ours(text).input_ids, skip_special_tokens=True)
    assert ours.eos_token_id == json.loads((Path(model_dir) / "config.json").read_text())["eos_token_id"]


def test_a_zero_adapter_is_refused_before_serving(gpu_check, prepared, tmp_path):
    """PEFT initialises LoRA B to zero: such an adapter is the base model, and the check refuses it in one line."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tina_sweep.trial.evaluate.vllm_backend import lora_b_norm, require_nonzero_adapter

    model_dir = json.loads((prepared / "prepare.json").read_text())["model"]
    for name, init in (("zero", True), ("moved", False)):
        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=init)).save_pretrained(
            tmp_path / name)
    assert lora_b_norm(tmp_path / "zero") == 0 and require_nonzero_adapter("moved", tmp_path / "moved") > 0
    with pytest.raises(ValueError, match="adapter zero is exactly zero") as error:
        require_nonzero_adapter("zero", tmp_path / "zero")
    assert "\n" not in str(error.value)


def test_weight_sync_judgement(gpu_check):
    base, moved = [[1, 2], [3, 4], [5, 6], [7, 8]], [[1, 2], [3, 9], [5, 6], [7, 8]]
    ok = gpu_check.judge_sync([{"sync": 0, "engine": base, "policy": base}, {"sync": 1, "engine": moved, "policy": moved}])
    assert ok["passed"] and ok["per_sync"][1] == {"sync": 1, "engine_matches_policy": 4, "engine_differs_from_sync_0": 1}
    stale = gpu_check.judge_sync([{"sync": 0, "engine": base, "policy": base}, {"sync": 1, "engine": base, "policy": moved}])
    assert not stale["passed"]  # the engine kept the step-0 weights while the policy moved
    assert not gpu_check.judge_sync([{"sync": 0, "engine": base, "policy": base}])["passed"]


def test_sync_probe_policy_greedy_is_the_merged_adapters(gpu_check, prepared, tmp_path):
    """The probe's policy side: greedy ids of the PEFT model with its adapter merged, the model left unmerged and in
    its training mode afterwards."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    spec = gpu_check.trials(prepared)[0].spec.model_copy(deep=True)
    spec.model.dtype = "float32"
    probe = gpu_check.SyncProbe(spec, prompts=2, tokens=6)
    base = AutoModelForCausalLM.from_pretrained(spec.model.name, dtype=torch.float32)
    torch.manual_seed(0)
    peft = get_peft_model(base, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"],
                                           init_lora_weights=False))
    peft.train()
    before = {k: v.clone() for k, v in peft.state_dict().items()}
    policy = probe.policy_greedy(peft)
    # unmerged again (W + BA - BA rounds in the last bit, as TRL's own merge / unmerge does)
    assert peft.training and all(torch.allclose(before[k], v, atol=1e-6) for k, v in peft.state_dict().items())
    merged = peft.merge_and_unload().eval()
    for ids, out in zip(probe.prompt_ids, policy):
        tensor = torch.tensor([ids])
        want = merged.generate(input_ids=tensor, attention_mask=torch.ones_like(tensor), do_sample=False,
                               max_new_tokens=6, eos_token_id=probe.tokenizer.eos_token_id,
                               pad_token_id=probe.tokenizer.pad_token_id)[0, len(ids):].tolist()
        assert out == want and len(out) > 0
