"""The GPU check's phases (benchmarks/gpu_check.sh runs them, each in its own process so every vLLM engine
starts on a clean GPU and frees it when the process exits).

    prepare WORK             build a tiny Qwen2 on disk (no network), write a local two-trial study file
                             (vLLM rollouts and evaluation where vllm imports; else transformers for both)
    train WORK               train both trials at paper-like settings: GRPO + LoRA, vLLM colocate rollouts; every
                             adapter must be non-zero (LoRA B norm > 0); with vLLM rollouts the first trial runs
                             the weight-sync probe (sync.json: after each step the engine equals the policy)
    hf_eval WORK             without vllm: evaluate base + both adapters with the transformers backend
    shape WORK               without vllm: GRPO + LoRA steps of a random model of DeepSeek-R1-Distill-Qwen-1.5B's
                             shape (transformers generation): what one step of the paper's model costs on this GPU
    one_engine WORK          evaluate base + both adapters from ONE vLLM engine (LoRARequest per adapter), then
                             the adapter check (below) on that engine
    restart WORK NAME        the paper's way for one adapter: merge it, start a fresh engine on the merged copy
    check WORK               once per study: adapter outputs differ from the base and match the merged copy
    summary WORK             print step time, eval tokens/s, the one-engine vs merge-and-restart ratio, the checks
    verdict WORK             exit 1 unless the adapter check and (with vLLM rollouts) the weight sync passed

Every phase writes WORK/<phase>[-NAME].json; times include engine start-up (what a restart pays per adapter).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STUDY_TEXT = '''"""GPU check: two LoRA ranks on a tiny local Qwen2, paper-style (written by benchmarks/gpu_check.py)."""

from tina_sweep import Study

study = Study(
    name="gpu_check",
    description="rank 8 vs 32 on a tiny local model: vLLM rollouts, vLLM multi-adapter evaluation",
    axes={{"lora.rank": [8, 32]}},
    scales={{"paper": {{"base": {{
        "model.name": {model!r}, "model.attn_implementation": "sdpa",
        "prompt.system": "Give only the final number inside \\\\boxed{{}}.", "prompt.chat_template": None,
        "algorithm.num_generations": 4, "algorithm.max_completion_length": 64, "algorithm.temperature": 1.0,
        "algorithm.rewards": [{{"name": "accuracy", "weight": 1.0}}, {{"name": "boxed_format", "weight": 0.5}},
                              {{"name": "length", "weight": 1.0}}],
        "algorithm.use_vllm": {use_vllm}, "eval.backend": {backend!r},
        "algorithm.vllm_gpu_memory_utilization": 0.25, "algorithm.vllm_max_model_length": 512,
        "training.learning_rate": 1e-2, "training.lr_scheduler_type": "constant", "training.warmup_ratio": 0.0,
        "training.max_steps": 12, "training.prompts_per_step": 4, "training.gradient_accumulation_steps": 1,
        "training.save_steps": 6, "dataset.name": "arithmetic", "dataset.limit": 256,
        "eval.prompt": None, "eval.benchmarks": [{{"name": "arithmetic", "limit": 500}}],
        "eval.samples_per_problem": 4, "eval.max_new_tokens": 128, "eval.max_model_length": 512,
        "eval.batch_size": 1024,
        "eval.gpu_memory_utilization": 0.5}}}}}},
)
'''


# A random model never earns the accuracy or the format reward: with those alone every group's rewards are equal,
# GRPO's advantages and gradients are zero and the LoRA stays at its initialisation (B = 0, the base model; the
# first vLLM run on an H100 showed grad_norm 0.0 at every step and the adapter check found adapter == base). The
# Kimi length reward (wrong answers: min(0, 0.5 - relative length)) varies with completion length, so the adapters
# move and the adapter check has something to see. The learning rate (1e-2, far above the paper's) and 12 steps
# move a random model's greedy outputs, so "differs from the base" is visible to the adapter and weight-sync checks.


def _write(work: Path, name: str, payload: dict) -> None:
    (work / f"{name}.json").write_text(json.dumps(payload, indent=2))
    print(json.dumps({name: payload}))


def _read(work: Path, name: str) -> dict:
    return json.loads((work / f"{name}.json").read_text())


# Qwen2's pre-tokenizer split (its tokenizer.json): vLLM loads a tokenizer with AutoTokenizer, which for a Qwen2
# config builds Qwen2Tokenizer with this split and a byte-level BPE, whatever tokenizer.json says.
QWEN2_SPLIT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
               r"""\s*[\r\n]+|\s+(?!\S)|\s+""")


def build_bpe_tokenizer():
    """A small byte-level BPE tokenizer with Qwen2's pre-tokenizer and the tiny model's special tokens and chat
    template: AutoTokenizer (vLLM's loader, which rebuilds a Qwen2 model's tokenizer as Qwen2Tokenizer) and
    tina_sweep.trial.models.load_tokenizer tokenize and decode every text identically. (The repository's word-level
    tiny tokenizer does not survive that rebuild: vLLM would see other token ids than training and transformers.)"""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tina_sweep.trial.tiny import CHAT_TEMPLATE, SPECIALS, WORDS

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    corpus = [" ".join(WORDS), "Give only the final number inside \\boxed{}.", "system user assistant"] * 8
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=384, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<|pad|>", unk_token="<|unk|>",
                                   bos_token=None, eos_token="<|im_end|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def gpu_tiny_model(target: Path, dtype: str = "bfloat16") -> Path:
    """A tiny random Qwen2 (hidden 256, 2 layers, head size 64: vLLM's attention kernels, CUDA and CPU, take head
    sizes from 32 up) with the byte-level tokenizer above, saved as safetensors."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if (target / "model.safetensors").exists():
        return target
    tokenizer = build_bpe_tokenizer()
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=None, torch_dtype=dtype)
    model = Qwen2ForCausalLM(config).to(getattr(torch, dtype))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    save_model_dir(model, tokenizer, target)
    return target


