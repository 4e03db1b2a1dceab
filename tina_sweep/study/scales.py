"""Scales: the size of a run -- the model, the budget and the benchmarks. The science (algorithm, rewards, data,
prompt, LoRA, optimiser) is a recipe the study names (``tina_sweep.study.recipes``).

- ``smoke``: a tiny random Qwen2 built in-process, a few steps; seconds. For tests.
- ``cpu``: the embedded SmolLM2-135M-Instruct, 30 steps of 2 prompts x 4 completions of 24 tokens (bf16 autocast
  where the CPU computes bf16 natively), the held-out arithmetic and MAWPS as benchmarks; a 3-seed study finishes
  on 2 cores in about 16 minutes.
- ``paper``: DeepSeek-R1-Distill-Qwen-1.5B at the Tina repository's budget, the six paper benchmarks with Tina's
  evaluation settings. Needs CUDA GPUs.
"""

from __future__ import annotations

import copy
from typing import Any

from tina_sweep.trial.prompts import TINA_MATH_QUERY_TEMPLATE

# How long one attempt at a trial (training and evaluation) may run before its worker kills it as hung
# (``--trial-timeout`` overrides it). Generous: about 10x what a trial takes on a slow machine.
TRIAL_TIMEOUTS: dict[str, float] = {"smoke": 30 * 60, "cpu": 4 * 3600, "paper": 48 * 3600}

# The peak resident memory of one trial's process (training, then evaluation), which bounds how many trials a machine
# runs at once (``tina_sweep.run.worker.default_workers``): cpu measured at 3.3 GB (LoRA rank 64, evaluation batch
# 50; 3.1-3.5 GB over a 3-seed study); paper scale keeps its weights on the GPU.
TRIAL_MEMORY_GB: dict[str, float] = {"smoke": 0.5, "cpu": 3.5, "paper": 16.0}

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# The size of each scale: the model, the budget (rollouts per prompt and their length, steps, batch, checkpoints,
# how much of the training set) and the benchmarks. What is trained -- the algorithm, rewards, data, prompt, LoRA
# and optimiser -- is a recipe (tina_sweep.study.recipes) the study names.
SCALES: dict[str, dict[str, Any]] = {
    "smoke": {
        "model": {"name": "tiny-random-qwen2", "dtype": "float32", "attn_implementation": "sdpa"},
        "algorithm": {"num_generations": 2, "max_completion_length": 8},
        "training": {"max_steps": 2, "prompts_per_step": 1, "save_steps": 1},
        "dataset": {"limit": 64},
        "eval": {"benchmarks": [{"name": "arithmetic", "limit": 8}], "max_new_tokens": 8, "batch_size": 8},
    },
    "cpu": {
        "model": {"name": "smollm2-135m-instruct", "dtype": "float32", "attn_implementation": "sdpa"},
        "algorithm": {"num_generations": 4, "max_completion_length": 24},
        # bf16 autocast where the CPU computes bf16 natively (fp32 elsewhere); against fp32 on the same seeds the arms
        # moved both ways, by about a seed's spread (docs/cpu_lora_rank.md, "bf16 against fp32")
        "training": {"max_steps": 30, "prompts_per_step": 2, "save_steps": 5, "cpu_autocast": "bf16"},
        "dataset": {"limit": 2000},
        "eval": {"benchmarks": [{"name": "arithmetic", "limit": 100}, {"name": "mawps", "limit": 50}],
                 "temperature": 0.0, "max_new_tokens": 24, "batch_size": 50},
    },
    # The Tina repository's budget (recipes/DeepSeek-R1-Distill-Qwen-1.5B/grpo/model_curated_limr.yaml and its launch
    # script): 4 completions of up to 3,584 tokens, vLLM rollouts colocated, a 360-step horizon, 2 processes x 4
    # accumulation steps, a checkpoint every 10 steps; see docs/recipe_parity.md.
    "paper": {
        "model": {"name": "deepseek-r1-distill-qwen-1.5b", "dtype": "bfloat16",
                  "attn_implementation": "flash_attention_2"},
        "algorithm": {"num_generations": 4, "max_completion_length": 3584,
                      "use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.4,
                      "vllm_max_model_length": 4608, "vllm_enable_sleep_mode": False,
                      "vllm_importance_sampling_correction": False},
        "training": {"max_steps": 360, "prompts_per_step": 1, "gradient_accumulation_steps": 4, "save_steps": 10,
                     "global_batch_processes": 2},  # Tina's launch scripts ran 2 processes: one GPU accumulates 2x
        # Tina's evaluation (scripts/eval/eval_post_train.sh): its math user turn, no system prompt, the model's
        # own chat template, n = 1, temperature 0.6, top-p 0.95, 32,768 new tokens, max_model_length 32,768,
        # gpu_memory_utilization 0.7. backend "lighteval" runs LightEval itself; "vllm" (the default here) serves
        # every adapter of a study from one engine and grades with our strict grader.
        "eval": {"backend": "vllm",
                 "prompt": {"system": None, "instruction": "", "template": TINA_MATH_QUERY_TEMPLATE},
                 "benchmarks": [{"name": b} for b in ("aime24", "aime25", "amc23", "math500", "gpqa_diamond",
                                                       "minerva")],
                 "samples_per_problem": 1, "temperature": 0.6, "top_p": 0.95, "top_k": 0, "max_new_tokens": 32768,
                 "batch_size": 64, "dtype": "bfloat16", "max_model_length": 32768, "gpu_memory_utilization": 0.7},
    },
}


def scale_preset(scale: str) -> dict[str, Any]:
    """A fresh copy of a scale's preset, ready for a study's overrides."""
    return copy.deepcopy(SCALES[scale])
