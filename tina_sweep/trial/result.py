"""``TrialResult``: the schema of a trial folder's ``result.json`` (and of the result the ledger records), read by
everything that reads results -- the worker, the runner's results table, W&B tracking and the report -- so a
schema change fails where a result is read, in one line, not as a KeyError three modules away.

Fields added over time have defaults (a result written by an earlier version still reads); unknown fields are
errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tina_sweep.trial.spec import first_error_line


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BenchmarkSummary(_Record):
    """One benchmark's numbers (without the per-problem outcomes, which live in ``eval/<benchmark>.jsonl``)."""

    benchmark: str | None = None
    pass_at_1: float | None = None
    problems: int | None = None
    samples_per_problem: int | None = None
    generated_tokens: int | None = None
    wall_seconds: float | None = None
    device: str = ""
    grader: str | None = Field(None, description="strict, math_verify or lighteval; None: written before graders "
                                                 "were recorded (strict, or LightEval's with the lighteval backend)")


class CostRecord(_Record):
    """What the trial cost (``trial.cost.Cost``): wall time, device hours, dollars, tokens, peak memory."""

    train_seconds: float | None = None
    eval_seconds: float | None = None
    device: str | None = None
    device_count: int | None = None
    device_hours: float | None = None
    price_per_device_hour: float | None = None
    train_usd: float | None = None
    eval_usd: float | None = None
    total_usd: float | None = None
    train_tokens: int | None = None
    eval_tokens: int | None = None
    peak_memory_gb: float | None = None


class CheckpointResult(_Record):
    """An evaluated checkpoint: its step, Pass@1 per benchmark and where its outcome rows are."""

    step: int
    pass_at_1: dict[str, float]
    average: float | None = None
    eval_dir: str | None = None  # relative to the trial folder; None: eval/<name>
    eval_seconds: float | None = None
    chosen_by: Literal["dev"] | None = None  # "dev": the trial's best checkpoint by its dev score

    @property
    def mean(self) -> float:
        """The average Pass@1 over benchmarks (as recorded, else computed)."""
        if self.average is not None:
            return self.average
        return sum(self.pass_at_1.values()) / len(self.pass_at_1) if self.pass_at_1 else float("-inf")


class DevRecord(_Record):
    """The dev split's scores: Pass@1 at each saved checkpoint (by step), the best step, what scoring cost."""

    problems: int
    curve: dict[int, float]
    best_step: int | None = None
    seconds: float = 0.0  # scoring time of every attempt (inside the training time)


class StopRecord(_Record):
    """Why and where a trial ended: finished (its horizon), pruned (the worker's pruner), early_stopped
    (patience on the dev score)."""

    reason: Literal["finished", "pruned", "early_stopped"]
    step: int
    horizon: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class TrialResult(_Record):
    """A finished trial (or the base model's evaluation): Pass@1 per benchmark at the final adapter, and what it
    took."""

    trial_id: str
    kind: Literal["trial", "baseline"]
    axes: dict[str, Any] = Field(default_factory=dict)
    pass_at_1: dict[str, float]
    average: float
    benchmarks: dict[str, BenchmarkSummary] = Field(default_factory=dict)
    train_steps: int = 0
    global_batch: dict[str, Any] | None = None  # prompts and completions per optimizer step
    resumed_from_checkpoint: str | None = None
    train_attempts: list[dict[str, Any]] = Field(default_factory=list)
    final_train_reward: float | None = None
    cost: CostRecord = Field(default_factory=CostRecord)
    eval_problems_per_second: float | None = None
    finished_at: str | None = None
    checkpoints: dict[str, CheckpointResult] = Field(default_factory=dict)
    eval_engine: dict[str, Any] | None = None  # vLLM: the shared engine that evaluated this trial
    spec: dict[str, Any] | None = None  # the trial's spec, when a result carries it (older sweeps)
    dev: DevRecord | None = None  # the dev split's scores, when the trial has one
    stopped: StopRecord | None = None  # where training ended and why (trials with a dev split)

    @property
    def pruned(self) -> bool:
        return self.stopped is not None and self.stopped.reason == "pruned"

    def to_json(self) -> dict[str, Any]:
        """The JSON form written to ``result.json`` and recorded in the ledger (the optional blocks only when
        present: ``checkpoints``, ``eval_engine``, ``spec``, ``dev``, ``stopped``)."""
        data = self.model_dump(mode="json")
        for name in ("checkpoints", "eval_engine", "spec", "dev", "stopped"):
            if not data[name]:
                del data[name]
        for entry in data.get("checkpoints", {}).values():
            if entry.get("chosen_by") is None:
                entry.pop("chosen_by", None)
        return data

    @classmethod
    def parse(cls, data: Any, where: str = "result") -> TrialResult:
        """Validate a result's JSON form; raises ValueError in one line naming ``where`` and the field."""
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise ValueError(f"{where}: not a trial result: {first_error_line(error)}") from None

    @classmethod
    def read(cls, path: Path) -> TrialResult:
        """A ``result.json``; raises ValueError in one line when it is not valid JSON or not a trial result."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error.msg})") from None
        return cls.parse(data, str(path))
