"""A sweep folder -> tidy polars frames: one row per trial x benchmark, and per-problem outcomes.

Reads ``study.json`` (the study, its scale and its jobs) and every ``trials/<id>/result.json`` that exists, so
it works while a study is still running. Only the jobs of the current ``study.json`` count: trial folders left
by an earlier version of the study are ignored. Trials that differ only in their seed form one *arm*.

``which`` picks the checkpoint a trial is reported at: ``final`` (the trained adapter) or ``best``: with a dev
split, the checkpoint its dev score chose (``chosen_by: "dev"``, evaluated on the test benchmarks by the trial
itself); without one, of the evaluated checkpoints in ``result.json["checkpoints"]`` and the final adapter, the one
with the highest average Pass@1 (ties go to the final adapter, then to the earlier step: chosen on the test
benchmarks themselves, so optimistic). Costs are always what the trial spent.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import ValidationError

from tina_sweep.trial.result import BenchmarkSummary, TrialResult
from tina_sweep.study.scales import SCALES
from tina_sweep.study.study import Study, StudyAtScale, at_scale
from tina_sweep.trial.spec import first_error_line
from tina_sweep.trial.trial import axis_short_name

Which = Literal["final", "best"]
BASE_ARM = "base"
BASE_LABEL = "base model"


class ReportError(ValueError):
    """The sweep folder cannot be reported on; the message says why in one line."""


class ReportWarning(UserWarning):
    """Something the report skipped (a torn last line of a training log); the message says what, in one line."""


def read_json(path: Path) -> Any:
    """A JSON file of the sweep folder; a truncated or unreadable one is a ReportError naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: not valid JSON (line {error.lineno} column {error.colno}: {error.msg}; "
                          "a truncated file?)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot be read ({type(error).__name__}: {error})") from None


def read_jsonl(path: Path, torn_tail: bool = False) -> list[Any]:
    """The records of a JSON-lines file (lines end at "\n" only: a record may hold U+2028 and the like). A line
    that is not valid JSON is a ReportError naming the file and the line; with ``torn_tail`` an invalid last
    line (what a killed writer leaves) is skipped with a ReportWarning instead."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot be read ({type(error).__name__}: {error})") from None
    numbered = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    records = []
    for number, line in numbered:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            if torn_tail and number == numbered[-1][0]:
                warnings.warn(ReportWarning(f"{path}: line {number}, the last, is torn (a killed run?): skipped"),
                              stacklevel=2)
                break
            raise ReportError(f"{path}: line {number} is not valid JSON ({error.msg})") from None
    return records


@dataclass(frozen=True)
class StudyInfo:
    """What ``study.json`` says: the study's name, scale, design, axes (at that scale) and jobs in order."""

    name: str
    scale: str | None
    design: str
    axes: dict[str, list[Any]]
    base: dict[str, Any]
    seeds: list[int]
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # trial id -> {"kind", "axes", "spec"}


