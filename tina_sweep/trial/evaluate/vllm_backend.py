"""Evaluation with vLLM: one engine, the base model loaded once, every adapter of a study served as a LoRA.

``evaluate_adapters`` sends every (adapter, benchmark, problem) request of a study to one ``LLM.generate`` call:
vLLM batches requests of different adapters together (up to ``max_loras`` adapters resident at once), so N
adapters cost one model load instead of N merges and N engine starts (the paper's scripts merge each checkpoint
and restart vLLM). Completions are graded with ``eval.grader``; per-problem outcomes are written as the
transformers backend writes them (``<out_dir>/<benchmark>.jsonl``).

Before trusting the adapters, ``check_adapter`` verifies once per study, greedily on a few prompts, that an
adapter's outputs differ from the base model's (a LoRA that silently did not load gives the base outputs, a
known pitfall) and match those of a merged copy of the same adapter served without LoRA.

The engine arguments, the LoRA requests and the sampling parameters are plain dicts built by small functions
(``engine_kwargs``, ``lora_request_args``, ``sampling_kwargs``) so they are unit-tested on a CPU machine; vLLM is
imported only when an engine starts. ``llm_factory`` / ``lora_request_class`` / ``sampling_class`` let tests
substitute the three vLLM classes.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tina_sweep.trial.spec import EvalSpec, ModelSpec, PromptSpec
from tina_sweep.trial.datasets import Problem, load_benchmark
from tina_sweep.trial.evaluate.scoring import (BenchmarkResult, EvalTarget, problem_messages, score_benchmark,
                                              write_outcomes)
from tina_sweep.trial.prompts import apply_chat_template_choice

# vLLM's LoRAConfig accepts only these max_lora_rank values (vllm/config/lora.py, 0.31).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
MAX_RESIDENT_LORAS = 8  # adapters held on the GPU at once; the rest wait in CPU memory


def adapter_rank(adapter_dir: Path) -> int:
    """The LoRA rank PEFT saved in ``adapter_config.json``."""
    return int(json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["r"])


def vllm_max_lora_rank(ranks: Sequence[int]) -> int:
    """The smallest rank vLLM accepts that holds the study's largest adapter."""
    largest = max(ranks, default=1)
    for allowed in VLLM_LORA_RANKS:
        if allowed >= largest:
            return allowed
    raise ValueError(f"LoRA rank {largest} exceeds vLLM's maximum of {VLLM_LORA_RANKS[-1]}")


def lora_b_norm(adapter_dir: Path) -> float:
    """The Frobenius norm of an adapter's LoRA B matrices (PEFT initialises them to zero: 0 means the adapter is
    exactly the base model)."""
    from safetensors import safe_open

    total = 0.0
    with safe_open(str(Path(adapter_dir) / "adapter_model.safetensors"), framework="pt") as handle:
        for key in handle.keys():
            if "lora_B" in key:
                total += float(handle.get_tensor(key).double().pow(2).sum())
    return total ** 0.5


def require_nonzero_adapter(name: str, adapter_dir: Path) -> float:
    """``lora_b_norm`` of the adapter, or a one-line error when it is zero (an untrained adapter serves the base
    model's outputs, so an adapter check on it can only fail)."""
    norm = lora_b_norm(adapter_dir)
    if norm <= 0:
        raise ValueError(f"adapter {name} is exactly zero (LoRA B norm 0 in {adapter_dir}): training never moved it "
                         "(all rewards equal within every group give GRPO no gradient)")
    return norm


def on_cpu() -> bool:
    """Whether no CUDA GPU is visible (vLLM's CPU build then runs the engine)."""
    import torch

    return not torch.cuda.is_available()


