"""Studies: a base spec, axes over dotted fields, seeds and a design -> a list of fully resolved trials.

A study file is a short Python file that builds ``study = Study(...)``. The science lives in the study: the
recipe it names (``tina_sweep.study.recipes``: algorithm, rewards, data, prompt, LoRA, optimiser), its base fields
and its axes. The size of the run is a *scale* (``smoke``, ``cpu``, ``paper``: the model, the budget and the
benchmarks), and a study may change anything per scale (another recipe, other axis values, say).
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tina_sweep.trial.spec import ConfigError, DevSpec, TrialSpec, first_error_line
from tina_sweep.study.recipes import RECIPES, preset, recipe_for
from tina_sweep.study.scales import SCALES
from tina_sweep.trial.trial import Trial, axis_short_name

Design = Literal["grid", "one_at_a_time"]
# axis -> axis value (as str) -> dotted fields set together with that value
Linked = dict[str, dict[str, dict[str, Any]]]


def _known_recipe(recipe: str | None) -> str | None:
    if recipe is not None and recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r} (known: {', '.join(RECIPES)})")
    return recipe


class ScaleOverride(BaseModel):
    """What a study changes at one scale: its recipe, base fields, axis values, seeds."""

    model_config = ConfigDict(extra="forbid")
    recipe: str | None = Field(None, description="the recipe at this scale (default: the study's)")
    base: dict[str, Any] = Field(default_factory=dict)
    axes: dict[str, list[Any]] = Field(default_factory=dict)
    seeds: list[int] | None = None
    linked: Linked = Field(default_factory=dict)

    _check_recipe = field_validator("recipe")(_known_recipe)


class Study(BaseModel):
    """An ablation study: ``axes`` maps dotted spec fields (``lora.rank``) to the values to try."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)
    description: str = ""
    recipe: str | None = Field(None, description="the science every trial starts from (tina_sweep.study.recipes); "
                                                 "None: each scale's default recipe")
    base: dict[str, Any] = Field(default_factory=dict, description="dotted field -> value, at every scale")
    axes: dict[str, list[Any]] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [42], min_length=1)
    design: Design = "grid"
    scales: dict[str, ScaleOverride] = Field(default_factory=dict)
    linked: Linked = Field(
        default_factory=dict,
        description="axis -> value -> dotted fields set together with that value (a recipe that differs in more than "
                    "one field); an axis that names no spec field (``recipe``) is a label whose values are defined "
                    "entirely by their linked fields")
    evaluate_base_model: bool = True
    wandb_project: str | None = Field(None, description="W&B project (default: the study's name)")
    stopping: dict[str, Any] | None = Field(
        None, description="spend only what the conclusion needs: a dev split scored at every checkpoint, early stopping "
                          "and pruning of arms, e.g. {'pruner': 'successive_halving', 'min_steps': 10} or "
                          "{'patience': 2}; the fields of tina_sweep.trial.spec.DevSpec (every trial's ``dev``). "
                          "None: every trial trains its whole horizon (a faithful ablation)")

    _check_recipe = field_validator("recipe")(_known_recipe)

    @field_validator("stopping")
    @classmethod
    def _valid_stopping(cls, stopping: dict[str, Any] | None) -> dict[str, Any] | None:
        if stopping is not None:
            try:
                DevSpec.model_validate(stopping)
            except ValidationError as error:
                raise ValueError(first_error_line(error, "stopping.")) from None
        return stopping

    @field_validator("axes")
    @classmethod
    def _axes_not_empty(cls, axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for field, values in axes.items():
            if not values:
                raise ValueError(f"axis {field!r} has no values")
            if len({repr(v) for v in values}) != len(values):
                raise ValueError(f"axis {field!r} repeats a value: {values}")
        return axes

    @model_validator(mode="after")
    def _linked_values_exist(self) -> "Study":
        values: dict[str, set[str]] = {}
        for axes in [self.axes] + [o.axes for o in self.scales.values()]:
            for axis, axis_values in axes.items():
                values.setdefault(axis, set()).update(str(v) for v in axis_values)
        for where, linked in [("linked", self.linked)] + [(f"scales.{n}.linked", o.linked)
                                                           for n, o in self.scales.items()]:
            for axis, by_value in linked.items():
                if axis not in values:
                    raise ValueError(f"{where}.{axis}: not an axis of the study")
                unknown = sorted(set(by_value) - values[axis])
                if unknown:
                    raise ValueError(f"{where}.{axis}.{unknown[0]}: not a value of axis {axis!r} at any scale "
                                     f"(values: {', '.join(sorted(values[axis]))})")
        return self

    @field_validator("scales")
    @classmethod
    def _known_scales(cls, scales: dict[str, ScaleOverride]) -> dict[str, ScaleOverride]:
        unknown = sorted(set(scales) - set(SCALES))
        if unknown:
            raise ValueError(f"unknown scale {unknown[0]!r} (known: {', '.join(SCALES)})")
        return scales


@dataclass(frozen=True)
class StudyAtScale:
    """A study as it runs at one scale: the scale's overrides applied to its recipe, base, axes and seeds (linked
    fields are merged, and checked, by ``resolve``)."""

    scale: str
    recipe: str
    base: dict[str, Any]
    axes: dict[str, list[Any]]
    seeds: list[int]


def at_scale(study: Study, scale: str) -> StudyAtScale:
    """What ``study`` runs at ``scale``: per field, the scale's override wins over the study's."""
    override = study.scales.get(scale, ScaleOverride())
    return StudyAtScale(scale, recipe_for(scale, override.recipe or study.recipe), {**study.base, **override.base},
                        {**study.axes, **override.axes}, override.seeds or study.seeds)


def set_dotted(tree: dict, dotted: str, value: Any) -> None:
    """``set_dotted(d, "lora.rank", 8)`` sets ``d["lora"]["rank"] = 8``, creating sections as needed."""
    *sections, leaf = dotted.split(".")
    node = tree
    for section in sections:
        node = node.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: {section!r} is a value, not a section (it is {node!r})")
    node[leaf] = value


def axis_points(axes: dict[str, list[Any]], design: Design, base_values: dict[str, Any]) -> list[dict[str, Any]]:
    """The axis settings to run: every combination (grid), or each axis varied alone around the base."""
    if design == "grid":
        names = list(axes)
        return [dict(zip(names, combo)) for combo in itertools.product(*(axes[n] for n in names))]
    points: list[dict[str, Any]] = []
    center = {name: base_values.get(name, values[0]) for name, values in axes.items()}
    for name, values in axes.items():
        for value in values:
            point = {**center, name: value}
            if point not in points:
                points.append(point)
    return points


def resolve(study: Study, scale: str) -> list[Trial]:
    """Every trial of ``study`` at ``scale``, fully validated; raises ConfigError with one line on bad input."""
    override = study.scales.get(scale, ScaleOverride())
    plan = at_scale(study, scale)
    axes, base_values, seeds = plan.axes, plan.base, plan.seeds
    linked = _linked_at(study, override, axes, scale)
    trials: list[Trial] = []
    if "seed" in axes or "seed" in base_values:
        raise ConfigError(f"{study.name}: seed: set seeds with Study(seeds=[...]), not as an axis or base field")
    for point in axis_points(axes, study.design, base_values):
        settings = {**base_values, **{k: v for k, v in point.items() if not is_label_axis(k)}}
        for axis, value in point.items():
            settings.update(linked.get(axis, {}).get(str(value), {}))
        for seed in seeds:
            tree = preset(scale, plan.recipe)
            if study.stopping is not None:
                tree["dev"] = dict(study.stopping)
            for field, value in settings.items():
                set_dotted(tree, field, value)
            set_dotted(tree, "seed", seed)
            try:
                spec = TrialSpec.model_validate(tree)
            except ValidationError as error:
                raise ConfigError(f"{study.name}: {first_error_line(error)}") from None
            labels = {**point, "seed": seed} if len(seeds) > 1 else dict(point)
            trials.append(Trial(_trial_id(point, seed, spec), "trial", spec, labels))
    seen: dict[str, Trial] = {}
    for trial in trials:
        twin = seen.setdefault(trial.spec.trial_hash(), trial)
        if twin is not trial:
            raise ConfigError(f"{study.name}: axis settings {twin.axes} and {trial.axes} resolve to the same trial")
    return trials


def is_label_axis(name: str) -> bool:
    """An axis that names no spec field (``recipe``): only a label; its linked fields define each value."""
    return "." not in name and name not in TrialSpec.model_fields


def _linked_at(study: Study, override: ScaleOverride, axes: dict[str, list[Any]], scale: str) -> Linked:
    """The study's linked fields merged with the scale's (per axis value, the scale's fields win), checked: each
    names an axis and one of its values at this scale, never sets an axis field, and every value of a label axis
    has its fields."""
    merged: Linked = {}
    for source in (study.linked, override.linked):
        for axis, by_value in source.items():
            for value, fields in by_value.items():
                merged.setdefault(axis, {}).setdefault(value, {}).update(fields)
    for axis, by_value in merged.items():
        if axis not in axes:
            raise ConfigError(f"{study.name}: linked.{axis}: not an axis of the study")
        known = {str(v) for v in axes[axis]}
        for value, fields in by_value.items():
            clash = sorted(set(fields) & set(axes))
            if clash:
                raise ConfigError(f"{study.name}: linked.{axis}.{value}: sets the axis field {clash[0]!r}")
        # a value linked at another scale only (not an axis value here) is ignored at this scale
        merged[axis] = {value: fields for value, fields in by_value.items() if value in known}
    for axis, values in axes.items():
        if is_label_axis(axis):
            missing = [v for v in values if str(v) not in merged.get(axis, {})]
            if missing:
                raise ConfigError(f"{study.name}: {axis}={missing[0]}: a label axis value needs linked fields "
                                  f"at scale {scale!r} (linked={{{axis!r}: {{{str(missing[0])!r}: {{...}}}}}})")
    return merged


def _short(value: Any) -> str:
    """An axis value for a folder name: scalars as written; a list of named items (rewards) as their names."""
    if isinstance(value, list) and all(isinstance(item, dict) and "name" in item for item in value):
        return "+".join(str(item["name"]) for item in value)
    return str(value)


def _trial_id(point: dict[str, Any], seed: int, spec: TrialSpec) -> str:
    """Readable and stable: the axis values, the seed, then the hash of the fully resolved spec."""
    parts = [f"{axis_short_name(field)}={_short(value)}" for field, value in point.items()]
    slug = re.sub(r"[^A-Za-z0-9._=+-]", "_", "-".join(parts))[:60]
    return f"{slug}-s{seed}-{spec.trial_hash()}" if slug else f"s{seed}-{spec.trial_hash()}"


def load_study(path: str | Path) -> Study:
    """Import a study file and return its ``study``; every failure is a ConfigError with one line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such study file")
    if path.suffix != ".py":
        raise ConfigError(f"{path}: a study file is a Python file whose name ends in .py, got {path.name!r}")
    module_name = f"tina_sweep_study_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SystemExit as error:  # exit(), sys.exit() or raise SystemExit in the file: never a silent exit
        raise ConfigError(f"{path}: exits while being loaded (SystemExit({error.code!r})): a study file must only "
                          "define `study = Study(...)`") from None
    except SyntaxError as error:
        raise ConfigError(f"{path}:{error.lineno}: syntax error: {error.msg}") from None
    except ValidationError as error:
        raise ConfigError(f"{path}: {first_error_line(error, 'Study.')}") from None
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    except Exception as error:
        raise ConfigError(f"{path}: {type(error).__name__}: {error}") from None
    finally:
        sys.modules.pop(module_name, None)
    study = getattr(module, "study", None)
    if not isinstance(study, Study):
        raise ConfigError(f"{path}: defines no `study = Study(...)`")
    return study
