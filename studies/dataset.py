"""Tina's training-dataset ablation (paper: seven RL datasets from 1.4k to 94k problems, LoRA rank 32).

At cpu scale it compares the arithmetic task with GSM8K word problems (both offline); at paper scale it runs the
Tina repository's recipe of each dataset (hub access needed for all but LIMR): the recipes differ in more than
the data (rewards, completions per prompt, schedule horizon, checkpoint interval, system prompt), so each
dataset carries its recipe's fields (``linked``). The "Open-RS (7k)" row of the paper is the open_rs2 recipe
(format + accuracy, 6 completions): its published numbers are Tina-Open-RS2's. open_r1 and open_thoughts set no
max_steps: one epoch, as their recipes; the others stop at the step their recipe's comment names (LIMR: 180 of
360). See docs/recipe_parity.md.
"""

from tina_sweep import Study
from tina_sweep.trial.prompts import OPEN_RS_SYSTEM_PROMPT
from tina_sweep.trial.rewards import tina_cosine_params

FORMAT_ACCURACY = [{"name": "format", "weight": 1.0}, {"name": "accuracy", "weight": 2.0}]
SEVEN_REWARDS = [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 1.0},
                 {"name": "tag_count", "weight": 1.0}, {"name": "length", "weight": 1.0},
                 {"name": "reasoning_steps", "weight": 1.0},
                 {"name": "cosine", "weight": 1.0, "params": tina_cosine_params(3584)},
                 {"name": "repetition_penalty", "weight": 1.0}]

study = Study(
    name="dataset",
    description="Training-dataset ablation",
    recipe="tina_limr",
    axes={"dataset.name": ["open_r1", "open_thoughts", "deepscaler", "still3", "open_s1", "open_rs", "limr"]},
    scales={
        "paper": {
            "base": {"training.stop_at_step": 180},  # LIMR's stop step
            "linked": {"dataset.name": {
                # recipe open_r1 / thoughts: seven rewards, 8 completions, one epoch, checkpoints every 100 steps
                "open_r1": {"algorithm.rewards": SEVEN_REWARDS, "algorithm.num_generations": 8,
                            "training.max_steps": None, "training.stop_at_step": None, "training.save_steps": 100,
                            "algorithm.vllm_max_model_length": None},
                "open_thoughts": {"algorithm.rewards": SEVEN_REWARDS, "algorithm.num_generations": 8,
                                  "training.max_steps": None, "training.stop_at_step": None, "training.save_steps": 100,
                                  "algorithm.vllm_gpu_memory_utilization": 0.6,
                                  "algorithm.vllm_max_model_length": None},
                "deepscaler": {"algorithm.rewards": FORMAT_ACCURACY, "training.max_steps": 11000,
                               "training.stop_at_step": 5500, "training.save_steps": 100},
                "still3": {"algorithm.rewards": [{"name": "length", "weight": 1.0},
                                                 {"name": "accuracy", "weight": 2.0}],
                           "training.max_steps": 7500, "training.stop_at_step": 3750, "training.save_steps": 10},
                "open_s1": {"algorithm.rewards": FORMAT_ACCURACY, "training.max_steps": 5000,
                            "training.stop_at_step": 2400, "training.save_steps": 100},
                "open_rs": {"algorithm.rewards": FORMAT_ACCURACY, "algorithm.num_generations": 6,
                            "training.max_steps": 1500, "training.stop_at_step": 850, "training.save_steps": 50,
                            "prompt.system": OPEN_RS_SYSTEM_PROMPT},
                "limr": {},  # the paper preset is the LIMR recipe
            }},
        },
        "cpu": {"recipe": "arithmetic_dr_grpo", "axes": {"dataset.name": ["arithmetic", "gsm8k_train"]}},
        "smoke": {"recipe": "arithmetic_smoke", "axes": {"dataset.name": ["arithmetic", "gsm8k_train"]}},
    },
)
