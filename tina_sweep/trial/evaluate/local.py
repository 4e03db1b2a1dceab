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

MIN_SHARED_PREFIX = 8  # tokens: below this, computing the batch's common prefix once is not worth a second call


def shared_prefix_length(rows: list[list[int]]) -> int:
    """How many leading tokens every row shares, leaving each row at least one token of its own."""
    if len(rows) < 2:
        return 0
    shortest = min(map(len, rows))
    length = 0
    while length < shortest - 1 and all(row[length] == rows[0][length] for row in rows):
        length += 1
    return length


def generate_sharing_prefix(model, rows: list[list[int]], prefix: int, pad_id: int, **generate_kwargs
                            ) -> torch.Tensor:
    """``generate`` on token rows that begin with the same ``prefix`` tokens (a system prompt, worked examples):
    the prefix runs once, its key/value cache is copied to every row, and each row's own tokens follow it,
    left-padded among themselves (``[prefix | pads | own tokens]``, padding masked). Every token keeps the position
    the usual left-padded layout gives it (generate counts positions over the attention mask), so the completions
    are the same; the returned rows are ``[prefix | padded own tokens | new tokens]``, as wide as that layout's."""
    from tina_sweep.trial.models import cache_keyword, returned_cache

    device = model.device
    head = torch.tensor([rows[0][:prefix]], device=device)
    cache = returned_cache(model(input_ids=head, use_cache=True, logits_to_keep=1))
    cache.batch_repeat_interleave(len(rows))
    tails = [row[prefix:] for row in rows]
    width = max(map(len, tails))
    tail_ids = torch.tensor([[pad_id] * (width - len(t)) + t for t in tails], device=device)
    tail_mask = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t in tails], device=device)
    input_ids = torch.cat([head.expand(len(rows), -1), tail_ids], dim=1)
    attention_mask = torch.cat([torch.ones(len(rows), prefix, dtype=tail_mask.dtype, device=device), tail_mask], 1)
    return model.generate(input_ids=input_ids, attention_mask=attention_mask, **{cache_keyword(model): cache},
                          **generate_kwargs)


@torch.inference_mode()
def generate(model, tokenizer, prompts: list[str], spec: EvalSpec, seed: int
             ) -> tuple[list[list[str]], int, list[list[bool]]]:
    """n completions for each prompt in one batch; returns the texts, the number of generated tokens, and which
    completions stopped at max_new_tokens (their last token is neither end-of-sequence nor padding). With one
    completion per prompt, a prefix every prompt shares (the system prompt and worked examples) is computed once
    (``generate_sharing_prefix``)."""
    n = spec.samples_per_problem
    torch.manual_seed(seed)
    sampling = {"do_sample": True, "temperature": spec.temperature, "top_p": spec.top_p, "top_k": spec.top_k} \
        if spec.temperature > 0 else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    settings = dict(max_new_tokens=spec.max_new_tokens, pad_token_id=tokenizer.pad_token_id, **sampling)
    rows = [tokenizer(prompt, add_special_tokens=False)["input_ids"] for prompt in prompts]
    prefix = shared_prefix_length(rows) if n == 1 else 0
    if prefix >= MIN_SHARED_PREFIX:
        output = generate_sharing_prefix(model, rows, prefix, tokenizer.pad_token_id, **settings)
    else:
        batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        output = model.generate(**batch, num_return_sequences=n, **settings)
    new_tokens = output[:, max(map(len, rows)):]
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
