"""Scales: the size of a run. A preset fills every budget field of a TrialSpec; a study adds the science.

- ``smoke``: a tiny random Qwen2 built in-process, a few steps; seconds. For tests.
- ``cpu``: the embedded SmolLM2-135M-Instruct on the seeded arithmetic task, with the easy real benchmarks
  as transfer checks; a small study finishes on 2 cores in well under an hour. Default without a CUDA GPU.
- ``paper``: the Tina recipe (DeepSeek-R1-Distill-Qwen-1.5B, LoRA alpha 4 x rank, lr 1e-6 cosine_with_min_lr,
  the six paper benchmarks). Needs CUDA GPUs.
"""

from __future__ import annotations

import copy
from typing import Any

from tina_sweep.trial.prompts import OPEN_R1_SYSTEM_PROMPT, TINA_MATH_QUERY_TEMPLATE

# The worked example shown before every cpu-scale question. Its operand 60 lies outside the generator's
# range, so it never coincides with a training or held-out problem. Measured on 100 held-out problems
# (greedy, strict grading): with no example the model never writes a box (Pass@1 0.00); with this one it boxes
# 69% of its answers (Pass@1 0.40); with a second example (13 * 4 = 52) 0.45, leaving RL nothing to teach.
CPU_EXAMPLES = [
    {"question": "What is 60 + 7?", "answer": "60 + 7 = 67\n\\boxed{67}"},
]

# How long one attempt at a trial (training and evaluation) may run before its worker kills it as hung
# (``--trial-timeout`` overrides it). Generous: about 10x what a trial takes on a slow machine.
TRIAL_TIMEOUTS: dict[str, float] = {"smoke": 30 * 60, "cpu": 4 * 3600, "paper": 48 * 3600}

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

SCALES: dict[str, dict[str, Any]] = {
    "smoke": {
        "model": {"name": "tiny-random-qwen2", "dtype": "float32", "attn_implementation": "sdpa"},
        "prompt": {"system": "Give only the final number inside \\boxed{}.", "instruction": ""},
        "lora": {"rank": 4, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        "algorithm": {"name": "dr_grpo", "num_generations": 2, "max_completion_length": 8, "temperature": 1.0,
                      "rewards": [{"name": "accuracy", "weight": 1.0}]},
        "training": {"learning_rate": 1e-3, "max_steps": 2, "prompts_per_step": 1, "save_steps": 1},
        "dataset": {"name": "arithmetic", "limit": 64},
        "eval": {"benchmarks": [{"name": "arithmetic", "limit": 8}], "max_new_tokens": 8, "batch_size": 8},
    },
    "cpu": {
        "model": {"name": "smollm2-135m-instruct", "dtype": "float32", "attn_implementation": "sdpa"},
        "prompt": {"system": "Give only the final number inside \\boxed{}.", "instruction": "",
                   "examples": CPU_EXAMPLES},
        "lora": {"rank": 8, "alpha_per_rank": 4.0, "dropout": 0.0, "target_modules": ALL_LINEAR},
        "algorithm": {"name": "dr_grpo", "beta": 0.0, "num_generations": 4, "max_completion_length": 24,
                      "temperature": 1.0, "top_k": 50,
                      "rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "boxed_format", "weight": 0.5}]},
        "training": {"learning_rate": 2e-4, "lr_scheduler_type": "constant", "max_steps": 30,
                     "prompts_per_step": 2, "save_steps": 5},
        "dataset": {"name": "arithmetic", "limit": 2000},
        "eval": {"benchmarks": [{"name": "arithmetic", "limit": 100}, {"name": "mawps", "limit": 50}],
                 "temperature": 0.0, "max_new_tokens": 24, "batch_size": 50},
    },
    # The Tina repository's LIMR recipe (recipes/DeepSeek-R1-Distill-Qwen-1.5B/grpo/model_curated_limr.yaml), the
    # base every paper-scale study starts from; a study's paper entry sets what its recipes change (see
    # docs/recipe_parity.md, checked by tests/test_recipes.py against tina_recipes.csv).
    "paper": {
        "model": {"name": "deepseek-r1-distill-qwen-1.5b", "dtype": "bfloat16",
                  "attn_implementation": "flash_attention_2"},
        "prompt": {"system": OPEN_R1_SYSTEM_PROMPT, "instruction": "", "chat_template": "deepseek_r1_reason"},
        "lora": {"rank": 32, "alpha_per_rank": 4.0, "dropout": 0.05, "target_modules": ALL_LINEAR},
        "algorithm": {"name": "grpo", "beta": 0.04, "epsilon": 0.2, "num_generations": 4,
                      "max_completion_length": 3584, "temperature": 0.7, "top_p": 1.0, "top_k": 0,
                      "rewards": [{"name": "format", "weight": 1.0}, {"name": "accuracy", "weight": 2.0}],
                      "use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.4,
                      "vllm_max_model_length": 4608, "vllm_enable_sleep_mode": False,
                      "vllm_importance_sampling_correction": False},
        "training": {"learning_rate": 1e-6, "lr_scheduler_type": "cosine_with_min_lr", "min_lr_rate": 0.1,
                     "warmup_ratio": 0.1, "max_steps": 360, "prompts_per_step": 1,
                     "gradient_accumulation_steps": 4, "save_steps": 10, "weight_decay": 0.0, "max_grad_norm": 1.0,
                     "global_batch_processes": 2},  # Tina's launch scripts ran 2 processes: one GPU accumulates 2x
        "dataset": {"name": "limr"},
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
