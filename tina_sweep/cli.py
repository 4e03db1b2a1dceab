"""The ``tina-sweep`` command line."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup


class _OneLineErrors(TyperGroup):
    """Usage errors (a bad option value, a missing argument) as one line on stderr, like every other error."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            errors.print("[red]error:[/] aborted", highlight=False, soft_wrap=True)
            sys.exit(1)
        except typer.TyperException as error:
            if not hasattr(error, "format_message"):
                raise
            ctx = getattr(error, "ctx", None)
            if type(error).__name__ == "NoArgsIsHelpError":  # a bare command: its help, as usual
                console.print(ctx.get_help() if ctx else error.format_message(), highlight=False)
                sys.exit(error.exit_code)
            message = " ".join(error.format_message().replace("Value error, ", "").split())
            message = message.replace("Input should be", "must be")
            cause = error.__cause__
            if hasattr(cause, "errors") and "is not one of" not in message:  # typer's pydantic check: the value
                with contextlib.suppress(Exception):
                    message += f", got {cause.errors()[0]['input']}"
            where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            errors.print(f"[red]error:[/] {escape(message)}{where}", highlight=False, soft_wrap=True)
            sys.exit(getattr(error, "exit_code", 2))
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(help="Ablation sweeps of LoRA + RL (GRPO / Dr.GRPO) fine-tuning on small reasoning models, "
                       "as in the Tina paper.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False, cls=_OneLineErrors)
console = Console()
errors = Console(stderr=True)


class Scale(str, Enum):
    smoke = "smoke"
    cpu = "cpu"
    paper = "paper"


# Options several commands share (run, worker, status, report, launch slurm), defined once.
SweepsDir = Annotated[Path, typer.Option(help="where sweeps/<study>/ (trial folders) is written")]
Storage = Annotated[Optional[str], typer.Option(
    help="the ledger every worker shares: an Optuna storage URL (postgresql://user:password@host/db) or a .journal "
         "path (a journal works only on one machine or a shared filesystem with file locks); default "
         "sweeps/<study>/ledger.journal")]
MaxRetries = Annotated[int, typer.Option(min=0, help="times a failed trial is retried")]
Prices = Annotated[Optional[Path], typer.Option(help="JSON {device name: $ per device-hour} overriding the default "
                                                     "price table")]
Workers = Annotated[Optional[int], typer.Option(
    min=1, help="trials run at a time, each in its own process on its own GPU (or share of the CPU cores); default: "
                "one per GPU, else one single-threaded trial per CPU core, as many as the free memory holds")]
ThreadsPerWorker = Annotated[Optional[int], typer.Option(min=1, help="CPU threads per trial (default: cores / "
                                                                     "workers)")]
EvalCheckpoints = Annotated[int, typer.Option(min=0, help="also evaluate every K-th saved checkpoint of each trial "
                                                          "run now (eval/checkpoint-N/); 0 = only the final adapter")]
ShareEvalEngine = Annotated[bool, typer.Option(
    "--share-eval-engine/--engine-per-trial", help="eval.backend vllm: evaluate the base model and every adapter "
    "this worker trained through one engine once training is done (default), or one engine per trial as soon as it "
    "has trained")]
TrialTimeout = Annotated[Optional[float], typer.Option(
    min=1, help="seconds one attempt at a trial may run before it is killed as hung and retried (default per scale: "
                "smoke 30 min, cpu 4 h, paper 48 h)")]


class WandbMode(str, Enum):
    online = "online"
    offline = "offline"
    off = "off"


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, non-zero exit."""
    errors.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _start_trial_processes() -> None:
    from tina_sweep.run.worker import start_trial_processes

    start_trial_processes()


def _choose_scale(scale: Optional[Scale]) -> str:
    from tina_sweep.trial.gpus import cuda_available

    has_gpu = cuda_available()
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
    from tina_sweep.trial.spec import ConfigError
    from tina_sweep.study.study import load_study, resolve

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
    sweeps_dir: SweepsDir = Path("sweeps"),
    storage: Storage = None,
    workers: Workers = None,
    threads_per_worker: ThreadsPerWorker = None,
    max_retries: MaxRetries = 2,
    prices: Prices = None,
    eval_checkpoints: EvalCheckpoints = 0,
    wandb: Optional[WandbMode] = typer.Option(None, help="Weights & Biases logging (default: online with an API "
                                              "key, offline without one, off without wandb installed)"),
    wandb_project: Optional[str] = typer.Option(None, help="W&B project (default: the study's wandb_project, "
                                                "else its name)"),
    redefine: bool = typer.Option(False, help="accept a definition whose trials clash with the ones the ledger "
                                  "holds under this study's name (its finished trials stay in the ledger)"),
    share_eval_engine: ShareEvalEngine = True,
    trial_timeout: TrialTimeout = None,
) -> None:
    """Run every unfinished trial of a study (train + evaluate), then print and save the results table."""
    _start_trial_processes()
    from tina_sweep.report.results import print_results, results_frame, write_results
    from tina_sweep.run.runner import RunOptions, run_study

    chosen = _choose_scale(scale)
    study, trials = _load(study_file, chosen)
    price_table = _prices(prices)
    from tina_sweep.run.tracking import Tracking, choose_mode

    try:
        wandb_mode = choose_mode(wandb.value if wandb else None)
    except ValueError as error:
        fail(f"--wandb {wandb.value}: {error}")
    _preflight(study, trials, chosen, storage, sweeps_dir, redefine)
    tracking = None if wandb_mode == "off" else Tracking(
        wandb_mode, wandb_project or study.wandb_project or study.name, study.name,
        str(sweeps_dir / study.name), chosen)
    options = RunOptions(chosen, sweeps_dir, storage, workers, threads_per_worker, max_retries, price_table,
                         tracking, eval_checkpoints, share_eval_engine, trial_timeout)
    results = _one_line_failures(lambda: run_study(study, trials, options),
                                 "interrupted; finished trials are recorded, run the same command again to continue",
                                 storage)
    if not results:
        fail("no trial finished", 1)
    from tina_sweep.study.study import at_scale

    axis_names = list(at_scale(study, chosen).axes)
    frame = results_frame(results, axis_names)
    parquet, markdown = write_results(frame, sweeps_dir / study.name)
    print_results(frame, axis_names, console)
    if tracking is not None:
        from tina_sweep.run.tracking import report_study

        report_study(tracking, frame, {"study": study.model_dump(mode="json"), "scale": chosen})
    console.print(f"Results: {markdown} and {parquet}; trial folders under {sweeps_dir / study.name / 'trials'}")
    _report_after_run(sweeps_dir / study.name)
    failed = [job for job in [j.trial_id for j in trials] if job not in {r.trial_id for r in results}]
    if failed:
        fail(f"{len(failed)} trial(s) did not finish (see `tina-sweep status`): {', '.join(failed[:3])}", 1)


def _prices(prices: Optional[Path]) -> dict[str, float]:
    """The price table (defaults, overridden by ``--prices``); a bad file is one line."""
    from tina_sweep.trial.cost import load_prices

    try:
        return load_prices(prices)
    except (OSError, ValueError) as error:
        fail(f"--prices {prices}: {error}")


def _one_line_failures(work, interrupted: str, storage: Optional[str] = None):
    """Run the work; Ctrl-C exits 130 with ``interrupted``, any other failure (storage unreachable and the like)
    is one masked line instead of a traceback."""
    from tina_sweep.run.secrets import Secrets

    try:
        return work()
    except KeyboardInterrupt:
        fail(interrupted, 130)
    except Exception as error:
        fail(Secrets.from_url(storage).mask(f"{type(error).__name__}: {error}".splitlines()[0]))


def _preflight(study, trials, scale: str, storage: Optional[str], sweeps_dir: Path, redefine: bool = False) -> None:
    """Before anything is written: the models and data files the trials need, then the ledger (it must open,
    fast, and must not hold another study under this name); one line and a non-zero exit on any problem."""
    from tina_sweep.trial.spec import ConfigError
    from tina_sweep.run.preflight import check_storage_url, check_trials, guard_ledger
    from tina_sweep.run.runner import study_jobs

    from tina_sweep.ledger.store import check_environment

    try:
        check_environment()
    except ValueError as error:
        fail(str(error))
    try:
        if storage is not None:
            check_storage_url(storage)  # its shape first: the trials' checks read models and data
        check_trials(study.name, trials)
        guard_ledger(study, scale, [job.trial_id for job in study_jobs(study, trials)], storage,
                     sweeps_dir / study.name, redefine)
    except ConfigError as error:
        from tina_sweep.run.secrets import Secrets

        fail(Secrets.from_url(storage).mask(str(error)))


@app.command()
def worker(
    study_file: Path = typer.Argument(..., help="a study file, e.g. studies/lora_rank.py"),
    storage: Storage = None,
    scale: Optional[Scale] = typer.Option(None, help="run size (default: paper with a CUDA GPU, else cpu); every "
                                          "worker of a study must use the same"),
    sweeps_dir: SweepsDir = Path("sweeps"),
    workers: Workers = None,
    threads_per_worker: ThreadsPerWorker = None,
    max_retries: MaxRetries = 2,
    prices: Prices = None,
    eval_checkpoints: EvalCheckpoints = 0,
    share_eval_engine: ShareEvalEngine = True,
    trial_timeout: TrialTimeout = None,
) -> None:
    """Join a study from any machine: claim its trials from the ledger one by one and run them until none is
    waiting or running anywhere (start as many workers as you have devices; `tina-sweep status` shows them)."""
    _start_trial_processes()
    from tina_sweep.run.runner import RunOptions, run_worker

    chosen = _choose_scale(scale)
    study, trials = _load(study_file, chosen)
    price_table = _prices(prices)
    _preflight(study, trials, chosen, storage, sweeps_dir)
    options = RunOptions(chosen, sweeps_dir, storage, workers, threads_per_worker, max_retries, price_table,
                         None, eval_checkpoints, share_eval_engine, trial_timeout)
    summary = _one_line_failures(lambda: run_worker(study, trials, options),
                                 "interrupted; this worker's running trials were handed back to the ledger", storage)
    console.print(f"worker done: {summary.finished} trial(s) finished here, {summary.failed} failed; no trial of "
                  f"{study.name} is waiting or running", highlight=False)


@app.command()
def plan(
    study_file: Path = typer.Argument(..., help="a study file"),
    scale: Scale = typer.Option(Scale.cpu, help="which scale to resolve the trials at"),
) -> None:
    """List the trials a study resolves to (ids, axis values), without running anything."""
    from tina_sweep.study.study import at_scale

    study, trials = _load(study_file, scale.value)
    recipe = at_scale(study, scale.value).recipe
    base = " + base model" if study.evaluate_base_model else ""
    table = Table(title=f"{study.name} at scale {scale.value}, recipe {recipe}: {len(trials)} trials{base}")
    table.add_column("trial id")
    table.add_column("axes")
    table.add_column("lora r/alpha")
    table.add_column("lr")
    table.add_column("algorithm")
    table.add_column("dataset")
    table.add_column("steps (stop/horizon)")
    table.add_column("prompts/step")
    for trial in trials:
        spec = trial.spec
        training = spec.training
        horizon = str(training.max_steps) if training.max_steps is not None else "1 epoch"
        steps = f"{training.stop_at_step}/{horizon}" if training.stop_at_step is not None else horizon
        table.add_row(trial.trial_id, ", ".join(f"{k}={v}" for k, v in trial.axes.items()),
                      f"{spec.lora.rank}/{spec.lora.resolved_alpha}", f"{training.learning_rate:g}",
                      spec.algorithm.name, spec.dataset.name, steps, str(training.global_prompts_per_step))
    console.print(table)


@app.command()
def status(
    target: str = typer.Argument(..., metavar="STUDY", help="a study file, a sweep folder (sweeps/<study>), or a "
                                 "study's name under --sweeps-dir"),
    sweeps_dir: SweepsDir = Path("sweeps"),
    storage: Storage = None,
) -> None:
    """Show each trial of a study by state (waiting, running with worker and age, finished, failed with reason,
    retries) and what each running worker is doing (its trial's phase and step)."""
    from tina_sweep.trial.spec import ConfigError
    from tina_sweep.run.status import StatusError, locate, show_status

    try:
        name, sweep_dir = locate(target, sweeps_dir)
        show_status(name, sweep_dir, storage, console)
    except (ConfigError, StatusError) as error:
        from tina_sweep.run.secrets import Secrets

        fail(Secrets.from_url(storage).mask(str(error)))


@app.command()
def models() -> None:
    """List the model catalog."""
    from tina_sweep.trial.models import MODELS

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
    from tina_sweep.trial.datasets import BENCHMARKS, TRAINING_SETS

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


def _build_report(sweep_dir: Path, which: str = "final") -> Path:
    """``build_report``, each thing it skipped (a torn last line of a training log) shown as one warning line on
    stderr; other warnings go on as usual."""
    import warnings

    from tina_sweep.report import ReportWarning, build_report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ReportWarning)
        try:
            return build_report(sweep_dir, which=which)
        finally:
            for warning in caught:
                if issubclass(warning.category, ReportWarning):
                    errors.print(f"[yellow]warning:[/] {escape(str(warning.message))}", highlight=False,
                                 soft_wrap=True)
                else:
                    warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)


