"""tina-sweep: ablation sweeps of LoRA + RL fine-tuning on small reasoning models (the Tina paper, as one tool)."""

from tina_sweep.config import TrialSpec
from tina_sweep.study import Study

__all__ = ["Study", "TrialSpec"]
__version__ = "0.1.0"