def engine_kwargs(model_path: str, spec: EvalSpec, adapter_ranks: Sequence[int], seed: int,
                  eager: bool = False) -> dict[str, Any]:
    """The ``vllm.LLM`` arguments: the base model once, LoRA on when there are adapters, sized to the study's
    largest rank; max_model_len and memory share from the spec (on CPU the share of RAM reserved). ``eager``
    (set on CPU): no torch.compile, the setting vLLM's CPU build was checked to serve LoRA correctly with
    (tests/test_vllm_cpu.py)."""
    kwargs: dict[str, Any] = {
        "model": model_path,
        "tokenizer": model_path,
        "dtype": spec.dtype,
        "seed": seed,
        "gpu_memory_utilization": spec.gpu_memory_utilization,
        "enable_prefix_caching": True,
    }
    if spec.max_model_length is not None:
        kwargs["max_model_len"] = spec.max_model_length
    if eager:
        kwargs["enforce_eager"] = True
    if adapter_ranks:
        loras = min(len(adapter_ranks), MAX_RESIDENT_LORAS)
        kwargs.update(enable_lora=True, max_lora_rank=vllm_max_lora_rank(adapter_ranks), max_loras=loras,
                      max_cpu_loras=max(loras, len(adapter_ranks)))
    return kwargs


def lora_request_args(jobs: Sequence[EvalTarget]) -> dict[str, dict[str, Any]]:
    """``LoRARequest`` arguments per job name: ids 1, 2, ... unique within the engine (vLLM caches adapters by
    id, so two adapters must never share one), absolute adapter paths. The base model gets none."""
    args: dict[str, dict[str, Any]] = {}
    for job in jobs:
        if job.adapter_dir is None:
            continue
        if job.name in args:
            raise ValueError(f"two adapters named {job.name!r}")
        args[job.name] = {"lora_name": job.name, "lora_int_id": len(args) + 1,
                          "lora_path": str(Path(job.adapter_dir).resolve())}
    return args


def sampling_kwargs(spec: EvalSpec, seed: int, *, greedy_tokens: int | None = None) -> dict[str, Any]:
    """``vllm.SamplingParams`` arguments: n samples per problem at the spec's temperature / top-p / top-k and up
    to max_new_tokens; ``greedy_tokens`` gives the adapter check's greedy, short setting instead."""
    if greedy_tokens is not None:
        return {"n": 1, "temperature": 0.0, "max_tokens": greedy_tokens, "seed": seed}
    kwargs: dict[str, Any] = {"n": spec.samples_per_problem, "temperature": spec.temperature, "top_p": spec.top_p,
                              "max_tokens": spec.max_new_tokens, "seed": seed}
    if spec.top_k:
        kwargs["top_k"] = spec.top_k
    if spec.temperature == 0:
        kwargs.update(top_p=1.0)
    return kwargs


def render_prompts(tokenizer, problems: Sequence[Problem], prompt: PromptSpec) -> list[str]:
    """Chat-formatted prompt texts, as the transformers backend builds them."""
    apply_chat_template_choice(tokenizer, prompt)
    return [tokenizer.apply_chat_template(problem_messages(p, prompt), tokenize=False, add_generation_prompt=True)
            for p in problems]


def _default_classes():
    """vLLM's ``LLM``, ``LoRARequest`` and ``SamplingParams``; ``TINA_SWEEP_VLLM_MODULE`` names a module with the
    same three classes instead (a stand-in engine: how tests run the whole pipeline on machines without a GPU)."""
    import os

    module_name = os.environ.get("TINA_SWEEP_VLLM_MODULE", "vllm")
    if module_name != "vllm":
        import importlib

        module = importlib.import_module(module_name)
        return module.LLM, module.LoRARequest, module.SamplingParams
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    return LLM, LoRARequest, SamplingParams