def _report_after_run(sweep_dir: Path) -> None:
    """The report of a finished run; a failure here is a one-line warning, never a failed run."""
    try:
        console.print(f"Report: {_build_report(sweep_dir)}")
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
    from tina_sweep.report import ReportError

    if not sweep_dir.is_dir():
        fail(f"{sweep_dir}: no such folder")
    try:
        out_dir = _build_report(sweep_dir, which.value)
    except ReportError as error:
        fail(str(error), 1)
    console.print(f"Report: {out_dir}")


launch_app = typer.Typer(help="Start a study's workers on a cluster.", no_args_is_help=True)
app.add_typer(launch_app, name="launch")


@launch_app.command("slurm")
def launch_slurm(
    study_file: Path = typer.Argument(..., help="a study file on a filesystem every node sees"),
    storage: Storage = None,
    workers: int = typer.Option(1, min=1, help="array tasks (workers), each claiming trials until none is left"),
    gpus_per_worker: int = typer.Option(1, min=0, help="GPUs per task (--gpus-per-node); one trial per GPU"),
    partition: Optional[str] = typer.Option(None, help="Slurm partition"),
    time: str = typer.Option("24:00:00", help="time limit per task (Slurm format: minutes, HH:MM:SS, "
                             "D-HH:MM:SS); at the limit a task hands its trials back and is requeued"),
    scale: Scale = typer.Option(Scale.paper, help="run size of every worker"),
    sweeps_dir: SweepsDir = Path("sweeps"),
    cpus_per_worker: int = typer.Option(8, min=1, help="CPU cores per task"),
    mem_gb: Optional[int] = typer.Option(None, min=1, help="memory per task in GB"),
    gres: Optional[str] = typer.Option(None, help="a --gres value (e.g. gpu:a100:2) instead of --gpus-per-node"),
    sbatch: list[str] = typer.Option([], help="more sbatch options as KEY=VALUE (account=..., qos=..., "
                                     "constraint=...); repeatable"),
    max_requeues: int = typer.Option(3, min=0, help="times a task is requeued after its time limit"),
    max_retries: MaxRetries = 2,
    prices: Prices = None,
    dry_run: bool = typer.Option(False, "--dry-run", help="print the sbatch script submitit would submit; submit "
                                 "nothing"),
    local: bool = typer.Option(False, "--local", help="run the same workers on this machine (submitit's "
                               "LocalExecutor) and wait for them"),
    redefine: bool = typer.Option(False, help="accept a definition whose trials clash with the ones the ledger "
                                  "holds under this study's name"),
) -> None:
    """Submit the workers of a study as a Slurm job array (through submitit); each task runs `tina-sweep worker`."""
    import os

    from tina_sweep.run import launch
    from tina_sweep.trial.spec import ConfigError
    from tina_sweep.run.preflight import check_storage_url, describe_storage

    if dry_run and local:
        fail("--dry-run and --local: choose one")
    if importlib.util.find_spec("submitit") is None:
        fail("launch needs submitit, which is not installed: pip install -e '.[slurm]'", 1)
    if not (dry_run or local) and not launch.sbatch_available():
        fail("Slurm's sbatch is not on PATH here: run this on a Slurm login node, or pass --local (the same "
             "workers on this machine) or --dry-run (print the job script)", 1)
    try:
        minutes = launch.parse_time(time)
        flags = launch.parse_sbatch_flags(sbatch)
        if storage is not None:
            check_storage_url(storage)
    except ConfigError as error:
        fail(str(error))
    study, trials = _load(study_file, scale.value)
    price_table = _prices(prices)
    sweeps = sweeps_dir.resolve()
    options = launch.SlurmOptions(workers, minutes, gpus_per_worker, cpus_per_worker, partition, gres, mem_gb,
                                  max_requeues, sbatch=flags)
    command = launch.worker_command(str(study_file.resolve()), storage, scale.value, str(sweeps))
    folder, job_name = sweeps / study.name / "slurm", f"tina-{study.name}"
    if not local and not launch.is_shared_storage(storage):
        errors.print(f"[yellow]warning:[/] the ledger {escape(describe_storage(storage, sweeps / study.name))} is a "
                     "file: every node must reach it on a shared filesystem with working file locks (NFS often has "
                     "none); a database is safer: --storage postgresql://user@host/db", highlight=False,
                     soft_wrap=True)
    if dry_run:
        try:
            typer.echo(launch.sbatch_script(folder, options, job_name, command))
        except ValueError as error:  # submitit rejects a parameter
            fail(f"sbatch options: {' '.join(str(error).split())[:300]}")
        return
    _preflight(study, trials, scale.value, storage, sweeps_dir, redefine)
    settings = launch.WorkerSettings(str(study_file.resolve()), study.name, scale.value, str(sweeps),
                                     slots=max(1, gpus_per_worker),
                                     threads=max(1, (os.cpu_count() or 1) // workers) if local else None,
                                     prices=price_table, max_retries=max_retries)
    try:
        jobs = launch.submit(launch.SlurmWorker(settings, storage), folder, options, job_name, command, storage,
                             local)
    except Exception as error:
        from tina_sweep.run.secrets import Secrets

        fail(Secrets.from_url(storage).mask(f"submission failed: {type(error).__name__}: "
                                            f"{' '.join(str(error).split())}")[:400], 1)
    where = describe_storage(storage, sweeps / study.name)
    if not local:
        console.print(f"Submitted {workers} worker(s) of {study.name} as Slurm job {jobs[0].job_id.split('_')[0]} "
                      f"(logs: {folder}); follow with `tina-sweep status {study.name} --sweeps-dir {sweeps}"
                      + (f" --storage {where}`" if storage else "`"), highlight=False, soft_wrap=True)
        return
    console.print(f"{workers} local worker(s) of {study.name} started (logs: {folder}); waiting", highlight=False)
    failures = []
    for job in jobs:
        try:
            job.result()
        except Exception as error:
            failures.append(f"worker {job.job_id}: {' '.join(str(error).split())[-200:]}")
    _launch_summary(study, trials, storage, sweeps_dir, failures)


def _launch_summary(study, trials, storage: Optional[str], sweeps_dir: Path, failures: list[str]) -> None:
    from tina_sweep.ledger.store import Ledger
    from tina_sweep.run.runner import study_jobs
    from tina_sweep.run.secrets import Secrets

    ids = [job.trial_id for job in study_jobs(study, trials)]
    ledger = Ledger(study.name, storage, sweeps_dir / study.name)
    try:
        counts = ledger.counts(ids)
    finally:
        ledger.close()
    console.print(f"{study.name}: {counts.finished} of {len(ids)} jobs finished", highlight=False)
    if failures:
        fail(Secrets.from_url(storage).mask(f"{len(failures)} worker(s) failed: {failures[0]}"), 1)
    if counts.finished < len(ids):
        fail(f"{len(ids) - counts.finished} job(s) did not finish (see `tina-sweep status {study.name}`)", 1)


def main() -> None:  # pragma: no cover - console-script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
