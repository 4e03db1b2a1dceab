"""Tina's LoRA-rank ablation: does a bigger adapter help? (paper: LIMR, lr 1e-6, GRPO, ranks 4 to 64)."""

from tina_sweep import Study

study = Study(
    name="lora_rank",
    description="LoRA rank ablation; alpha follows rank (alpha = 4 x rank, as in the paper)",
    base={"lora.alpha_per_rank": 4.0},
    axes={"lora.rank": [4, 8, 16, 32, 64]},
    scales={
        "paper": {"base": {"dataset.name": "limr", "algorithm.name": "grpo", "training.learning_rate": 1e-6}},
        "cpu": {"axes": {"lora.rank": [4, 16, 64]}},
        "smoke": {"axes": {"lora.rank": [2, 4]}},
    },
)
