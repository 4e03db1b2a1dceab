"""DAPO as a third value of the algorithm axis: TRL's fields for it, its soft overlong punishment as a reward, and
two real TRL training steps with both."""

from __future__ import annotations

import json

import pytest
from conftest import smoke_spec, train_variant

from tina_sweep.study.study import load_study, resolve
from tina_sweep.trial.algorithms import ALGORITHMS
from tina_sweep.trial.rewards import reward_function
from tina_sweep.trial.spec import ConfigError, TrialSpec
from tina_sweep.trial.train.trainer import grpo_config

DAPO = {"algorithm.name": "dapo", "algorithm.beta": 0.0,
        "algorithm.rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "overlong", "weight": 1.0}]}


def test_dapo_is_trls_dapo_loss_with_clip_higher_and_overlong_filtering(tmp_path):
    config = grpo_config(smoke_spec(**DAPO), tmp_path, True)
    assert (config.loss_type, config.scale_rewards) == ("dapo", "group")
    assert config.epsilon == 0.2 and config.epsilon_high == 0.28  # DAPO's clip-higher
    assert config.mask_truncated_completions and config.beta == 0.0
    grpo = grpo_config(smoke_spec(**{"algorithm.name": "grpo"}), tmp_path, True)
    assert grpo.epsilon_high is None and not grpo.mask_truncated_completions  # TRL defaults for the others


@pytest.mark.parametrize("length, expected", [(4, 0.0), (5, -0.25), (6, -0.5), (8, -1.0), (9, -1.0)])
def test_overlong_punishment_is_dapos_equation_13(length, expected):
    """Budget 8 tokens, cache 4: nothing up to 4 tokens, then linearly down to -1 at 8 (and beyond)."""
    overlong = reward_function("overlong", 8, {"cache": 4})
    assert overlong(completions=["x"], completion_ids=[[1] * length]) == [pytest.approx(expected)]
    assert reward_function("overlong", 8)(completions=["x"], completion_ids=[[1] * 7]) == [pytest.approx(-0.5)]


def test_overlong_parameters_are_checked():
    with pytest.raises(Exception, match="params.cach: reward 'overlong' takes cache"):
        TrialSpec.model_validate(smoke_spec(**{"algorithm.rewards": [
            {"name": "overlong", "params": {"cach": 4}}]}).model_dump())


def test_dapo_trains_with_trl(tmp_path_factory):
    trained = train_variant("dapo", tmp_path_factory.mktemp("dapo"))
    args = trained.received_args
    assert (args.loss_type, args.epsilon_high, args.mask_truncated_completions) == ("dapo", 0.28, True)
    log = [json.loads(line) for line in (trained.trial_dir / "train_log.jsonl").read_text().splitlines()]
    assert len([r for r in log if "loss" in r]) == 2
    assert all("rewards/overlong/mean" in r for r in log if "loss" in r)
    assert all(-1.0 <= r["rewards/overlong/mean"] <= 0.0 for r in log if "loss" in r)


def test_rl_algorithm_study_runs_dapo_as_its_third_arm():
    for scale in ("cpu", "paper"):
        *_, dapo = resolve(load_study("studies/rl_algorithm.py"), scale)
        assert dapo.trial_id.startswith("algorithm=dapo-") and dapo.spec.algorithm.beta == 0.0
        assert dapo.spec.algorithm.rewards[-1].name == "overlong"
    assert set(ALGORITHMS) == {"grpo", "dr_grpo", "dapo"}
    with pytest.raises(ConfigError):
        from tina_sweep.study.study import Study

        resolve(Study(name="x", axes={"algorithm.name": ["dapo2"]}), "smoke")