@dataclass
class AdapterCheck:
    """The once-per-study sanity check of LoRA serving (greedy, a few prompts)."""

    adapter: str
    prompts: int
    differs_from_base: int  # prompts whose adapter output differs from the base output
    matches_merged: int  # prompts whose adapter output equals the merged copy's
    passed: bool

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def judge_adapter_check(name: str, base: list[str], adapter: list[str], merged: list[str],
                        min_agreement: float = 0.75) -> AdapterCheck:
    """Passed when the adapter changes at least one output and agrees with the merged copy on at least
    ``min_agreement`` of the prompts (bf16 LoRA kernels and merged weights round differently, so a late greedy
    divergence on one prompt is tolerated)."""
    differs = sum(a != b for a, b in zip(adapter, base))
    matches = sum(a == m for a, m in zip(adapter, merged))
    passed = differs > 0 and matches >= min_agreement * len(adapter)
    return AdapterCheck(name, len(adapter), differs, matches, passed)


class VLLMEvaluator:
    """One engine for a study: the base model, with every adapter available as a LoRA."""

    def __init__(self, model: ModelSpec, spec: EvalSpec, jobs: Sequence[EvalTarget], seed: int = 0,
                 llm_factory: Callable[..., Any] | None = None, lora_request_class: Any = None,
                 sampling_class: Any = None):
        from tina_sweep.trial.models import load_tokenizer, resolve_model

        classes = _default_classes() if llm_factory is None else (llm_factory, lora_request_class, sampling_class)
        self.LLM, self.LoRARequest, self.SamplingParams = classes
        self.model, self.spec, self.jobs, self.seed = model, spec, list(jobs), seed
        self.model_path = resolve_model(model.name)
        self.tokenizer = load_tokenizer(self.model_path)
        ranks = [adapter_rank(j.adapter_dir) for j in self.jobs if j.adapter_dir is not None]
        self.engine_args = engine_kwargs(self.model_path, spec, ranks, seed, eager=on_cpu())
        self.requests = {name: self.LoRARequest(**args) for name, args in lora_request_args(self.jobs).items()}
        self.llm = None
        self.load_seconds = 0.0

    def start(self) -> None:
        if self.llm is None:
            started = time.perf_counter()
            self.llm = self.LLM(**self.engine_args)
            self.load_seconds = time.perf_counter() - started

    def close(self) -> None:
        self.llm = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass

    def generate(self, prompts: list[str], request_names: list[str | None], params) -> list[list[str]]:
        """One generate call; ``request_names[i]`` names the adapter of prompt i (None: the base model)."""
        self.start()
        lora = [self.requests[name] if name is not None else None for name in request_names]
        outputs = self.llm.generate(prompts, params, lora_request=lora, use_tqdm=False)
        return [[choice.text for choice in output.outputs] for output in outputs], outputs

    def evaluate_all(self, prompt: PromptSpec, on_progress: Callable[[str, str, int, int], None] | None = None
                     ) -> dict[str, list[BenchmarkResult]]:
        """Every job on every benchmark in one generate call; writes each job's outcome files."""
        benchmarks = [(b.name, load_benchmark(b)) for b in self.spec.benchmarks]
        texts = {name: render_prompts(self.tokenizer, problems, prompt) for name, problems in benchmarks}
        prompts, names, index = [], [], []
        for job in self.jobs:
            for bench, problems in benchmarks:
                for i in range(len(problems)):
                    prompts.append(texts[bench][i])
                    names.append(job.name if job.adapter_dir is not None else None)
                    index.append((job.name, bench, i))
        seeds = {job.name: self.seed if job.seed is None else job.seed for job in self.jobs}
        if len(set(seeds.values())) == 1:
            params = self.SamplingParams(**sampling_kwargs(self.spec, next(iter(seeds.values()))))
        else:  # one SamplingParams per prompt: each job samples with its own seed
            by_seed = {seed: self.SamplingParams(**sampling_kwargs(self.spec, seed)) for seed in set(seeds.values())}
            params = [by_seed[seeds[job]] for job, _, _ in index]
        started = time.perf_counter()
        completions, outputs = self.generate(prompts, names, params)
        seconds = time.perf_counter() - started
        tokens = [sum(len(c.token_ids) for c in o.outputs) for o in outputs]
        # vLLM's finish_reason: "length" when a sample stopped at max_tokens, "stop" at an end token or stop string
        cut = [[getattr(c, "finish_reason", None) == "length" for c in o.outputs] for o in outputs]
        grouped: dict[tuple[str, str], list[tuple[int, list[str], int, list[bool]]]] = {}
        for (job, bench, i), samples, used, flags in zip(index, completions, tokens, cut):
            grouped.setdefault((job, bench), []).append((i, samples, used, flags))
        total_tokens = max(sum(tokens), 1)
        results: dict[str, list[BenchmarkResult]] = {}
        for job in self.jobs:
            job.out_dir.mkdir(parents=True, exist_ok=True)
            for bench, problems in benchmarks:
                rows = grouped[(job.name, bench)]
                used = sum(r[2] for r in rows)
                result = grade_benchmark(bench, problems, [r[1] for r in rows], self.spec.samples_per_problem, used,
                                         seconds * used / total_tokens, self.spec.grader,  # time shared by tokens
                                         [r[3] for r in rows])
                write_outcomes(job.out_dir / f"{bench}.jsonl", result)
                results.setdefault(job.name, []).append(result)
                if on_progress:
                    on_progress(job.name, bench, len(problems), len(problems))
        return results

    def check_adapter(self, job: EvalTarget, prompt: PromptSpec, merged_outputs: list[str], problems: list[Problem],
                      tokens: int = 64) -> AdapterCheck:
        """Greedy outputs of the base and of ``job``'s adapter on ``problems``, judged against ``merged_outputs``
        (the same prompts served greedily by an engine on the merged copy, see ``merged_greedy``)."""
        texts = render_prompts(self.tokenizer, problems, prompt)
        params = self.SamplingParams(**sampling_kwargs(self.spec, self.seed, greedy_tokens=tokens))
        both, _ = self.generate(texts + texts, [None] * len(texts) + [job.name] * len(texts), params)
        base, adapter = [c[0] for c in both[:len(texts)]], [c[0] for c in both[len(texts):]]
        return judge_adapter_check(job.name, base, adapter, merged_outputs)