def save_model_dir(model, tokenizer, target: Path) -> None:
    """Save a model and the tiny tokenizer as a loadable folder; written aside, then renamed into place (a
    folder at ``target`` is always complete)."""
    import shutil

    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    config_file = partial / "tokenizer_config.json"
    tokenizer_config = json.loads(config_file.read_text())
    tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_file.write_text(json.dumps(tokenizer_config, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def trials(work: Path):
    from tina_sweep.study.study import load_study, resolve

    return resolve(load_study(work / "gpu_check_study.py"), "paper")


def vllm_available() -> bool:
    """Whether vLLM can run here (``TINA_GPU_CHECK_VLLM=0`` forces the transformers path)."""
    import importlib.util
    import os

    return os.environ.get("TINA_GPU_CHECK_VLLM", "1") != "0" and importlib.util.find_spec("vllm") is not None


def vllm_rollouts_wanted() -> bool:
    """Whether training should use vLLM rollouts (``TINA_GPU_CHECK_VLLM_ROLLOUTS=0``: transformers generation
    while evaluation still uses vLLM; gpu_check.sh sets it when the vLLM-rollout training phase fails)."""
    import os

    return vllm_available() and os.environ.get("TINA_GPU_CHECK_VLLM_ROLLOUTS", "1") != "0"


def prepare(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    model = gpu_tiny_model(work / "tiny-qwen2-h256")
    use_vllm = vllm_available()
    rollouts = vllm_rollouts_wanted()
    (work / "gpu_check_study.py").write_text(STUDY_TEXT.format(
        model=str(model), use_vllm=rollouts, backend="vllm" if use_vllm else "transformers"))
    found = trials(work)
    _write(work, "prepare", {"model": str(model), "trials": [t.trial_id for t in found], "vllm": use_vllm,
                             "rollouts": "vllm" if rollouts else "transformers"})


def train(work: Path) -> None:
    """Train both trials; each saved adapter must be non-zero (LoRA B norm > 0) before anything serves it. With vLLM
    rollouts the first trial also runs the weight-sync probe (``SyncProbe``, written to sync.json)."""
    from tina_sweep.trial.evaluate.vllm_backend import require_nonzero_adapter
    from tina_sweep.trial.cost import current_device
    from tina_sweep.trial.train.trainer import train_trial

    out = {"device": current_device().name, "device_count": current_device().count, "trials": {}}
    for index, trial in enumerate(trials(work)):
        trial_dir = work / "trials" / trial.trial_id
        step_times: list[float] = []
        last = [time.perf_counter()]

        def on_step(step, total, logs, step_times=step_times, last=last):
            now = time.perf_counter()
            step_times.append(now - last[0])
            last[0] = now

        probe = SyncProbe(trial.spec) if index == 0 and trial.spec.algorithm.use_vllm else None
        started = time.perf_counter()
        if probe:
            with probe:
                outcome = train_trial(trial.spec, trial_dir, on_step=on_step)
            _write(work, "sync", probe.report())
        else:
            outcome = train_trial(trial.spec, trial_dir, on_step=on_step)
        out["trials"][trial.trial_id] = {
            "rank": trial.spec.lora.rank, "steps": outcome.steps, "wall_seconds": time.perf_counter() - started,
            "step_seconds": step_times, "adapter": str(outcome.adapter_dir),
            "generated_tokens": outcome.generated_tokens,
            "lora_b_norm": require_nonzero_adapter(trial.trial_id, Path(outcome.adapter_dir))}
    _write(work, "train", out)


class SyncProbe:
    """Item (c) of the check: TRL's per-step weight sync of vLLM colocate rollouts reaches the engine. While active,
    TRL's own ``VLLMGeneration.sync_weights`` (merge the adapter, ``load_weights`` every base weight into the
    engine, unmerge) is wrapped: after each real sync, the engine's greedy token ids on 8 probe prompts are recorded
    beside the policy's (transformers greedy on the PEFT model with its adapter merged, as the sync merges it).
    Sync 0 happens before the first step (the base model: LoRA B is zero); sync k after k optimizer steps."""

    def __init__(self, spec, prompts: int = 8, tokens: int = 16):
        from tina_sweep.trial.evaluate.vllm_backend import render_prompts
        from tina_sweep.trial.datasets import load_benchmark
        from tina_sweep.trial.evaluate import evaluation_prompt
        from tina_sweep.trial.models import load_tokenizer

        self.tokenizer = load_tokenizer(spec.model.name)
        problems = load_benchmark(spec.eval.benchmarks[0])[:prompts]
        texts = render_prompts(self.tokenizer, problems, evaluation_prompt(spec.prompt, spec.eval))
        self.prompt_ids = [self.tokenizer(text).input_ids for text in texts]
        self.tokens = tokens
        self.records: list[dict] = []

    def __enter__(self) -> "SyncProbe":
        from trl.generation.vllm_generation import VLLMGeneration

        self.original = VLLMGeneration.sync_weights
        probe = self

        def sync_weights(generation, *args, **kwargs):
            result = probe.original(generation, *args, **kwargs)
            probe.records.append({"sync": len(probe.records), "engine": probe.engine_greedy(generation.llm),
                                  "policy": probe.policy_greedy(generation.model)})
            return result

        VLLMGeneration.sync_weights = sync_weights
        return self

    def __exit__(self, *exc) -> None:
        from trl.generation.vllm_generation import VLLMGeneration

        VLLMGeneration.sync_weights = self.original

    def engine_greedy(self, llm) -> list[list[int]]:
        from vllm import SamplingParams

        outputs = llm.generate([{"prompt_token_ids": ids} for ids in self.prompt_ids],
                               SamplingParams(temperature=0.0, max_tokens=self.tokens), use_tqdm=False)
        return [list(output.outputs[0].token_ids) for output in outputs]

    def policy_greedy(self, model) -> list[list[int]]:
        import torch

        training = model.training
        model.eval()
        model.merge_adapter()
        try:
            outputs = []
            with torch.no_grad():
                for ids in self.prompt_ids:
                    tensor = torch.tensor([ids], device=model.device)
                    out = model.generate(input_ids=tensor, attention_mask=torch.ones_like(tensor), do_sample=False,
                                         max_new_tokens=self.tokens, eos_token_id=self.tokenizer.eos_token_id,
                                         pad_token_id=self.tokenizer.pad_token_id)
                    outputs.append(out[0, len(ids):].tolist())
        finally:
            model.unmerge_adapter()
            model.train(training)
        return outputs

    def report(self) -> dict:
        return judge_sync(self.records)


def judge_sync(records: list[dict], min_agreement: float = 0.75) -> dict:
    """Passed when, at every sync, the engine's greedy outputs equal the policy's on at least ``min_agreement``
    of the probes (bf16 kernels of vLLM and transformers may part late on one prompt), and the last sync's engine
    outputs differ from sync 0's (the base model's) on at least one probe: the new LoRA weights reached vLLM."""
    if len(records) < 2:
        return {"syncs": len(records), "passed": False, "reason": "fewer than two weight syncs were seen"}
    per_sync = [{"sync": r["sync"], "engine_matches_policy": sum(e == p for e, p in zip(r["engine"], r["policy"])),
                 "engine_differs_from_sync_0": sum(e != b for e, b in zip(r["engine"], records[0]["engine"]))}
                for r in records]
    probes = len(records[0]["engine"])
    passed = all(s["engine_matches_policy"] >= min_agreement * probes for s in per_sync) and \
        per_sync[-1]["engine_differs_from_sync_0"] > 0
    return {"syncs": len(records), "probes": probes, "per_sync": per_sync, "passed": passed}


def _jobs(work: Path):
    """The study's adapters (the base model is evaluated once, by either way, so it is left out of both)."""
    from tina_sweep.trial.evaluate.vllm_backend import EvalTarget

    adapters = _read(work, "train")["trials"]
    return [EvalTarget(name, Path(info["adapter"]), work / "eval-one" / name) for name, info in adapters.items()]


def one_engine(work: Path) -> None:
    """Base + both adapters from ONE engine (timed), then, untimed, the adapter check (``check``) on the same
    engine: no extra engine start for it."""
    from tina_sweep.trial.evaluate.vllm_backend import VLLMEvaluator
    from tina_sweep.trial.evaluate import evaluation_prompt

    spec = trials(work)[0].spec
    started = time.perf_counter()
    evaluator = VLLMEvaluator(spec.model, spec.eval, _jobs(work), seed=0)
    evaluator.start()
    results = evaluator.evaluate_all(evaluation_prompt(spec.prompt, spec.eval))
    total = time.perf_counter() - started
    tokens = sum(r.generated_tokens for rs in results.values() for r in rs)
    generate_seconds = sum(r.wall_seconds for rs in results.values() for r in rs)  # shares of one generate call
    _write(work, "one_engine", {
        "seconds_total": total, "engine_load_seconds": evaluator.load_seconds, "generate_seconds": generate_seconds,
        "generated_tokens": tokens, "tokens_per_second_total": tokens / total,
        "tokens_per_second_generating": tokens / max(generate_seconds, 1e-9),
        "pass_at_1": {name: rs[0].pass_at_1 for name, rs in results.items()},
        "engine_args": {k: v for k, v in evaluator.engine_args.items() if k not in ("model", "tokenizer")}})
    try:
        check(work, evaluator)
    except Exception as error:  # the timings above stand; the verdict fails on it
        import traceback

        traceback.print_exc()
        _write(work, "check", {"passed": False, "error": f"{type(error).__name__}: {error}".splitlines()[0]})


def restart(work: Path, name: str) -> None:
    """Merge one adapter, start an engine on the merged copy, evaluate, exit (the paper's per-checkpoint way)."""
    from tina_sweep.trial.evaluate.lighteval_backend import merge_adapter
    from tina_sweep.trial.evaluate.vllm_backend import EvalTarget, VLLMEvaluator
    from tina_sweep.trial.spec import ModelSpec
    from tina_sweep.trial.evaluate import evaluation_prompt

    spec = trials(work)[0].spec
    adapter = Path(_read(work, "train")["trials"][name]["adapter"])
    started = time.perf_counter()
    merged = merge_adapter(spec.model, adapter, work / "merged" / name, spec.eval.dtype)
    merge_seconds = time.perf_counter() - started
    evaluator = VLLMEvaluator(ModelSpec(name=str(merged), dtype=spec.model.dtype), spec.eval,
                              [EvalTarget(name, None, work / "eval-restart" / name)], seed=0)
    evaluator.start()
    results = evaluator.evaluate_all(evaluation_prompt(spec.prompt, spec.eval))[name]
    total = time.perf_counter() - started
    tokens = sum(r.generated_tokens for r in results)
    _write(work, f"restart-{name}", {"seconds_total": total, "merge_seconds": merge_seconds,
                                     "engine_load_seconds": evaluator.load_seconds, "generated_tokens": tokens,
                                     "tokens_per_second_total": tokens / total, "pass_at_1": results[0].pass_at_1})


def check(work: Path, evaluator=None) -> None:
    """(b) Greedy on 8 problems: the first adapter through its LoRARequest vs the base model (the study's engine,
    ``evaluator``, or one started here), then vs a merged copy served by an engine of its own (started after the
    first engine is closed: two engines would need twice the memory)."""
    from tina_sweep.trial.evaluate.lighteval_backend import merge_adapter
    from tina_sweep.trial.evaluate.vllm_backend import (EvalTarget, VLLMEvaluator, judge_adapter_check, merged_greedy,
                                                  render_prompts, require_nonzero_adapter, sampling_kwargs)
    from tina_sweep.trial.datasets import load_benchmark
    from tina_sweep.trial.evaluate import evaluation_prompt

    spec = trials(work)[0].spec
    prompt = evaluation_prompt(spec.prompt, spec.eval)
    problems = load_benchmark(spec.eval.benchmarks[0])[:8]
    name, info = next(iter(_read(work, "train")["trials"].items()))
    require_nonzero_adapter(name, Path(info["adapter"]))  # an untrained adapter can only fail the check
    if evaluator is None:
        evaluator = VLLMEvaluator(spec.model, spec.eval, [EvalTarget(name, Path(info["adapter"]), work / "check")], 0)
    texts = render_prompts(evaluator.tokenizer, problems, prompt)
    params = evaluator.SamplingParams(**sampling_kwargs(spec.eval, 0, greedy_tokens=32))
    both, _ = evaluator.generate(texts + texts, [None] * len(texts) + [name] * len(texts), params)
    evaluator.close()
    # its own folder: the restart phase times its merge into work/merged (merge_adapter reuses a finished merge)
    merged = merge_adapter(spec.model, Path(info["adapter"]), work / "merged-check" / name, spec.eval.dtype)
    merged_out = merged_greedy(spec.model, spec.eval, merged, prompt, problems, tokens=32)
    result = judge_adapter_check(name, [c[0] for c in both[:len(texts)]], [c[0] for c in both[len(texts):]],
                                 merged_out)
    _write(work, "check", result.as_dict())


def hf_eval(work: Path) -> None:
    """Base + both adapters with the transformers backend (batched HF generate, 1,024 sequences a batch), one
    after the other."""
    from tina_sweep.trial.evaluate import evaluate_model

    spec = trials(work)[0].spec
    models = {"base": None, **{name: Path(info["adapter"]) for name, info in _read(work, "train")["trials"].items()}}
    out: dict = {"models": {}}
    started = time.perf_counter()
    for name, adapter in models.items():
        began = time.perf_counter()
        result = evaluate_model(spec.model, spec.prompt, spec.eval, adapter, work / "eval-hf" / name, seed=0)[0]
        out["models"][name] = {"seconds_total": time.perf_counter() - began, "generate_seconds": result.wall_seconds,
                               "generated_tokens": result.generated_tokens, "pass_at_1": result.pass_at_1,
                               "problems": result.problems, "samples_per_problem": result.samples_per_problem,
                               "device": result.device}
    out["seconds_total"] = time.perf_counter() - started
    tokens = sum(m["generated_tokens"] for m in out["models"].values())
    out["tokens_per_second_total"] = tokens / out["seconds_total"]
    out["tokens_per_second_generating"] = tokens / sum(m["generate_seconds"] for m in out["models"].values())
    _write(work, "hf_eval", out)


# DeepSeek-R1-Distill-Qwen-1.5B's config.json (the body; the vocabulary is the tiny tokenizer's, see shape())
PAPER_SHAPE = {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
               "num_key_value_heads": 2, "max_position_embeddings": 131072, "rope_theta": 10000.0,
               "rms_norm_eps": 1e-6, "tie_word_embeddings": False}


def shape(work: Path, steps: int = 3, completion_tokens: int = 512) -> None:
    """GRPO + LoRA (rank 32, alpha 128, all linear layers, the paper's recipe) on a random model with the paper
    model's body, bf16, 4 completions of exactly ``completion_tokens`` tokens per step (EOS suppressed), rollouts
    with transformers generate. The vocabulary is the tiny tokenizer's (the real one is not available offline),
    so the embedding and LM head are smaller than the real model's 151,936 rows: a lower bound on step time."""
    import shutil

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from tina_sweep.trial.tiny import build_tiny_tokenizer
    from tina_sweep.trial.train.trainer import train_trial

    target = work / "paper-shape-random"
    if not (target / "config.json").exists():
        tokenizer = build_tiny_tokenizer()
        config = Qwen2Config(vocab_size=len(tokenizer), pad_token_id=0, eos_token_id=3, bos_token_id=None,
                             torch_dtype="bfloat16", **PAPER_SHAPE)
        torch.manual_seed(0)
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
            model = Qwen2ForCausalLM(config).to(torch.bfloat16)
        save_model_dir(model, tokenizer, target)
        parameters = sum(p.numel() for p in model.parameters())
        del model
        torch.cuda.empty_cache()
    else:
        parameters = None
    base = trials(work)[0].spec
    spec = base.model_copy(deep=True)
    spec.model.name = str(target)
    spec.lora.rank = 32
    spec.algorithm.use_vllm = False
    spec.algorithm.max_completion_length = completion_tokens
    spec.algorithm.num_generations = 4
    spec.training.prompts_per_step = 1
    spec.training.gradient_accumulation_steps = 1
    spec.training.max_steps = steps
    spec.training.save_steps = steps
    trial_dir = work / "shape-trial"
    shutil.rmtree(trial_dir, ignore_errors=True)
    step_times: list[float] = []
    last = [time.perf_counter()]

    def on_step(step, total, logs):
        now = time.perf_counter()
        step_times.append(now - last[0])
        last[0] = now

    import tina_sweep.trial.train.trainer as train_module

    plain_kwargs = train_module.grpo_config_kwargs

    def full_length_kwargs(*args, **kwargs):  # every completion exactly completion_tokens long
        return {**plain_kwargs(*args, **kwargs), "generation_kwargs": {"min_new_tokens": completion_tokens}}

    train_module.grpo_config_kwargs = full_length_kwargs
    try:
        outcome = train_trial(spec, trial_dir, on_step=on_step)
    finally:
        train_module.grpo_config_kwargs = plain_kwargs
    _write(work, "shape", {"parameters": parameters, "lora_rank": 32, "completions_per_step": 4,
                           "completion_tokens": completion_tokens, "steps": outcome.steps, "step_seconds": step_times,
                           "generated_tokens": outcome.generated_tokens,
                           "peak_gpu_memory_gb": torch.cuda.max_memory_allocated() / 2**30
                           if torch.cuda.is_available() else None})


def summary(work: Path) -> dict:
    trained = _read(work, "train")
    steps = [s for info in trained["trials"].values() for s in info["step_seconds"][1:]]  # skip the first step
    report = {
        "device": f'{trained["device"]} x{trained["device_count"]}',
        "vllm": _read(work, "prepare").get("vllm", True),
        "rollouts": _read(work, "prepare").get("rollouts"),
        "train_step_seconds_median": sorted(steps)[len(steps) // 2] if steps else None,
        "train_wall_seconds": {k: v["wall_seconds"] for k, v in trained["trials"].items()},
    }
    if (work / "shape.json").exists():
        shaped = _read(work, "shape")
        report["paper_shape_step_seconds"] = shaped["step_seconds"]
        report["paper_shape_peak_gpu_memory_gb"] = shaped["peak_gpu_memory_gb"]
    if not report["vllm"]:
        hf = _read(work, "hf_eval")
        report.update({
            "eval_transformers_devices": sorted({m.get("device", "?") for m in hf["models"].values()}),
            "eval_transformers_seconds": hf["seconds_total"],
            "eval_transformers_tokens_per_second": hf["tokens_per_second_total"],
            "eval_transformers_tokens_per_second_generating": hf["tokens_per_second_generating"],
            "pass_at_1": {name: m["pass_at_1"] for name, m in hf["models"].items()},
            "ratio_restart_over_one_engine": None,
            "note": "vllm is not installed here: rollouts and evaluation used transformers; the one-engine vs "
                    "merge-and-restart ratio needs vllm"})
        print(json.dumps({"summary": report}, indent=2))
        return report
    one = _read(work, "one_engine")
    restarts = [_read(work, f"restart-{name}") for name in trained["trials"]]
    restart_seconds = sum(r["seconds_total"] for r in restarts)
    restart_tokens = sum(r["generated_tokens"] for r in restarts)
    report.update({
        "eval_one_engine_seconds": one["seconds_total"],
        "eval_one_engine_tokens_per_second": one["tokens_per_second_total"],
        "eval_one_engine_tokens_per_second_generating": one["tokens_per_second_generating"],
        "eval_restart_seconds": restart_seconds,
        "eval_restart_tokens_per_second": restart_tokens / restart_seconds if restart_seconds else None,
        # the same adapters, problems and samples both ways; > 1 means one engine is faster
        "ratio_restart_over_one_engine": restart_seconds / one["seconds_total"],
        "adapter_check": _read(work, "check") if (work / "check.json").exists() else None,
        "weight_sync": _read(work, "sync") if (work / "sync.json").exists() else None,
        "lora_b_norms": {k: v.get("lora_b_norm") for k, v in trained["trials"].items()},
    })
    print(json.dumps({"summary": report}, indent=2))
    return report


def verdict(work: Path) -> None:
    """Exit non-zero unless the adapter check passed and, where vLLM rollouts ran, the weight-sync probe passed."""
    prepared = _read(work, "prepare")
    failures = []
    if prepared.get("vllm"):
        check = _read(work, "check") if (work / "check.json").exists() else {"passed": False}
        if not check["passed"]:
            failures.append(f"adapter check: {json.dumps(check)}")
    if prepared.get("rollouts") == "vllm":
        synced = _read(work, "sync") if (work / "sync.json").exists() else {"passed": False}
        if not synced["passed"]:
            failures.append(f"weight sync: {json.dumps(synced)}")
    if failures:
        sys.exit("gpu_check: FAILED " + "; ".join(failures))
    print("gpu_check: adapters non-zero; adapter check and weight sync passed where they ran")


if __name__ == "__main__":
    phase, work = sys.argv[1], Path(sys.argv[2])
    if phase == "restart":
        restart(work, sys.argv[3])
    else:
        {"prepare": prepare, "train": train, "one_engine": one_engine, "check": check, "summary": summary,
         "hf_eval": hf_eval, "shape": shape, "verdict": verdict}[phase](work)
