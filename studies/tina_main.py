"""Tina's main results: one LoRA-GRPO run per row of the paper's main table (Tina-STILL-3-1.5B-preview,
Tina-DeepScaleR-1.5B-Preview, Tina-Open-RS1, -Open-RS2, -Open-RS3).

Each trial is one recipe of the Tina repository, named by the label axis ``recipe``: the recipes differ in data,
rewards, completions per prompt, schedule horizon, checkpoint interval and system prompt, so each value carries
its recipe's fields (``linked``); the paper preset supplies the rest (LoRA rank 32 / alpha 128, lr 1e-6 with
cosine_with_min_lr, temperature 0.7, beta 0.04, vLLM rollouts). Open-RS2 and Open-RS3 train on the same set
(knoveleng/open-rs) with different rewards. The paper stops each run early and reports its best checkpoint
(``--eval-checkpoints``); ``max_steps`` is the recipe's scheduler horizon and ``stop_at_step`` the step its
comment says training stopped at ("use 1500 for lr scheduler but stop at 850 steps"). See docs/recipe_parity.md.

At cpu and smoke scale only the two reward families (format + accuracy, format + cosine) run, on the
offline arithmetic task: a plumbing check, not the science.
"""

from tina_sweep import Study
from tina_sweep.trial.prompts import OPEN_RS_SYSTEM_PROMPT
from tina_sweep.trial.rewards import tina_cosine_params

FORMAT_ACCURACY = [{"name": "format", "weight": 1.0}, {"name": "accuracy", "weight": 2.0}]
FORMAT_COSINE = [{"name": "format", "weight": 1.0},
                 {"name": "cosine", "weight": 2.0, "params": tina_cosine_params(3584)}]

study = Study(
    name="tina_main",
    description="Tina main results: one trial per recipe of the main table",
    recipe="tina_limr",  # what every Tina recipe shares; each axis value's linked fields set the rest
    axes={"recipe": ["still", "deepscaler", "open_rs1", "open_rs2", "open_rs3"]},
    linked={"recipe": {"open_rs2": {"algorithm.rewards": FORMAT_ACCURACY},
                       "open_rs3": {"algorithm.rewards": FORMAT_COSINE}}},
    scales={
        "paper": {"linked": {"recipe": {
            "still": {"dataset.name": "still3", "training.max_steps": 7500, "training.stop_at_step": 3750,
                      "training.save_steps": 10,
                      "algorithm.rewards": [{"name": "length", "weight": 1.0}, {"name": "accuracy", "weight": 2.0}]},
            "deepscaler": {"dataset.name": "deepscaler", "training.max_steps": 11000, "training.stop_at_step": 5500,
                           "training.save_steps": 100,
                           "algorithm.rewards": FORMAT_ACCURACY},
            "open_rs1": {"dataset.name": "open_s1", "training.max_steps": 5000, "training.stop_at_step": 2400,
                         "training.save_steps": 100,
                         "algorithm.rewards": FORMAT_ACCURACY},
            "open_rs2": {"dataset.name": "open_rs", "algorithm.num_generations": 6, "training.max_steps": 1500,
                         "training.stop_at_step": 850, "training.save_steps": 50,
                         "prompt.system": OPEN_RS_SYSTEM_PROMPT},
            "open_rs3": {"dataset.name": "open_rs", "algorithm.num_generations": 6, "training.max_steps": 1500,
                         "training.stop_at_step": 850, "training.save_steps": 50,
                         "prompt.system": OPEN_RS_SYSTEM_PROMPT},
        }}},
        "cpu": {"recipe": "arithmetic_dr_grpo", "axes": {"recipe": ["open_rs2", "open_rs3"]}},
        "smoke": {"recipe": "arithmetic_smoke", "axes": {"recipe": ["open_rs2", "open_rs3"]}},
    },
)
