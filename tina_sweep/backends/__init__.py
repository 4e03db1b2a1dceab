"""Evaluation backends beside the transformers one in tina_sweep.evaluate (``eval.backend``):

- ``vllm_backend``: one vLLM engine loads the base model once and evaluates every adapter of a study through
  ``LoRARequest``; grading stays ours (tina_sweep.grading).
- ``lighteval_backend``: the paper's protocol: merge the adapter, then LightEval (vLLM on a GPU, its transformers
  engine on CPU) with Tina's own task definitions on local copies of our benchmarks; LightEval grades.

Neither vllm nor lighteval is a dependency of the package: vllm pins torch and transformers exactly (vllm 0.31
wants transformers < 5.18; we run 5.24) and lighteval 0.13 pins latex2sympy2_extended 1.0.6 (math-verify 0.9
needs a newer one): LightEval runs in its own environment (``TINA_LIGHTEVAL_PYTHON``, built by .ci/lighteval).
"""
