"""Tina's RL-algorithm ablation: GRPO vs Dr.GRPO (paper: Open-RS, LoRA rank 32, lr 1e-6).

At paper scale both arms run the Tina repository's open_rs3 recipe (open-rs, format + cosine rewards with
cosine_max_len 3584, 6 completions, 1500-step horizon stopped at step 850, checkpoints every 50 steps).

What the published Dr.GRPO row ran: its recipe (open_rs3_drgrpo_ablation) differs from open_rs3 only by
`scale_reward: false`, a misspelling of the trainer's `scale_rewards`; TRL's parser dropped the unknown key, so
that run used the default (True), i.e. the very GRPO recipe of the other row (the two published rows differ only
by run-to-run noise and the checkpoint reported). What this study runs: Dr.GRPO as Liu et al. define it, TRL's
loss_type="dr_grpo" with scale_rewards="none" (no std scaling; token losses summed and divided by batch x
max_completion_length). Tina's own trainer, had the key been spelled right, would have dropped the std scaling and
averaged token losses over the batch (TRL's "bnpo" aggregation) -- neither the published run nor Liu et al.'s
algorithm. So the dr_grpo arm is the experiment the paper meant to report, not a rerun of its row.

The dapo arm (not in the paper) runs DAPO (Yu et al., 2025) on the same recipe: token-level loss over the batch,
clip-higher (epsilon_high 0.28), truncated completions masked out of the loss, no KL term (beta 0), and its soft
overlong punishment as one more reward (the last quarter of the completion budget).
"""

from tina_sweep import Study
from tina_sweep.trial.prompts import OPEN_RS_SYSTEM_PROMPT
from tina_sweep.trial.rewards import tina_cosine_params

OPEN_RS3_REWARDS = [{"name": "format", "weight": 1.0},
                    {"name": "cosine", "weight": 2.0, "params": tina_cosine_params(3584)}]
OVERLONG = {"name": "overlong", "weight": 1.0}  # DAPO's soft overlong punishment

study = Study(
    name="rl_algorithm",
    description="GRPO vs Dr.GRPO vs DAPO",
    recipe="tina_limr",  # at paper scale, with the open_rs3 recipe's fields below
    axes={"algorithm.name": ["grpo", "dr_grpo", "dapo"]},
    linked={"algorithm.name": {"dapo": {"algorithm.beta": 0.0}}},
    scales={
        "cpu": {"recipe": "arithmetic_dr_grpo", "linked": {"algorithm.name": {"dapo": {"algorithm.rewards": [
            {"name": "accuracy", "weight": 1.0}, {"name": "boxed_format", "weight": 0.5}, OVERLONG]}}}},
        "smoke": {"recipe": "arithmetic_smoke"},
        "paper": {"base": {
            "dataset.name": "open_rs", "prompt.system": OPEN_RS_SYSTEM_PROMPT, "algorithm.rewards": OPEN_RS3_REWARDS,
            "algorithm.num_generations": 6, "training.max_steps": 1500, "training.stop_at_step": 850,
            "training.save_steps": 50},
            "linked": {"algorithm.name": {"dapo": {"algorithm.rewards": OPEN_RS3_REWARDS + [OVERLONG]}}}},
    },
)
