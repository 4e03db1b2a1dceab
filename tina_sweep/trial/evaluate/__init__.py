"""Evaluation: a model (the base, or with an adapter) on the spec's benchmarks, through the spec's backend.

- ``scoring``: the chat of each problem, grading into outcome rows, Pass@1 (every backend but LightEval's);
- ``local``: the transformers backend (CPU or one GPU, this process);
- ``vllm_backend``: one engine, every adapter a LoRARequest of one generate call;
- ``lighteval_backend``: the paper's protocol, LightEval itself in its own environment.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tina_sweep.trial.evaluate.scoring import BenchmarkResult, evaluation_prompt, summary
from tina_sweep.trial.spec import EvalSpec, ModelSpec, PromptSpec

__all__ = ["BenchmarkResult", "evaluate_model", "evaluation_prompt", "summary"]


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
