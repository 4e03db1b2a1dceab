"""The RL algorithm axis (``algorithm.name``): each algorithm as the TRL 1.x GRPOConfig fields it sets, in one
place (the spec reads the names from here; the trainer passes the fields to GRPOConfig as they are)."""

from __future__ import annotations

from typing import Any

ALGORITHMS: dict[str, dict[str, Any]] = {
    # GRPO (Shao et al., 2024) as the Tina recipes ran it: per-sequence length normalisation, group std scaling
    "grpo": {"loss_type": "grpo", "scale_rewards": "group"},
    # Dr. GRPO (Liu et al., 2025): no std scaling, no 1/|o| normalisation
    "dr_grpo": {"loss_type": "dr_grpo", "scale_rewards": "none"},
    # DAPO (Yu et al., 2025): token-level normalisation over the batch, clip-higher (epsilon_high 0.28, the paper's),
    # truncated completions masked out of the loss (overlong filtering); its soft overlong punishment is the
    # ``overlong`` reward, and its beta 0 is the recipe's (algorithm.beta)
    "dapo": {"loss_type": "dapo", "scale_rewards": "group", "epsilon_high": 0.28, "mask_truncated_completions": True},
}