def merged_greedy(model: ModelSpec, spec: EvalSpec, merged_dir: Path, prompt: PromptSpec, problems: list[Problem],
                  tokens: int = 64, seed: int = 0, llm_factory: Callable[..., Any] | None = None,
                  sampling_class: Any = None) -> list[str]:
    """Greedy outputs of a merged copy (no LoRA) on ``problems``, from a short-lived engine that is closed
    before the study's engine starts (two engines would need twice the memory)."""
    from tina_sweep.trial.models import load_tokenizer

    if llm_factory is None:
        LLM, _, SamplingParams = _default_classes()
    else:
        LLM, SamplingParams = llm_factory, sampling_class
    tokenizer = load_tokenizer(str(merged_dir))
    texts = render_prompts(tokenizer, problems, prompt)
    args = engine_kwargs(str(merged_dir), spec, [], seed, eager=on_cpu())
    args["max_model_len"] = min(spec.max_model_length or 4096, 4096)
    llm = LLM(**args)
    try:
        outputs = llm.generate(texts, SamplingParams(**sampling_kwargs(spec, seed, greedy_tokens=tokens)),
                               use_tqdm=False)
        return [o.outputs[0].text for o in outputs]
    finally:
        del llm
        gc.collect()


def grade_benchmark(name: str, problems: list[Problem], samples: list[list[str]], n: int, tokens: int,
                    seconds: float, grader: str = "strict", truncated: list[list[bool]] | None = None
                    ) -> BenchmarkResult:
    """Grading of n samples per problem with ``eval.grader``, as the transformers backend grades (``truncated``:
    which samples stopped at max_tokens)."""
    return score_benchmark(name, problems, samples, n, tokens, seconds, grader, truncated=truncated)


