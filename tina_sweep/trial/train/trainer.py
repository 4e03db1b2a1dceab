"""One trial's training: TrialSpec -> TRL GRPOConfig + PEFT LoraConfig -> GRPOTrainer -> LoRA adapter.

The RL-algorithm axis maps onto TRL fields exactly (``tina_sweep.trial.algorithms.ALGORITHMS``); every GRPOConfig field that
matters is set explicitly because TRL's defaults move between versions, and the config the trainer actually
received is saved as ``grpo_config.json`` beside the adapter.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import PrinterCallback, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from tina_sweep.trial.algorithms import ALGORITHMS
from tina_sweep.trial.attempts import TRAIN_PROGRESS, earlier_costs, loadable_checkpoints, write_json_atomic
from tina_sweep.trial.spec import TrialSpec
from tina_sweep.trial.train.cpu_fast_path import FastCpuGRPOTrainer
from tina_sweep.trial.dev import read_dev_curve
from tina_sweep.trial.train.stopping import DevScorer, StopState, StopWhenAsked
from tina_sweep.trial.datasets import load_training_problems
from tina_sweep.trial.models import load_model_and_tokenizer
from tina_sweep.trial.prompts import apply_chat_template_choice, chat_messages
from tina_sweep.trial.rewards import reward_function

@dataclass
class TrainOutcome:
    """What training produced and what it cost."""

    adapter_dir: Path
    steps: int
    wall_seconds: float  # this attempt's training time
    generated_tokens: int  # tokens this attempt generated
    log_history: list[dict]
    resumed_from: str | None = None
    earlier_attempts: list[dict] = field(default_factory=list)  # what the job's earlier attempts spent
    global_batch: dict = field(default_factory=dict)  # what each optimizer step saw (see ``global_batch``)
    stopped: dict | None = None  # ended before its horizon: {"reason": "pruned" | "early_stopped", "step", ...}
    dev_curve: dict[int, float] = field(default_factory=dict)  # dev Pass@1 by step (a dev split is set)
    dev_seconds: float = 0.0  # this attempt's time scoring the dev split (inside wall_seconds)

    @property
    def total_seconds(self) -> float:
        """Training time over every attempt at the trial (a retried trial pays for each)."""
        return self.wall_seconds + sum(a["train_seconds"] for a in self.earlier_attempts)

    @property
    def total_tokens(self) -> int:
        return self.generated_tokens + sum(a["generated_tokens"] for a in self.earlier_attempts)


def cpu_computes_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), so bf16 autocast pays; says so once when not."""
    from pathlib import Path

    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.is_file() else set()
    if flags & {"avx512_bf16", "amx_bf16"}:
        return True
    import warnings

    warnings.warn("training.cpu_autocast bf16: this CPU has no native bf16 (AVX512-BF16 or AMX): training in fp32",
                  stacklevel=2)
    return False


def world_size() -> int:
    """The data-parallel processes of this run: ``WORLD_SIZE`` as ``accelerate launch`` / torchrun set it, else 1."""
    value = os.environ.get("WORLD_SIZE", "1")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"WORLD_SIZE: must be a positive integer, got {value!r}")
    return int(value)


def grpo_config(spec: TrialSpec, output_dir: Path, use_cpu: bool, report_to: str | list[str] = "none",
                processes: int | None = None) -> GRPOConfig:
    """The complete GRPOConfig for a trial: algorithm mapping, budget, and CPU-safe precision settings."""
    return GRPOConfig(**grpo_config_kwargs(spec, output_dir, use_cpu, report_to, processes))