def load_study_info(sweep_dir: Path) -> StudyInfo:
    """The study of a sweep folder; without ``study.json`` the axes are gathered from the results."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ReportError(f"{sweep_dir}: no such folder")
    path = sweep_dir / "study.json"
    if not path.is_file():
        axes: dict[str, list[Any]] = {}
        for result in _read_results(sweep_dir, None):
            for name, value in result.axes.items():
                if name != "seed" and value not in axes.setdefault(name, []):
                    axes[name].append(value)
        return StudyInfo(sweep_dir.name, None, "grid", axes, {}, [])
    payload = read_json(path)
    if not isinstance(payload, dict) or not isinstance(payload.get("study"), dict):
        raise ReportError(f"{path}: not a study record (no 'study' object)")
    study, scale = payload["study"], payload.get("scale")
    plan = definition_at_scale(study, scale, path)
    return StudyInfo(name=study["name"], scale=scale, design=study.get("design", "grid"), axes=plan.axes,
                     base=plan.base, seeds=plan.seeds, jobs={job["trial_id"]: job for job in payload.get("jobs", [])})


def definition_at_scale(study: dict[str, Any], scale: str | None, where: Path | str = "study.json") -> StudyAtScale:
    """A recorded study definition as it ran at ``scale`` (the study's own ``at_scale``); without a scale, as
    defined. Raises ReportError (one line) when the record is not a study definition."""
    try:
        definition = Study.model_validate(study)
    except ValidationError as error:
        raise ReportError(f"{where}: not a study definition: {first_error_line(error)}") from None
    if scale is None or scale not in SCALES:
        return StudyAtScale(scale or "", definition.recipe or "", definition.base, definition.axes, definition.seeds)
    return at_scale(definition, scale)


def _read_results(sweep_dir: Path, job_ids: list[str] | None) -> list[TrialResult]:
    trials = sweep_dir / "trials"
    if job_ids is None:
        job_ids = sorted(p.name for p in trials.iterdir()) if trials.is_dir() else []
    results = []
    for job_id in job_ids:
        path = trials / job_id / "result.json"
        if path.is_file():
            try:
                results.append(TrialResult.parse(read_json(path), str(path)))
            except ValueError as error:
                raise ReportError(str(error)) from None
    return results


def arm_of(axes: dict[str, Any], kind: str) -> str:
    """The arm a trial belongs to: its axis values without the seed (``rank=4``), ``base`` for the baseline."""
    if kind == "baseline":
        return BASE_ARM
    parts = [f"{axis_short_name(name)}={_text(value)}" for name, value in axes.items() if name != "seed"]
    return "-".join(p.replace("/", "_").replace(" ", "") for p in parts) or "default"


def label_of(axes: dict[str, Any], kind: str) -> str:
    """A readable arm name: ``lora.rank=4`` (axes joined by ', '), ``base model`` for the baseline."""
    if kind == "baseline":
        return BASE_LABEL
    return ", ".join(f"{name}={_text(value)}" for name, value in axes.items() if name != "seed") or "default"


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


@dataclass(frozen=True)
class Checkpoint:
    """The evaluation a trial is reported at."""

    name: str  # "final" or "checkpoint-N"
    step: int
    pass_at_1: dict[str, float]
    eval_dir: str  # relative to the trial folder


def choose_checkpoint(result: TrialResult, which: Which) -> Checkpoint:
    """The final evaluation, or with ``best`` the evaluated checkpoint with the highest average Pass@1."""
    final = Checkpoint("final", result.train_steps, result.pass_at_1, "eval")
    if which == "final" or not result.checkpoints:
        return final
    if which != "best":
        raise ReportError(f"which must be 'final' or 'best', got {which!r}")
    on_dev = [(name, entry) for name, entry in result.checkpoints.items() if entry.chosen_by == "dev"]
    if on_dev:
        name, entry = on_dev[0]
        if entry.step == result.train_steps:
            return final
        return Checkpoint(name, entry.step, entry.pass_at_1, entry.eval_dir or f"eval/{name}")
    best, best_average = final, _average(final.pass_at_1)
    for name, entry in sorted(result.checkpoints.items(), key=lambda item: item[1].step):
        if entry.mean > best_average:
            best = Checkpoint(name, entry.step, entry.pass_at_1, entry.eval_dir or f"eval/{name}")
            best_average = entry.mean
    return best


def _average(pass_at_1: dict[str, float]) -> float:
    return sum(pass_at_1.values()) / len(pass_at_1) if pass_at_1 else float("-inf")


@lru_cache(maxsize=64)
def _training_set_size(dataset_json: str, seed: int) -> int | None:
    from tina_sweep.trial.spec import DataSpec
    from tina_sweep.trial.datasets import TRAINING_SETS, load_dataspec

    try:
        return len(load_dataspec(DataSpec.model_validate(json.loads(dataset_json)), TRAINING_SETS, seed=seed))
    except Exception:  # a hub-only set without access, a moved file: the share of an epoch stays unknown
        return None


def training_set_size(dataset: dict[str, Any], seed: int = 0) -> int | None:
    """Problems in a spec's training set (``dataset.limit`` honoured), or None when it cannot be loaded here."""
    return _training_set_size(json.dumps(dataset, sort_keys=True), seed)


def global_batch(result: TrialResult | None, spec: dict[str, Any]) -> tuple[int | None, int | None]:
    """Prompts and completions per optimizer step of a trial: as result.json recorded them, else from its spec
    (prompts_per_step x gradient_accumulation_steps x global_batch_processes, x num_generations)."""
    recorded = (result.global_batch if result is not None else None) or {}
    if recorded.get("prompts_per_step"):
        return recorded["prompts_per_step"], recorded.get("completions_per_step")
    training = spec.get("training")
    if not training or "prompts_per_step" not in training:
        return None, None
    prompts = (training["prompts_per_step"] * training.get("gradient_accumulation_steps", 1)
               * training.get("global_batch_processes", 1))
    generations = spec.get("algorithm", {}).get("num_generations")
    return prompts, prompts * generations if generations else None


def steps_pct_epoch(spec: dict[str, Any], steps: int, prompts_per_step: int | None = None) -> float | None:
    """Training steps as a share of one epoch, in percent: steps x prompts per optimizer step (the global batch;
    from the spec when not given) / set size."""
    if "training" not in spec or "dataset" not in spec:
        return None
    size = training_set_size(spec["dataset"], spec.get("seed", 0))
    if not size:
        return None
    if prompts_per_step is None:
        prompts_per_step = global_batch(None, spec)[0]
    return None if prompts_per_step is None else 100.0 * steps * prompts_per_step / size


def _trial_spec(result: TrialResult, info: StudyInfo, trial_dir: Path) -> dict[str, Any]:
    if result.spec is not None:
        return result.spec
    if result.trial_id in info.jobs:
        return info.jobs[result.trial_id]["spec"]
    spec_file = trial_dir / "spec.json"
    record = read_json(spec_file) if spec_file.is_file() else {}
    return record.get("spec", {}) if isinstance(record, dict) else {}


def _axis_series(name: str, values: list[Any]) -> pl.Series:
    """An axis column with one dtype: numbers stay numbers (for sorting), anything mixed becomes text."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return pl.Series(name, values, dtype=pl.Boolean)
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pl.Series(name, values, dtype=pl.Int64)
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pl.Series(name, [None if v is None else float(v) for v in values], dtype=pl.Float64)
    return pl.Series(name, [None if v is None else _text(v) for v in values], dtype=pl.String)


FRAME_COLUMNS = ["study", "trial_id", "kind", "arm", "label"]  # then the axes, then FRAME_TAIL
FRAME_TAIL = ["seed", "benchmark", "pass_at_1", "problems", "samples_per_problem", "train_steps", "steps_pct_epoch",
              "train_seconds", "eval_seconds", "device", "device_count", "device_hours", "train_usd", "eval_usd",
              "total_usd", "checkpoint", "prompts_per_step", "completions_per_step", "grader", "stop_reason",
              "stopped_at", "horizon", "dev_best_step", "dev_best"]


def grader_of(detail: BenchmarkSummary, spec: dict[str, Any]) -> str:
    """What graded a benchmark's number: as result.json records it; for results written before it did, the
    lighteval backend's own metrics or else the strict grader (the only one there was)."""
    if detail.grader:
        return detail.grader
    return "lighteval" if spec.get("eval", {}).get("backend") == "lighteval" else "strict"


def load_frame(sweep_dir: Path, which: Which = "final") -> pl.DataFrame:
    """One row per finished trial x benchmark (columns: FRAME_COLUMNS, one per study axis, FRAME_TAIL)."""
    sweep_dir = Path(sweep_dir)
    info = load_study_info(sweep_dir)
    results = _read_results(sweep_dir, list(info.jobs) or None)
    if not results:
        raise ReportError(f"{sweep_dir}: no finished trial yet (no trials/*/result.json)")
    rows: list[dict[str, Any]] = []
    for result in results:
        trial_dir = sweep_dir / "trials" / result.trial_id
        spec = _trial_spec(result, info, trial_dir)
        checkpoint = choose_checkpoint(result, which)
        kind, axes, cost = result.kind, result.axes, result.cost
        seed = spec.get("seed", axes.get("seed")) if kind == "trial" else None
        steps = checkpoint.step if kind == "trial" else 0
        prompts, completions = global_batch(result, spec) if kind == "trial" else (None, None)
        pct = steps_pct_epoch(spec, steps, prompts) if kind == "trial" else None
        stopped, dev = result.stopped, result.dev
        best_step = dev.best_step if dev is not None else None
        for benchmark, value in checkpoint.pass_at_1.items():
            detail = result.benchmarks.get(benchmark, BenchmarkSummary())
            rows.append({
                "study": info.name, "trial_id": result.trial_id, "kind": kind, "arm": arm_of(axes, kind),
                "label": label_of(axes, kind), **{f"axis:{a}": axes.get(a) for a in info.axes},
                "seed": seed, "benchmark": benchmark, "pass_at_1": float(value),
                "problems": detail.problems, "samples_per_problem": detail.samples_per_problem,
                "train_steps": steps, "steps_pct_epoch": pct,
                "train_seconds": cost.train_seconds, "eval_seconds": cost.eval_seconds,
                "device": cost.device, "device_count": cost.device_count,
                "device_hours": cost.device_hours, "train_usd": cost.train_usd,
                "eval_usd": cost.eval_usd, "total_usd": cost.total_usd, "checkpoint": checkpoint.name,
                "prompts_per_step": prompts, "completions_per_step": completions,
                "grader": grader_of(detail, spec),
                "stop_reason": stopped.reason if stopped else None, "stopped_at": stopped.step if stopped else None,
                "horizon": stopped.horizon if stopped else None, "dev_best_step": best_step,
                "dev_best": dev.curve.get(best_step) if best_step is not None else None,
            })
    columns: list[pl.Series] = []
    for name in FRAME_COLUMNS:
        columns.append(pl.Series(name, [r[name] for r in rows], dtype=pl.String))
    for axis in info.axes:
        columns.append(_axis_series(axis, [r[f"axis:{axis}"] for r in rows]))
    schema = {"seed": pl.Int64, "benchmark": pl.String, "pass_at_1": pl.Float64, "problems": pl.Int64,
              "samples_per_problem": pl.Int64, "train_steps": pl.Int64, "steps_pct_epoch": pl.Float64,
              "train_seconds": pl.Float64, "eval_seconds": pl.Float64, "device": pl.String,
              "device_count": pl.Int64, "device_hours": pl.Float64, "train_usd": pl.Float64,
              "eval_usd": pl.Float64, "total_usd": pl.Float64, "checkpoint": pl.String,
              "prompts_per_step": pl.Int64, "completions_per_step": pl.Int64, "grader": pl.String,
              "stop_reason": pl.String, "stopped_at": pl.Int64, "horizon": pl.Int64, "dev_best_step": pl.Int64,
              "dev_best": pl.Float64}
    for name in FRAME_TAIL:
        columns.append(pl.Series(name, [r[name] for r in rows], dtype=schema[name]))
    return pl.DataFrame(columns)


def axis_columns(frame: pl.DataFrame) -> list[str]:
    """The study-axis columns of a frame or summary: the dotted spec fields (``lora.rank``)."""
    return [c for c in frame.columns if "." in c]


OUTCOME_SCHEMA = {"trial_id": pl.String, "arm": pl.String, "seed": pl.Int64, "benchmark": pl.String,
                  "problem_id": pl.String, "success_rate": pl.Float64, "samples": pl.Int64,
                  "format_failures": pl.Int64, "wrong_answers": pl.Int64, "truncated": pl.Int64}


def _reason_counts(row: dict[str, Any]) -> tuple[int | None, int | None, int | None]:
    """A strict outcome row's wrong samples split into format failures and wrong answers, and how many of the
    format failures stopped at max_new_tokens; all None for a row without reasons (another grader)."""
    from tina_sweep.trial.grading import FORMAT_FAILURES, WRONG_ANSWERS

    reasons = row.get("reasons")
    if not isinstance(reasons, list):
        return None, None, None
    return (sum(r in FORMAT_FAILURES for r in reasons), sum(r in WRONG_ANSWERS for r in reasons),
            sum(r == "truncated" for r in reasons))


def load_outcomes(sweep_dir: Path, which: Which = "final") -> pl.DataFrame:
    """Per-problem success rates of every finished trial at the chosen checkpoint: trial_id, arm, seed,
    benchmark, problem_id, success_rate, samples, and (strict grading; else null) how many samples were format
    failures, wrong answers, and truncated (``OUTCOME_SCHEMA``). A problem id seen twice in one file gets ``#2``,
    ``#3``... appended."""
    sweep_dir = Path(sweep_dir)
    info = load_study_info(sweep_dir)
    columns: dict[str, list[Any]] = {k: [] for k in OUTCOME_SCHEMA}
    for result in _read_results(sweep_dir, list(info.jobs) or None):
        trial_dir = sweep_dir / "trials" / result.trial_id
        spec = _trial_spec(result, info, trial_dir)
        checkpoint = choose_checkpoint(result, which)
        kind, axes = result.kind, result.axes
        seed = spec.get("seed", axes.get("seed")) if kind == "trial" else None
        for benchmark in checkpoint.pass_at_1:
            path = trial_dir / checkpoint.eval_dir / f"{benchmark}.jsonl"
            if not path.is_file():
                continue
            seen: dict[str, int] = {}
            for row in read_jsonl(path):
                if not isinstance(row, dict) or "id" not in row or "success_rate" not in row:
                    raise ReportError(f"{path}: a line is not a problem outcome (no 'id' or 'success_rate')")
                problem = str(row["id"])
                seen[problem] = seen.get(problem, 0) + 1
                columns["trial_id"].append(result.trial_id)
                columns["arm"].append(arm_of(axes, kind))
                columns["seed"].append(seed)
                columns["benchmark"].append(benchmark)
                columns["problem_id"].append(problem if seen[problem] == 1 else f"{problem}#{seen[problem]}")
                columns["success_rate"].append(float(row["success_rate"]))
                samples = row.get("correct")
                columns["samples"].append(len(samples) if isinstance(samples, list) else None)
                for name, count in zip(("format_failures", "wrong_answers", "truncated"), _reason_counts(row)):
                    columns[name].append(count)
    return pl.DataFrame(columns, schema=OUTCOME_SCHEMA)
