"""Scales hold the model, the budget and the benchmarks; the science is a named recipe the study picks; trial ids
read rank=4, lr=5e-05, algorithm=grpo."""

from __future__ import annotations

import glob

import pytest

from tina_sweep.study.recipes import DEFAULT_RECIPES, RECIPES, preset
from tina_sweep.study.scales import SCALES
from tina_sweep.study.study import Study, at_scale, load_study, resolve
from tina_sweep.trial.spec import ConfigError, TrialSpec
from tina_sweep.trial.trial import axis_short_name

SCIENCE = {"prompt", "lora", "algorithm.name", "algorithm.rewards", "algorithm.beta", "algorithm.temperature",
           "training.learning_rate", "training.lr_scheduler_type", "dataset.name"}


def _fields(tree: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in tree.items():
        out.add(prefix + key)
        if isinstance(value, dict) and key != "eval":
            out |= _fields(value, f"{prefix}{key}.")
    return out


@pytest.mark.parametrize("scale", list(SCALES))
def test_scales_carry_no_science(scale):
    assert not _fields(SCALES[scale]) & SCIENCE
    TrialSpec.model_validate(preset(scale))  # a scale plus its default recipe is a whole trial


def test_every_recipe_runs_at_every_scale():
    for recipe in RECIPES:
        for scale in SCALES:
            spec = TrialSpec.model_validate(preset(scale, recipe))
            assert spec.model.name == SCALES[scale]["model"]["name"]


def test_a_study_names_its_recipe_per_scale():
    study = Study(name="r", recipe="tina_limr", axes={"lora.rank": [4, 8]},
                  scales={"cpu": {"recipe": "arithmetic_dr_grpo"}})
    assert at_scale(study, "paper").recipe == "tina_limr" and at_scale(study, "cpu").recipe == "arithmetic_dr_grpo"
    assert at_scale(study, "smoke").recipe == "tina_limr"  # no override: the study's own
    assert at_scale(Study(name="d", axes={"lora.rank": [4]}), "cpu").recipe == DEFAULT_RECIPES["cpu"]
    paper = resolve(study, "paper")[0].spec
    assert (paper.algorithm.name, paper.dataset.name, paper.training.learning_rate) == ("grpo", "limr", 1e-6)
    cpu = resolve(study, "cpu")[0].spec
    assert (cpu.algorithm.name, cpu.dataset.name, cpu.training.learning_rate) == ("dr_grpo", "arithmetic", 2e-4)


def test_an_unknown_recipe_is_a_one_line_error(tmp_path):
    path = tmp_path / "typo.py"
    path.write_text("from tina_sweep import Study\nstudy = Study(name='t', recipe='tina_limbr', axes={'lora.rank': [2]})\n")
    with pytest.raises(ConfigError, match=r"recipe: unknown recipe 'tina_limbr' \(known: arithmetic_smoke, "):
        load_study(path)


@pytest.mark.parametrize("path", sorted(glob.glob("studies/*.py")))
def test_shipped_studies_state_their_recipe_at_every_scale(path):
    study = load_study(path)
    if study.name == "smoke":
        return  # the plumbing study runs each scale's default
    assert study.recipe == "tina_limr"
    for scale in ("cpu", "smoke"):
        assert study.scales[scale].recipe is not None, (study.name, scale)


def test_lora_rank_top_level_axes_are_the_papers():
    study = load_study("studies/lora_rank.py")
    assert at_scale(study, "paper").axes == {"lora.rank": [4, 8, 16, 32, 128]}
    cpu = resolve(study, "cpu")
    assert [t.trial_id.split("-s")[0] for t in cpu][::3] == ["rank=4", "rank=16", "rank=64"]
    assert [t.spec.seed for t in cpu] == [42, 7, 13] * 3  # three seeds per arm at the cpu scale
    assert {t.spec.training.cpu_autocast for t in cpu} == {"bf16"}


@pytest.mark.parametrize("field, short", [("training.learning_rate", "lr"), ("algorithm.name", "algorithm"),
                                          ("lora.rank", "rank"), ("dataset.name", "dataset"),
                                          ("algorithm.beta", "beta"), ("eval.grader", "grader")])
def test_axis_short_names(field, short):
    assert axis_short_name(field) == short


def test_trial_ids_read_short_names():
    ids = [t.trial_id for t in resolve(load_study("studies/rl_algorithm.py"), "cpu")]
    assert [i.split("-s42-")[0] for i in ids] == ["algorithm=grpo", "algorithm=dr_grpo", "algorithm=dapo"]
    ids = [t.trial_id for t in resolve(load_study("studies/learning_rate.py"), "cpu")]
    assert [i.split("-s42-")[0] for i in ids] == ["lr=5e-05", "lr=0.0002", "lr=0.0005"]