def grpo_config_kwargs(spec: TrialSpec, output_dir: Path, use_cpu: bool, report_to: str | list[str] = "none",
                       processes: int | None = None) -> dict:
    """The GRPOConfig fields of each of ``processes`` data-parallel processes (None: the processes the global batch
    is defined for, ``training.global_batch_processes``, i.e. the recipe's own launch; train_trial passes this run's
    ``world_size()``), as a plain dict (so a GPU configuration can be inspected on a CPU machine, where GRPOConfig
    itself refuses bf16). The accumulation is rescaled so that every optimizer step sees the spec's global batch
    (``training.global_prompts_per_step`` prompts); a process count that cannot is a ValueError (one line)."""
    algorithm, training = spec.algorithm, spec.training
    accumulation = training.accumulation_for(training.global_batch_processes if processes is None else processes)
    scheduler_kwargs = {"min_lr_rate": training.min_lr_rate} if training.lr_scheduler_type == "cosine_with_min_lr" else None
    return dict(
        output_dir=str(output_dir),
        **ALGORITHMS[algorithm.name],
        beta=algorithm.beta,
        epsilon=algorithm.epsilon,
        num_generations=algorithm.num_generations,
        per_device_train_batch_size=training.prompts_per_step * algorithm.num_generations,
        gradient_accumulation_steps=accumulation,
        steps_per_generation=accumulation,  # one generation batch per optimizer step (TRL's default, made explicit)
        num_iterations=1,
        max_completion_length=algorithm.max_completion_length,
        temperature=algorithm.temperature,
        top_p=algorithm.top_p,
        top_k=algorithm.top_k,
        reward_weights=[reward.weight for reward in algorithm.rewards],
        learning_rate=training.learning_rate,
        lr_scheduler_type=training.lr_scheduler_type,
        lr_scheduler_kwargs=scheduler_kwargs,
        warmup_steps=training.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio of total steps
        weight_decay=training.weight_decay,
        max_grad_norm=training.max_grad_norm,
        max_steps=training.max_steps if training.max_steps is not None else -1,
        num_train_epochs=1,  # the horizon when max_steps is None (one epoch, as the recipes without max_steps)
        save_strategy="steps",
        save_steps=training.save_steps,
        save_total_limit=None,  # keep every checkpoint: checkpoint-wise evaluation reads them
        logging_steps=1,
        seed=spec.seed,
        data_seed=spec.seed,
        bf16=(spec.model.dtype == "bfloat16") if not use_cpu else (training.cpu_autocast == "bf16"
                                                                      and cpu_computes_bf16()),
        fp16=False,
        use_cpu=use_cpu,
        gradient_checkpointing=not use_cpu,
        gradient_checkpointing_kwargs={"use_reentrant": False} if not use_cpu else None,
        use_vllm=algorithm.use_vllm,
        vllm_mode=algorithm.vllm_mode,
        vllm_gpu_memory_utilization=algorithm.vllm_gpu_memory_utilization,
        vllm_max_model_length=algorithm.vllm_max_model_length,
        vllm_enable_sleep_mode=algorithm.vllm_enable_sleep_mode,
        vllm_importance_sampling_correction=algorithm.vllm_importance_sampling_correction,
        report_to=report_to,
        disable_tqdm=True,
        log_completions=False,
        shuffle_dataset=True,
        dataloader_num_workers=0,
    )


def lora_config(spec: TrialSpec) -> LoraConfig:
    return LoraConfig(
        r=spec.lora.rank,
        lora_alpha=spec.lora.resolved_alpha,
        lora_dropout=spec.lora.dropout,
        target_modules=list(spec.lora.target_modules),
        task_type="CAUSAL_LM",
        bias="none",
    )


def training_rows(spec: TrialSpec, problems) -> list[dict]:
    """One dataset row per problem: the chat prompt and its answers, and with L1 prompts (Tina's
    make_conv_for_grpo_l1) the target length drawn uniformly from ``prompt.target_length_range`` (seeded), which
    the system prompt states and the length_l1_* rewards read."""
    rng = random.Random(spec.seed)
    span = spec.prompt.target_length_range
    rows = []
    for problem in problems:
        target = rng.randint(span[0], span[1]) if span else None
        row = {"prompt": chat_messages(problem.question, spec.prompt, target), "answers": list(problem.answers)}
        if target is not None:
            row["target_length"] = target
        rows.append(row)
    return rows


class _AttemptCost(TrainerCallback):
    """Writes this attempt's training time and generated tokens so far to ``train_progress.json`` after every
    step, so that a later attempt knows what this one cost even if it dies."""

    def __init__(self, path: Path, completions_per_step: int, started: float):
        self.path, self.completions_per_step, self.started = path, completions_per_step, started
        self.tokens = 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "reward" in logs:
            self.tokens += int(round(logs.get("completions/mean_length", 0) * self.completions_per_step))
            with contextlib.suppress(OSError):
                write_json_atomic(self.path, {"seconds": time.perf_counter() - self.started, "tokens": self.tokens,
                                              "step": state.global_step})


class _StepReporter(TrainerCallback):
    """Forwards each optimizer step's training log (reward, loss, ...) to a progress callback, with the step
    training will end at (``stop_at_step`` when it comes before the horizon)."""

    def __init__(self, on_step: Callable[[int, int, dict], None], stop_at_step: int | None = None):
        self.on_step, self.stop_at_step = on_step, stop_at_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "reward" in logs:  # logging_steps=1: one such log per optimizer step
            self.on_step(state.global_step, min(state.max_steps, self.stop_at_step or state.max_steps), dict(logs))


