"""Tina's LoRA-rank ablation: does a bigger adapter help? (paper: LIMR, lr 1e-6, GRPO, ranks 4 to "64").

At paper scale the trials are the Tina repository's limr_tiny/small/medium_rank_ablation, limr and
limr_large_rank_ablation recipes. The paper's table labels the largest adapter "64", but the recipe that
produced that row (limr_large_rank_ablation) trains rank 128 with alpha 512: this study runs rank 128 (alpha =
4 x rank, as every Tina recipe), so its largest arm reproduces the published row; its result appears under
rank 128 where the paper prints 64. The rank-32 arm is the LIMR recipe itself, which checkpoints every 10
steps; the other ranks' recipes checkpoint every 50. Each trains 180 of its 360-step schedule, as the recipes say.
"""

from tina_sweep import Study

study = Study(
    name="lora_rank",
    description="LoRA rank ablation; alpha follows rank (alpha = 4 x rank, as in the paper)",
    recipe="tina_limr",  # the paper's: GRPO, format + accuracy rewards, LIMR, lr 1e-6
    base={"lora.alpha_per_rank": 4.0},
    axes={"lora.rank": [4, 8, 16, 32, 128]},
    scales={
        "paper": {"base": {"training.save_steps": 50, "training.stop_at_step": 180},
                  "linked": {"lora.rank": {"32": {"training.save_steps": 10}}}},
        # on 2 CPU cores: Dr.GRPO with accuracy + boxed-format rewards on arithmetic, 3 seeds per arm (one seed's
        # effects sit inside the seed spread: docs/cpu_lora_rank.md)
        "cpu": {"recipe": "arithmetic_dr_grpo", "axes": {"lora.rank": [4, 16, 64]}, "seeds": [42, 7, 13]},
        "smoke": {"recipe": "arithmetic_smoke", "axes": {"lora.rank": [2, 4]}},
    },
)
