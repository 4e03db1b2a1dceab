"""Tina's RL-algorithm ablation: GRPO vs Dr.GRPO (paper: Open-RS, LoRA rank 32, lr 1e-6).

Dr.GRPO here is the real thing (TRL loss_type="dr_grpo", scale_rewards="none"); the Tina repository's
Dr.GRPO recipe misspelled `scale_reward`, which its parser dropped silently, so its rewards stayed scaled.
"""

from tina_sweep import Study

study = Study(
    name="rl_algorithm",
    description="GRPO vs Dr.GRPO",
    axes={"algorithm.name": ["grpo", "dr_grpo"]},
    scales={"paper": {"base": {"dataset.name": "open_rs", "lora.rank": 32}}},
)
