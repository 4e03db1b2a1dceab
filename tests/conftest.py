"""Shared fixtures: a per-session model cache, the tiny random model, smoke-scale specs and trained trials."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STUDIES_DIR = REPO / "studies"

# No network here: make every Hugging Face lookup fail fast instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# W&B off unless a test asks for it (tests/test_wandb.py passes --wandb offline)
os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(scope="session", autouse=True)
def tina_cache(tmp_path_factory) -> Path:
    """TINA_SWEEP_CACHE points at a fresh directory for the whole session (child processes inherit it)."""
    path = tmp_path_factory.mktemp("tina-cache")
    previous = os.environ.get("TINA_SWEEP_CACHE")
    os.environ["TINA_SWEEP_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("TINA_SWEEP_CACHE", None)
    else:
        os.environ["TINA_SWEEP_CACHE"] = previous


@pytest.fixture(scope="module", autouse=True)
def _pin_cache(tina_cache) -> None:
    """Re-point TINA_SWEEP_CACHE at the session cache for every module, in case a test elsewhere changed it."""
    os.environ["TINA_SWEEP_CACHE"] = str(tina_cache)


@pytest.fixture(scope="session")
def tiny_model_dir(tina_cache) -> Path:
    """The tiny random Qwen2, built once per session inside the session cache."""
    from tina_sweep.models import resolve_model

    path = Path(resolve_model("tiny-random-qwen2"))
    assert path == tina_cache / "models" / "tiny-random-qwen2"
    assert (path / "model.safetensors").is_file()
    return path


def smoke_tree(**dotted) -> dict:
    """The smoke preset with dotted overrides applied (``smoke_tree(**{"lora.rank": 2})``)."""
    from tina_sweep.scales import scale_preset
    from tina_sweep.study import set_dotted

    tree = scale_preset("smoke")
    for field, value in dotted.items():
        set_dotted(tree, field, value)
    return tree


def smoke_spec(**dotted):
    from tina_sweep.config import TrialSpec

    return TrialSpec.model_validate(smoke_tree(**dotted))


# The two trainings the train and evaluate tests inspect: the smoke preset (Dr. GRPO, alpha from the rule)
# and a GRPO variant with a KL term, an explicit alpha, two prompts per step and two rewards.
TRAIN_VARIANTS = {
    "dr_grpo": {},
    "grpo": {"algorithm.name": "grpo", "algorithm.beta": 0.04, "lora.rank": 2, "lora.alpha": 6,
             "training.learning_rate": 5e-4, "training.prompts_per_step": 2, "seed": 7,
             # the random model is never right, so accuracy alone gives zero advantages: the length reward
             # (which varies within a group) makes the update non-zero
             "algorithm.rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "length", "weight": 1.0}]},
}


class TrainedTrial:
    def __init__(self, name, spec, trial_dir, outcome, received_args):
        self.name, self.spec, self.trial_dir, self.outcome = name, spec, trial_dir, outcome
        self.received_args = received_args  # the GRPOConfig object GRPOTrainer.__init__ was given


_TRAINED: dict[str, TrainedTrial] = {}


def train_variant(name: str, root: Path) -> TrainedTrial:
    """Train one variant for two steps (once per session), recording the args the trainer received."""
    if name in _TRAINED:
        return _TRAINED[name]
    import tina_sweep.train as train_module

    spec = smoke_spec(**TRAIN_VARIANTS[name])
    received = []
    original = train_module.GRPOTrainer

    class RecordingTrainer(original):
        def __init__(self, *args, **kwargs):
            received.append(kwargs.get("args"))
            super().__init__(*args, **kwargs)

    train_module.GRPOTrainer = RecordingTrainer
    try:
        trial_dir = root / name
        outcome = train_module.train_trial(spec, trial_dir)
    finally:
        train_module.GRPOTrainer = original
    assert len(received) == 1
    _TRAINED[name] = TrainedTrial(name, spec, trial_dir, outcome, received[0])
    return _TRAINED[name]


@pytest.fixture(scope="session")
def train_root(tmp_path_factory, tiny_model_dir) -> Path:
    return tmp_path_factory.mktemp("trained")


@pytest.fixture(scope="session")
def trained_dr_grpo(train_root) -> TrainedTrial:
    return train_variant("dr_grpo", train_root)


@pytest.fixture(scope="session", params=sorted(TRAIN_VARIANTS))
def trained(request, train_root) -> TrainedTrial:
    return train_variant(request.param, train_root)
