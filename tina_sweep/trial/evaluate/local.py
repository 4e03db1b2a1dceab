"""The transformers backend: the model (an adapter merged in) in this process, batched sampling (left padding),
graded by ``scoring``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from tina_sweep.trial.datasets import Problem, load_benchmark
from tina_sweep.trial.evaluate.scoring import BenchmarkResult, problem_messages, score_benchmark, write_outcomes
from tina_sweep.trial.spec import EvalSpec, ModelSpec, PromptSpec


def load_eval_model(model: ModelSpec, adapter_dir: Path | None, dtype: str):
    """The base model, with a LoRA adapter merged in when given (merged weights decode faster), on the GPU where
    there is one (the job's process sees only its own GPU)."""
    from tina_sweep.trial.models import load_model_and_tokenizer

    base, tokenizer = load_model_and_tokenizer(model.name, dtype, model.attn_implementation)
    if torch.cuda.is_available():
        base = base.to("cuda")
    if adapter_dir is not None:
        from peft import PeftModel

        base = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    base.eval()
    tokenizer.padding_side = "left"
    return base, tokenizer

@torch.inference_mode()
def generate(model, tokenizer, prompts: list[str], spec: EvalSpec, seed: int
             ) -> tuple[list[list[str]], int, list[list[bool]]]:
    """n completions for each prompt in one batch; returns the texts, the number of generated tokens, and which
    completions stopped at max_new_tokens (their last token is neither end-of-sequence nor padding)."""
    n = spec.samples_per_problem
    torch.manual_seed(seed)
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    sampling = {"do_sample": True, "temperature": spec.temperature, "top_p": spec.top_p, "top_k": spec.top_k} \
        if spec.temperature > 0 else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    output = model.generate(**batch, max_new_tokens=spec.max_new_tokens, num_return_sequences=n,
                            pad_token_id=tokenizer.pad_token_id, **sampling)
    new_tokens = output[:, batch["input_ids"].shape[1]:]
    tokens = int((new_tokens != tokenizer.pad_token_id).sum())
    decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    stops = {tokenizer.pad_token_id, *_eos_ids(model, tokenizer)} - {None}
    cut = [new_tokens.shape[1] == spec.max_new_tokens and int(row[-1]) not in stops for row in new_tokens]
    return ([decoded[i:i + n] for i in range(0, len(decoded), n)], tokens,
            [cut[i:i + n] for i in range(0, len(cut), n)])

def _eos_ids(model, tokenizer) -> set[int]:
    """The token ids that end generation: the generation config's (one or a list) and the tokenizer's."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(configured if isinstance(configured, (list, tuple)) else [configured])
    return {i for i in ids | {tokenizer.eos_token_id} if i is not None}

def evaluate_benchmark(model, tokenizer, problems: list[Problem], name: str, prompt: PromptSpec, spec: EvalSpec,
                       seed: int, on_progress: Callable[[int], None] | None = None) -> BenchmarkResult:
    """Generate, grade and score one benchmark."""
    started = time.perf_counter()
    chats = [tokenizer.apply_chat_template(problem_messages(p, prompt), tokenize=False, add_generation_prompt=True)
             for p in problems]
    completions: list[list[str]] = []
    truncated: list[list[bool]] = []
    tokens = 0
    chunk = max(1, spec.batch_size // spec.samples_per_problem)
    for start in range(0, len(chats), chunk):
        texts, used, cut = generate(model, tokenizer, chats[start:start + chunk], spec, seed + start)
        completions.extend(texts)
        truncated.extend(cut)
        tokens += used
        if on_progress:
            on_progress(len(completions))  # problems done so far
    return score_benchmark(name, problems, completions, spec.samples_per_problem, tokens,
                           time.perf_counter() - started, spec.grader, str(model.device), truncated)


def evaluate_with_transformers(model_spec: ModelSpec, prompt: PromptSpec, spec: EvalSpec, adapter_dir: Path | None,
                               out_dir: Path, seed: int,
                               on_progress: Callable[[str, int, int], None] | None = None) -> list[BenchmarkResult]:
    """Every benchmark of ``spec`` on the model (``adapter_dir`` merged in), outcome rows written to ``out_dir``."""
    from tina_sweep.trial.prompts import apply_chat_template_choice

    model, tokenizer = load_eval_model(model_spec, adapter_dir, spec.dtype)
    apply_chat_template_choice(tokenizer, prompt)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for benchmark in spec.benchmarks:
        problems = load_benchmark(benchmark)
        progress = (lambda done, name=benchmark.name, total=len(problems): on_progress(name, done, total)) \
            if on_progress else None
        result = evaluate_benchmark(model, tokenizer, problems, benchmark.name, prompt, spec, seed, progress)
        write_outcomes(out_dir / f"{benchmark.name}.jsonl", result)
        results.append(result)
    return results
