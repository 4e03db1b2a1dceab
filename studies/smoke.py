"""A two-trial study for trying the tool in seconds: `tina-sweep run studies/smoke.py --scale smoke`."""

from tina_sweep import Study

study = Study(
    name="smoke",
    description="LoRA rank 2 vs 4 on the tiny random model (plumbing only, no learning expected)",
    axes={"lora.rank": [2, 4]},  # no recipe named: each scale's default (smoke: arithmetic_smoke)
)
