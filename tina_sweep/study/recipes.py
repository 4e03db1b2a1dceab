"""Recipes: the science of a trial -- algorithm, rewards, training set, prompt, LoRA and optimiser -- by name. A study
names the recipe it runs (``Study(recipe=...)``, per scale in ``scales``); a scale (``tina_sweep.study.scales``) adds
only the model, the budget and the benchmarks. Without a name, a scale runs its ``DEFAULT_RECIPES`` entry.

- ``arithmetic_smoke``: plumbing only, for the tiny random model: Dr.GRPO, the accuracy reward, rank 4 on q/v.
- ``arithmetic_dr_grpo``: the cpu demo's science (calibrated in docs/cpu_lora_rank.md): Dr.GRPO without KL, the
  accuracy reward plus a boxed-format reward (0.5), one worked example before each question, LoRA rank 8 on every
  linear layer, lr 2e-4 constant, on the seeded arithmetic task.
- ``tina_limr``: the Tina repository's LIMR recipe (recipes/DeepSeek-R1-Distill-Qwen-1.5B/grpo/
  model_curated_limr.yaml): GRPO (beta 0.04, epsilon 0.2), format + accuracy rewards (1, 2), the OpenR1 system
  prompt and Tina's R1 chat template, LoRA rank 32 / alpha 128 / dropout 0.05 on every linear layer, lr 1e-6
  cosine_with_min_lr (min 0.1, warmup 0.1), rollouts at temperature 0.7, on LIMR.
"""

from __future__ import annotations

import copy
from typing import Any

from tina_sweep.study.scales import ALL_LINEAR, scale_preset
from tina_sweep.trial.prompts import OPEN_R1_SYSTEM_PROMPT

# The worked example shown before every cpu-scale question. Its operand 60 lies outside the generator's
# range, so it never coincides with a training or held-out problem. Measured on 100 held-out problems
# (greedy, strict grading): with no example the model never writes a box (Pass@1 0.00); with this one it boxes
# 69% of its answers (Pass@1 0.40); with a second example (13 * 4 = 52) 0.45, leaving RL nothing to teach.
CPU_EXAMPLES = [
    {"question": "What is 60 + 7?", "answer": "60 + 7 = 67\n\\boxed{67}"},
]

BOXED_SYSTEM_PROMPT = "Give only the final number inside \\boxed{}."

RECIPES: dict[str, dict[str, Any]] = {
    "arithmetic_smoke": {
        "prompt": {"system": BOXED_SYSTEM_PROMPT, "instruction": ""},
        "lora": {"rank": 4, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        "algorithm": {"name": "dr_grpo", "temperature": 1.0, "rewards": [{"name": "accuracy", "weight": 1.0}]},
        "training": {"learning_rate": 1e-3},
        "dataset": {"name": "arithmetic"},
    },
    "arithmetic_dr_grpo": {
        "prompt": {"system": BOXED_SYSTEM_PROMPT, "instruction": "", "examples": CPU_EXAMPLES},
        "lora": {"rank": 8, "alpha_per_rank": 4.0, "dropout": 0.0, "target_modules": ALL_LINEAR},
        "algorithm": {"name": "dr_grpo", "beta": 0.0, "temperature": 1.0, "top_k": 50,
                      "rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "boxed_format", "weight": 0.5}]},
        "training": {"learning_rate": 2e-4, "lr_scheduler_type": "constant"},
        "dataset": {"name": "arithmetic"},
    },
    # The base every paper-scale study starts from; a study's paper entry sets what its Tina recipes change (see
    # docs/recipe_parity.md, checked by tests/test_recipes.py against tina_recipes.csv).
    "tina_limr": {
        "prompt": {"system": OPEN_R1_SYSTEM_PROMPT, "instruction": "", "chat_template": "deepseek_r1_reason"},
        "lora": {"rank": 32, "alpha_per_rank": 4.0, "dropout": 0.05, "target_modules": ALL_LINEAR},
        "algorithm": {"name": "grpo", "beta": 0.04, "epsilon": 0.2, "temperature": 0.7, "top_p": 1.0, "top_k": 0,
                      "rewards": [{"name": "format", "weight": 1.0}, {"name": "accuracy", "weight": 2.0}]},
        "training": {"learning_rate": 1e-6, "lr_scheduler_type": "cosine_with_min_lr", "min_lr_rate": 0.1,
                     "warmup_ratio": 0.1, "weight_decay": 0.0, "max_grad_norm": 1.0},
        "dataset": {"name": "limr"},
    },
}

# What a scale runs when a study names no recipe
DEFAULT_RECIPES = {"smoke": "arithmetic_smoke", "cpu": "arithmetic_dr_grpo", "paper": "tina_limr"}


def recipe_for(scale: str, recipe: str | None = None) -> str:
    """The recipe a study runs at ``scale``: the one it names, else the scale's default."""
    return recipe or DEFAULT_RECIPES[scale]


def preset(scale: str, recipe: str | None = None) -> dict[str, Any]:
    """A fresh spec tree: the scale's model, budget and benchmarks, with the recipe's science merged in (the two
    set different fields)."""
    tree = scale_preset(scale)
    for section, fields in RECIPES[recipe_for(scale, recipe)].items():
        tree.setdefault(section, {}).update(copy.deepcopy(fields))
    return tree
