"""Tina's training-dataset ablation (paper: seven RL datasets from 1.4k to 94k problems, LoRA rank 32).

At cpu scale it compares the arithmetic task with GSM8K word problems (both offline); at paper scale it uses
the seven Tina datasets (hub access needed for all but LIMR).
"""

from tina_sweep import Study

study = Study(
    name="dataset",
    description="Training-dataset ablation",
    axes={"dataset.name": ["open_r1", "open_thoughts", "deepscaler", "still3", "open_s1", "open_rs", "limr"]},
    scales={
        "paper": {"base": {"algorithm.name": "grpo", "lora.rank": 32}},
        "cpu": {"axes": {"dataset.name": ["arithmetic", "gsm8k_train"]}},
        "smoke": {"axes": {"dataset.name": ["arithmetic", "gsm8k_train"]}},
    },
)
