"""Evaluation: a model (the base, or with an adapter) on the spec's benchmarks, through the spec's backend.

- ``scoring``: the chat of each problem, grading into outcome rows, Pass@1 (every backend but LightEval's);
- ``local``: the transformers backend (CPU or one GPU, this process);
- ``vllm_backend``: one engine, every adapter a LoRARequest of one generate call;
- ``lighteval_backend``: the paper's protocol, LightEval itself in its own environment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tina_sweep.trial.evaluate.scoring import BenchmarkResult, EvalTarget, evaluation_prompt, summary
from tina_sweep.trial.spec import EvalSpec, ModelSpec, PromptSpec

__all__ = ["BenchmarkResult", "EvalTarget", "Evaluation", "evaluate_model", "evaluate_models", "evaluation_prompt",
           "summary"]


@dataclass
class Evaluation:
    """What ``evaluate_models`` measured: each target's results (by target name), the call's wall time, and with
    the vLLM backend the shared engine's record (models, load_seconds, adapter_check)."""

    results: dict[str, list[BenchmarkResult]]
    seconds: float
    engine: dict[str, Any] | None = None


def evaluate_models(model_spec: ModelSpec, prompt: PromptSpec, spec: EvalSpec, targets: list[EvalTarget], seed: int,
                    on_progress: Callable[[str, str, int, int], None] | None = None, check_adapters: bool = False,
                    scratch: Path | None = None) -> Evaluation:
    """These models -- the base model (a target without adapter), final adapters, checkpoints -- on the spec's
    benchmarks, through the spec's backend: the vLLM backend serves them all from one engine (and, with
    ``check_adapters``, first checks LoRA serving against a merged copy, in ``scratch``); the others evaluate them
    one after another. Each target's outcome rows go to its ``out_dir``; ``on_progress(target, benchmark, done,
    total)``."""
    started = time.perf_counter()
    if spec.backend == "vllm":
        from tina_sweep.trial.evaluate.vllm_backend import evaluate_targets

        results, engine = evaluate_targets(model_spec, evaluation_prompt(prompt, spec), spec, targets, seed,
                                           on_progress, check_adapters, scratch)
        return Evaluation(results, time.perf_counter() - started, engine)
    results = {}
    for target in targets:
        progress = (lambda bench, done, total, name=target.name: on_progress(name, bench, done, total)) \
            if on_progress else None
        results[target.name] = evaluate_model(model_spec, prompt, spec, target.adapter_dir, target.out_dir,
                                              seed if target.seed is None else target.seed, progress)
    return Evaluation(results, time.perf_counter() - started)


def evaluate_model(model_spec: ModelSpec, prompt: PromptSpec, spec: EvalSpec, adapter_dir: Path | None,
                   out_dir: Path, seed: int,
                   on_progress: Callable[[str, int, int], None] | None = None) -> list[BenchmarkResult]:
    """Evaluate a model (optionally with an adapter) on every benchmark with the spec's backend; write
    per-problem outcomes to ``out_dir``."""
    prompt = evaluation_prompt(prompt, spec)
    if spec.backend == "vllm":
        from tina_sweep.trial.evaluate.vllm_backend import evaluate_with_vllm

        return evaluate_with_vllm(model_spec, prompt, spec, adapter_dir, out_dir, seed, on_progress)
    if spec.backend == "lighteval":
        from tina_sweep.trial.evaluate.lighteval_backend import evaluate_with_lighteval

        results = evaluate_with_lighteval(model_spec, prompt, spec, adapter_dir, out_dir, seed, on_progress)
        for result in results:
            result.grader = "lighteval"  # LightEval's own metrics graded these, whatever eval.grader says
        return results
    from tina_sweep.trial.evaluate.local import evaluate_with_transformers

    return evaluate_with_transformers(model_spec, prompt, spec, adapter_dir, out_dir, seed, on_progress)
