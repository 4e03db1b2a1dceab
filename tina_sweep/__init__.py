"""tina-sweep: ablation sweeps of LoRA + RL fine-tuning on small reasoning models (the Tina paper, as one tool)."""

from tina_sweep.trial.spec import TrialSpec
from tina_sweep.study.study import Study

__all__ = ["Study", "TrialSpec"]
__version__ = "0.1.0"