def evaluate_with_vllm(model: ModelSpec, prompt: PromptSpec, spec: EvalSpec, adapter_dir: Path | None, out_dir: Path,
                       seed: int, on_progress: Callable[[str, int, int], None] | None = None) -> list[BenchmarkResult]:
    """The per-trial entry point (``eval.backend = "vllm"`` in tina_sweep.trial.evaluate): an engine for one model.
    A study-level caller should build one ``VLLMEvaluator`` with every adapter instead."""
    job = EvalTarget("adapter" if adapter_dir is not None else "base", adapter_dir, out_dir)
    evaluator = VLLMEvaluator(model, spec, [job], seed)
    try:
        progress = (lambda _job, bench, done, total: on_progress(bench, done, total)) if on_progress else None
        return evaluator.evaluate_all(prompt, progress)[job.name]
    finally:
        evaluator.close()


def adapter_to_check(targets: list[EvalTarget]) -> EvalTarget | None:
    """The first adapter that is not exactly zero (an untrained adapter serves the base model's outputs, so the
    adapter check could only fail on it), or None when every one is zero. An adapter folder without weights (a
    stand-in in tests) counts as non-zero."""
    for target in targets:
        weights = Path(target.adapter_dir) / "adapter_model.safetensors"
        if not weights.is_file() or lora_b_norm(target.adapter_dir) > 0:
            return target
    return None


def adapter_check(model: ModelSpec, spec: EvalSpec, prompt: PromptSpec, evaluator: VLLMEvaluator,
                  adapter: EvalTarget, scratch: Path) -> dict[str, Any]:
    """``eval.check_adapters``: before a shared engine evaluates, check greedily on 8 problems that one adapter
    served as a LoRA changes the base model's outputs and agrees with a merged copy of it (served by a short-lived
    engine of its own, deleted afterwards). A failure stops the evaluation: LoRA serving cannot be trusted."""
    import os
    import shutil

    from tina_sweep.trial.evaluate.lighteval_backend import merge_adapter

    problems = load_benchmark(spec.benchmarks[0])[:8]
    merged_dir = scratch / f".adapter-check-{os.getpid()}"
    try:
        merged = merge_adapter(model, adapter.adapter_dir, merged_dir, spec.dtype)
        merged_outputs = merged_greedy(model, spec, merged, prompt, problems, tokens=32)
    finally:
        shutil.rmtree(merged_dir, ignore_errors=True)
    check = evaluator.check_adapter(adapter, prompt, merged_outputs, problems, tokens=32)
    if not check.passed:
        raise RuntimeError(f"adapter check failed for {adapter.name}: its outputs differ from the base model's on "
                           f"{check.differs_from_base} of {check.prompts} prompts and match its merged copy on "
                           f"{check.matches_merged} (eval.check_adapters: false skips the check)")
    return check.as_dict()


def evaluate_targets(model: ModelSpec, prompt: PromptSpec, spec: EvalSpec, targets: list[EvalTarget], seed: int,
                     on_progress: Callable[[str, str, int, int], None] | None = None,
                     check_adapters: bool = False, scratch: Path | None = None
                     ) -> tuple[dict[str, list[BenchmarkResult]], dict[str, Any]]:
    """Every target through ONE engine (the base model loaded once; each adapter a LoRARequest of one generate
    call): the results per target name, and the engine's record (models served, load time, the adapter check when
    ``check_adapters`` and ``spec.check_adapters``, run in ``scratch``)."""
    evaluator = VLLMEvaluator(model, spec, targets, seed)
    adapters = [t for t in targets if t.adapter_dir is not None]
    check = None
    try:
        if check_adapters and spec.check_adapters and adapters:
            checkable = adapter_to_check(adapters)
            check = adapter_check(model, spec, prompt, evaluator, checkable, scratch or Path(".")) if checkable else {
                "skipped": f"all {len(adapters)} adapters are exactly zero (LoRA B norm 0): each serves the "
                           "base model's outputs, so there is no LoRA effect to check"}
        results = evaluator.evaluate_all(prompt, on_progress)
    finally:
        evaluator.close()
    return results, {"models": len(targets), "load_seconds": evaluator.load_seconds, "adapter_check": check}