class StopAtStep(TrainerCallback):
    """``training.stop_at_step``: end training after optimizer step ``step`` and save a checkpoint there, while
    the learning-rate schedule keeps its horizon (``max_steps``), as the recipes that say "use N for the lr
    scheduler but stop at M"."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True
            control.should_save = True
        return control


def global_batch(args: GRPOConfig, spec: TrialSpec, processes: int) -> dict:
    """What one optimizer step sees, from the config the trainer runs with: TRL 1.16 generates once per
    ``steps_per_generation`` micro-steps for ``generation_batch_size`` completions over all processes. Raises
    RuntimeError (one line) if that is not the spec's global batch."""
    if args.steps_per_generation != args.gradient_accumulation_steps or args.num_iterations != 1:
        raise RuntimeError(f"steps_per_generation {args.steps_per_generation} / num_iterations {args.num_iterations}: "
                           f"expected one generation batch per optimizer step")
    completions = args.generation_batch_size
    prompts = completions // args.num_generations
    if prompts != spec.training.global_prompts_per_step:
        raise RuntimeError(f"training.global_batch_processes: the trainer sees {prompts} prompts per optimizer step, "
                           f"the spec asks for {spec.training.global_prompts_per_step}")
    return {"prompts_per_step": prompts, "completions_per_step": completions, "processes": processes,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "prompts_per_micro_step": args.per_device_train_batch_size // args.num_generations,
            "defined_for_processes": spec.training.global_batch_processes}


def callbacks_from_environment() -> list[TrainerCallback]:
    """Trainer callbacks named in ``TINA_SWEEP_CALLBACKS`` (``file.py:Name`` or ``module:Name``, comma-separated),
    each class instantiated without arguments: custom logging, or a test's gate that holds a trial at a step."""
    import importlib
    import importlib.util

    found = []
    for entry in filter(None, (e.strip() for e in os.environ.get("TINA_SWEEP_CALLBACKS", "").split(","))):
        where, _, name = entry.rpartition(":")
        if where.endswith(".py"):
            module_spec = importlib.util.spec_from_file_location(Path(where).stem, where)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
        found.append(getattr(module, name)())
    return found


