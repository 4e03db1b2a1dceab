"""The ``tina-sweep`` command line."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Ablation sweeps of LoRA + RL (GRPO / Dr.GRPO) fine-tuning on small reasoning models, "
                       "as in the Tina paper.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
console = Console()
errors = Console(stderr=True)


class Scale(str, Enum):
    smoke = "smoke"
    cpu = "cpu"
    paper = "paper"


class WandbMode(str, Enum):
    online = "online"
    offline = "offline"
    off = "off"


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, non-zero exit."""
    errors.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _choose_scale(scale: Optional[Scale]) -> str:
    import torch

    has_gpu = torch.cuda.is_available()
    if scale is None:
        if has_gpu:
            return "paper"
        console.print("No CUDA GPU here: running at [bold]--scale cpu[/] (embedded SmolLM2-135M-Instruct, "
                      "arithmetic task; pass --scale paper on a GPU machine for the Tina recipe).")
        return "cpu"
    if scale is Scale.paper and not has_gpu:
        fail("--scale paper needs a CUDA GPU (the Tina recipe trains DeepSeek-R1-Distill-Qwen-1.5B with vLLM "
             "rollouts) and this machine has none; use --scale cpu")
    return scale.value


def _load(study_file: Path, scale: str):
    from tina_sweep.config import ConfigError
    from tina_sweep.study import load_study, resolve

    try:
        study = load_study(study_file)
        return study, resolve(study, scale)
    except ConfigError as error:
        fail(str(error))


@app.command()
def run(
    study_file: Path = typer.Argument(..., help="a study file, e.g. studies/lora_rank.py"),
    scale: Optional[Scale] = typer.Option(None, help="run size: smoke (tiny model, seconds), cpu (default "
                                          "without a GPU), paper (the Tina recipe, needs GPUs)"),
    sweeps_dir: Path = typer.Option(Path("sweeps"), help="where sweeps/<study>/ is written"),
    storage: Optional[str] = typer.Option(None, help="ledger: an Optuna storage URL (postgresql://...) or a "
                                          ".journal path; default sweeps/<study>/ledger.journal"),
    workers: int = typer.Option(1, min=1, help="trials run in parallel, each in its own process"),
    threads_per_worker: Optional[int] = typer.Option(None, min=1, help="CPU threads per worker (default: "
                                                     "cores / workers)"),
    max_retries: int = typer.Option(2, min=0, help="times a failed trial is retried on later runs"),
    prices: Optional[Path] = typer.Option(None, help="JSON {device name: $ per device-hour} overriding the "
                                          "default price table"),
    eval_checkpoints: int = typer.Option(0, min=0, help="also evaluate every K-th saved checkpoint of each trial "
                                         "run now (eval/checkpoint-N/); 0 = only the final adapter"),
    wandb: Optional[WandbMode] = typer.Option(None, help="Weights & Biases logging (default: online with an API "
                                              "key, offline without one, off without wandb installed)"),
    wandb_project: Optional[str] = typer.Option(None, help="W&B project (default: the study's wandb_project, "
                                                "else its name)"),
) -> None:
    """Run every unfinished trial of a study (train + evaluate), then print and save the results table."""
    from tina_sweep.cost import load_prices
    from tina_sweep.results import print_results, results_frame, write_results
    from tina_sweep.runner import RunOptions, run_study

    chosen = _choose_scale(scale)
    study, trials = _load(study_file, chosen)
    try:
        price_table = load_prices(prices)
    except (OSError, ValueError) as error:
        fail(f"--prices {prices}: {error}")
    from tina_sweep.tracking import Tracking, choose_mode

    try:
        wandb_mode = choose_mode(wandb.value if wandb else None)
    except ValueError as error:
        fail(f"--wandb {wandb.value}: {error}")
    tracking = None if wandb_mode == "off" else Tracking(
        wandb_mode, wandb_project or study.wandb_project or study.name, study.name,
        str(sweeps_dir / study.name), chosen)
    options = RunOptions(chosen, sweeps_dir, storage, workers, threads_per_worker, max_retries, price_table,
                         tracking, eval_checkpoints)
    try:
        results = run_study(study, trials, options)
    except KeyboardInterrupt:
        fail("interrupted; finished trials are recorded, run the same command again to continue", 130)
    except Exception as error:  # storage unreachable and the like: one line, not a traceback
        from tina_sweep.secrets import mask_url

        fail(mask_url(f"{type(error).__name__}: {error}".splitlines()[0]))
    if not results:
        fail("no trial finished", 1)
    axis_names = list({**study.axes, **study.scales.get(chosen, _empty()).axes})
    frame = results_frame(results, axis_names)
    parquet, markdown = write_results(frame, sweeps_dir / study.name)
    print_results(frame, axis_names, console)
    if tracking is not None:
        from tina_sweep.tracking import report_study

        report_study(tracking, frame, {"study": study.model_dump(mode="json"), "scale": chosen})
    console.print(f"Results: {markdown} and {parquet}; trial folders under {sweeps_dir / study.name / 'trials'}")
    _report_after_run(sweeps_dir / study.name)
    failed = [job for job in [j.trial_id for j in trials] if job not in {r["trial_id"] for r in results}]
    if failed:
        fail(f"{len(failed)} trial(s) did not finish (see `tina-sweep status`): {', '.join(failed[:3])}", 1)


