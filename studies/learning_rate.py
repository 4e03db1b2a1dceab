"""Tina's learning-rate ablation (paper: LIMR, LoRA rank 32, GRPO, lr 5e-7 / 1e-6 / 5e-6).

At paper scale the three trials are the Tina repository's limr_small_lr_ablation, limr and
limr_large_lr_ablation recipes, which differ only in the learning rate (the paper preset is the LIMR recipe).
Each trains 180 of its 360-step schedule, as the recipes say ("use 360 for lr scheduler but stop at 180 steps").
"""

from tina_sweep import Study

study = Study(
    name="learning_rate",
    description="Learning-rate ablation at fixed LoRA rank",
    recipe="tina_limr",  # LIMR, GRPO, LoRA rank 32
    axes={"training.learning_rate": [5e-7, 1e-6, 5e-6]},
    scales={
        "paper": {"base": {"training.stop_at_step": 180}},
        "cpu": {"recipe": "arithmetic_dr_grpo", "axes": {"training.learning_rate": [5e-5, 2e-4, 5e-4]}},
        "smoke": {"recipe": "arithmetic_smoke", "axes": {"training.learning_rate": [1e-3, 1e-2]}},
    },
)