def last_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest ``checkpoint-N`` folder that loads (a torn trainer state, left by a kill in the middle of a
    save, is passed over for the one before it), or None."""
    found = loadable_checkpoints(checkpoint_dir)
    return found[max(found)] if found else None


def saved_checkpoints(checkpoint_dir: Path) -> dict[int, Path]:
    """Every ``checkpoint-N`` folder holding an adapter, by step N, in step order."""
    found = {int(p.name.split("-")[-1]): p for p in checkpoint_dir.glob("checkpoint-*")
             if p.name.split("-")[-1].isdigit() and (p / "adapter_config.json").exists()}
    return dict(sorted(found.items()))


def train_trial(spec: TrialSpec, trial_dir: Path, on_step: Callable[[int, int, dict], None] | None = None,
                extra_callbacks: list | None = None, report_to: str | list[str] = "none") -> TrainOutcome:
    """Train one LoRA adapter with GRPO; write the adapter, config, log and checkpoints under ``trial_dir``.
    ``report_to=["wandb"]`` streams the training metrics into the W&B run open in this process."""
    processes = world_size()
    spec.training.accumulation_for(processes)  # a world size that cannot hold the global batch: before any loading
    use_cpu = not torch.cuda.is_available()
    model, tokenizer = load_model_and_tokenizer(spec.model.name, spec.model.dtype, spec.model.attn_implementation)
    apply_chat_template_choice(tokenizer, spec.prompt)
    problems = load_training_problems(spec)
    dataset = Dataset.from_list(training_rows(spec, problems))
    checkpoint_dir = trial_dir / "checkpoints"
    args = grpo_config(spec, checkpoint_dir, use_cpu, report_to, processes)
    stop = spec.training.stop_at_step
    callbacks = ([_StepReporter(on_step, stop)] if on_step else []) + callbacks_from_environment()
    if stop is not None:
        callbacks.append(StopAtStep(stop))
    trainer_class = FastCpuGRPOTrainer if spec.training.cpu_fast_path else GRPOTrainer
    trainer = trainer_class(
        model=model,
        reward_funcs=[reward_function(r.name, spec.algorithm.max_completion_length, r.params,
                                      spec.algorithm.num_generations)
                      for r in spec.algorithm.rewards],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(spec),
        callbacks=callbacks + list(extra_callbacks or []),
    )
    trainer.remove_callback(PrinterCallback)  # progress goes through on_step, not print()
    stop_state = StopState()
    scorer = DevScorer(trainer, spec, trial_dir, stop_state, trainer.accelerator.is_main_process) \
        if spec.dev is not None else None
    if scorer is not None:
        trainer.add_callback(scorer)
    trainer.add_callback(StopWhenAsked(trainer, trial_dir, stop_state))
    if "wandb" in report_to:
        from tina_sweep.trial.train.wandb_guard import guard_wandb_callback

        guard_wandb_callback(trainer)  # a W&B error must not fail the trial
    if trainer.accelerator.num_processes != processes:
        raise RuntimeError(f"WORLD_SIZE {processes} but accelerate runs {trainer.accelerator.num_processes} "
                           "process(es): the global batch would be wrong")
    batch = global_batch(trainer.args, spec, processes)
    main_process = trainer.accelerator.is_main_process  # under `accelerate launch`, one writer
    if main_process:
        write_json_atomic(trial_dir / "grpo_config.json", trainer.args.to_dict())
    resume = last_checkpoint(checkpoint_dir)
    started = time.perf_counter()
    # completions/mean_length is the mean over every process's completions of the step: count them all
    cost = _AttemptCost(trial_dir / TRAIN_PROGRESS, batch["completions_per_step"], started)
    if main_process:
        trainer.add_callback(cost)
    adapter_dir = trial_dir / "adapter"
    resumed_state = json.loads((resume / "trainer_state.json").read_text()) if resume else {}
    ends = [step for step in (stop, spec.training.max_steps or resumed_state.get("max_steps")) if step]
    horizon = min(ends) if ends else float("inf")  # the step training ends at: stop_at_step or the scheduler's
    if resumed_state and resumed_state.get("global_step", 0) >= horizon:
        # training had finished before the job failed (in evaluation, say): reuse it, train nothing more
        history_source, steps = resumed_state["log_history"], resumed_state["global_step"]
        if main_process:
            _copy_adapter(resume, adapter_dir)
    else:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        trainer.save_model(str(adapter_dir))
        history_source, steps = trainer.state.log_history, trainer.state.global_step
    wall_seconds = time.perf_counter() - started
    history = [entry for entry in history_source if "reward" in entry]
    if main_process:
        tmp = trial_dir / f".train_log.jsonl.{os.getpid()}.tmp"
        tmp.write_text("".join(json.dumps(entry) + "\n" for entry in history))
        os.replace(tmp, trial_dir / "train_log.jsonl")
        write_json_atomic(trial_dir / TRAIN_PROGRESS, {"seconds": wall_seconds, "tokens": cost.tokens, "step": steps})
    _release_rollout_engine(trainer)
    stopped = {**stop_state.detail, "reason": stop_state.reason, "step": stop_state.step,
               "horizon": min(ends) if ends else trainer.state.max_steps} if stop_state.reason else None
    return TrainOutcome(adapter_dir, steps, wall_seconds, cost.tokens, history,
                        resumed_from=resume.name if resume else None, earlier_attempts=earlier_costs(trial_dir),
                        global_batch=batch, stopped=stopped,
                        dev_curve=read_dev_curve(trial_dir) if spec.dev is not None else {},
                        dev_seconds=scorer.scored_seconds if scorer is not None else 0.0)


def _release_rollout_engine(trainer) -> None:
    """Drop the colocated vLLM engine TRL built for rollouts, so evaluation (which may start its own engine in
    this process) gets its GPU memory back."""
    generation = getattr(trainer, "vllm_generation", None)
    if generation is None or getattr(generation, "llm", None) is None:
        return
    generation.llm = None
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _copy_adapter(checkpoint: Path, adapter_dir: Path) -> None:
    """A PEFT checkpoint folder holds the adapter files; copy them as the trial's adapter."""
    import shutil

    adapter_dir.mkdir(parents=True, exist_ok=True)
    for name in ("adapter_config.json", "adapter_model.safetensors", "README.md"):
        if (checkpoint / name).exists():
            shutil.copy2(checkpoint / name, adapter_dir / name)


def main(argv: list[str] | None = None) -> None:
    """Train one trial from its spec file, e.g. on several GPUs under DeepSpeed ZeRO-2 (docs/gpu.md):

        accelerate launch --config_file configs/accelerate/zero2.yaml --num_processes 2 \\
            -m tina_sweep.trial.train.trainer sweeps/<study>/trials/<id>/spec.json sweeps/<study>/trials/<id>

    The spec file is a trial folder's spec.json ({"kind", "axes", "spec"}) or a bare TrialSpec as JSON."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tina_sweep.trial.train.trainer", description=main.__doc__.splitlines()[0])
    parser.add_argument("spec_file", type=Path)
    parser.add_argument("trial_dir", type=Path)
    args = parser.parse_args(argv)
    payload = json.loads(args.spec_file.read_text())
    spec = TrialSpec.model_validate(payload.get("spec", payload))
    try:
        spec.training.accumulation_for(world_size())
    except ValueError as error:
        raise SystemExit(f"python -m tina_sweep.trial.train.trainer: {error}") from None
    args.trial_dir.mkdir(parents=True, exist_ok=True)
    outcome = train_trial(spec, args.trial_dir)
    print(json.dumps({"adapter_dir": str(outcome.adapter_dir), "steps": outcome.steps,
                      "wall_seconds": outcome.wall_seconds, "generated_tokens": outcome.generated_tokens}))


if __name__ == "__main__":
    main()