def _empty():
    from tina_sweep.study import ScaleOverride

    return ScaleOverride()


@app.command()
def plan(
    study_file: Path = typer.Argument(..., help="a study file"),
    scale: Scale = typer.Option(Scale.cpu, help="which scale to resolve the trials at"),
) -> None:
    """List the trials a study resolves to (ids, axis values), without running anything."""
    study, trials = _load(study_file, scale.value)
    table = Table(title=f"{study.name} at scale {scale.value}: {len(trials)} trials + base model")
    table.add_column("trial id")
    table.add_column("axes")
    table.add_column("lora r/alpha")
    table.add_column("lr")
    table.add_column("algorithm")
    table.add_column("dataset")
    for trial in trials:
        spec = trial.spec
        table.add_row(trial.trial_id, ", ".join(f"{k}={v}" for k, v in trial.axes.items()),
                      f"{spec.lora.rank}/{spec.lora.resolved_alpha}", f"{spec.training.learning_rate:g}",
                      spec.algorithm.name, spec.dataset.name)
    console.print(table)


@app.command()
def status(
    study_name: str = typer.Argument(..., help="the study's name (its folder under sweeps/)"),
    sweeps_dir: Path = typer.Option(Path("sweeps"), help="where sweeps/<study>/ lives"),
    storage: Optional[str] = typer.Option(None, help="the ledger's storage URL, if not the default journal"),
) -> None:
    """Show each trial of a study by state: waiting, running (worker, age), finished, failed (reason)."""
    import datetime

    from tina_sweep.ledger import Ledger
    from tina_sweep.secrets import mask_url

    sweep_dir = sweeps_dir / study_name
    if storage is None and not (sweep_dir / "ledger.journal").exists():
        fail(f"no ledger for study {study_name!r} under {sweeps_dir} (run it first, or pass --storage)")
    try:
        ledger = Ledger(study_name, storage, sweep_dir)
    except Exception as error:
        fail(mask_url(f"cannot open the ledger: {error}".splitlines()[0]))
    table = Table(title=f"{study_name}: {mask_url(storage) if storage else sweep_dir / 'ledger.journal'}")
    for column in ("trial id", "state", "attempts", "worker", "age / Pass@1", "error"):
        table.add_column(column)
    now = datetime.datetime.now()
    for job_id, attempts in sorted(ledger.by_job().items()):
        last = attempts[-1]
        detail = ""
        if last.state.name == "COMPLETE":
            detail = f"{last.value:.3f}"
        elif last.state.name == "RUNNING" and last.datetime_start:
            detail = str(now - last.datetime_start).split(".")[0]
        table.add_row(job_id, last.state.name.lower(), str(len(attempts)), last.user_attrs.get("worker", ""),
                      detail, (last.user_attrs.get("error") or "").splitlines()[-1][:80] if last.state.name == "FAIL" else "")
    console.print(table)


@app.command()
def models() -> None:
    """List the model catalog."""
    from tina_sweep.models import MODELS

    table = Table(title="Models (any local directory or hub id works too)")
    table.add_column("name")
    table.add_column("source")
    table.add_column("description")
    for entry in MODELS.values():
        table.add_row(entry.name, entry.source, entry.description)
    console.print(table)


@app.command()
def data() -> None:
    """List the benchmarks and training sets (bundled, generated, or hub only)."""
    from tina_sweep.data import BENCHMARKS, TRAINING_SETS

    for title, catalog in (("Benchmarks", BENCHMARKS), ("Training sets", TRAINING_SETS)):
        table = Table(title=title)
        for column in ("name", "kind", "location", "description"):
            table.add_column(column)
        for source in catalog.values():
            table.add_row(source.name, source.kind, source.location, source.description)
        console.print(table)


class Checkpoint(str, Enum):
    final = "final"
    best = "best"


def _report_after_run(sweep_dir: Path) -> None:
    """The report of a finished run; a failure here is a one-line warning, never a failed run."""
    try:
        from tina_sweep.report import build_report

        console.print(f"Report: {build_report(sweep_dir)}")
    except Exception as error:
        from rich.markup import escape

        reason = str(error).splitlines()[0] if str(error) else ""
        console.print(f"[yellow]warning:[/] report not written: {escape(f'{type(error).__name__}: {reason}')}",
                      highlight=False, soft_wrap=True)


@app.command()
def report(
    sweep_dir: Path = typer.Argument(..., help="a sweep folder, e.g. sweeps/lora_rank"),
    which: Checkpoint = typer.Option(Checkpoint.final, help="report each trial at its final checkpoint, or at "
                                     "its best evaluated one (run --eval-checkpoints K; chosen on the same "
                                     "benchmarks, so optimistic)"),
) -> None:
    """Write the tables (LaTeX, Markdown, CSV), figures and page of a sweep into SWEEP_DIR/report/."""
    from tina_sweep.report import ReportError, build_report

    if not sweep_dir.is_dir():
        fail(f"{sweep_dir}: no such folder")
    try:
        out_dir = build_report(sweep_dir, which=which.value)
    except ReportError as error:
        fail(str(error), 1)
    console.print(f"Report: {out_dir}")


def main() -> None:  # pragma: no cover - console-script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
