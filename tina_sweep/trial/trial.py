"""``Trial``: one job of a study -- a trained trial (its full spec) or the base model's evaluation -- from study
expansion through the ledger and the worker to the report, with one JSON form (``to_json`` / ``from_json``): the
entries of ``study.json``, each trial folder's ``spec.json`` and the ledger's attempt attributes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tina_sweep.trial.spec import BaselineSpec, TrialSpec

Kind = Literal["trial", "baseline"]

# How an axis reads in trial ids and arm names: rank=4, lr=5e-05, algorithm=grpo
SHORT_NAMES = {"training.learning_rate": "lr", "algorithm.name": "algorithm", "dataset.name": "dataset",
               "model.name": "model", "lora.rank": "rank", "lora.alpha": "alpha"}


def axis_short_name(field: str) -> str:
    """A dotted spec field's short name: ``SHORT_NAMES``, else its last part (the section for a ``.name``)."""
    if field in SHORT_NAMES:
        return SHORT_NAMES[field]
    *sections, leaf = field.split(".")
    return sections[-1] if leaf == "name" and sections else leaf


@dataclass(frozen=True)
class Trial:
    """A trial of a study: ``trial_id`` names it (readable axis values, seed, spec hash), ``axes`` holds the axis
    values that label it in tables, ``spec`` everything it runs; ``kind`` "baseline" evaluates the base model."""

    trial_id: str
    kind: Kind
    spec: TrialSpec | BaselineSpec
    axes: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        """The trial's seed (the base model's evaluation uses 0)."""
        return self.spec.seed if isinstance(self.spec, TrialSpec) else 0

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``{"trial_id", "kind", "axes", "spec"}``."""
        return {"trial_id": self.trial_id, "kind": self.kind, "axes": self.axes,
                "spec": self.spec.model_dump(mode="json")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trial:
        """A trial from its JSON form (extra keys, such as the ledger's ``attempt``, are ignored)."""
        model = BaselineSpec if data["kind"] == "baseline" else TrialSpec
        return cls(data["trial_id"], data["kind"], model.model_validate(data["spec"]), data.get("axes", {}))
