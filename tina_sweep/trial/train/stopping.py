"""Spending only what the conclusion needs, inside the trial's process: the dev split scored at every saved
checkpoint, early stopping on it, and a clean stop when the worker asks for one (an arm pruned across the study).

The trial never talks to the ledger. It appends each dev score to ``dev_log.jsonl`` (and leaves it in the
checkpoint folder as ``dev.json``, so a resumed attempt keeps the curve); the worker reads that file, reports the
score to Optuna and asks the study's pruner, and when the arm is pruned writes ``stop.json`` into the trial folder.
The trial then ends training after the step it is in, saves a checkpoint there and goes on to evaluation as usual.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainerCallback

from tina_sweep.trial.attempts import write_json_atomic
from tina_sweep.trial.dev import (DEV_FILE, DEV_LOG, PRUNING_WORKER, STOP_FILE, VERDICT_FILE, best_step, dev_eval_spec,
                                  read_dev_curve)
from tina_sweep.trial.spec import TrialSpec

VERDICT_SECONDS = 600  # how long a trial waits for its worker's verdict on a dev score (a dead worker kills it first)


@dataclass
class StopState:
    """Why training ended before its horizon, if it did."""

    reason: str | None = None  # "pruned", "early_stopped" or None
    step: int | None = None
    detail: dict = field(default_factory=dict)


class DevScorer(TrainerCallback):
    """Scores the dev split on the model being trained right after each checkpoint is saved; stops training
    early after ``dev.patience`` scores without a gain over ``dev.min_delta``."""

    def __init__(self, trainer, spec: TrialSpec, trial_dir: Path, stop: StopState, main_process: bool = True):
        from tina_sweep.trial.datasets import load_dev_problems
        from tina_sweep.trial.evaluate.scoring import evaluation_prompt
        from tina_sweep.trial.prompts import apply_chat_template_choice

        self.trainer, self.spec, self.trial_dir, self.stop, self.main = trainer, spec, trial_dir, stop, main_process
        self.problems = load_dev_problems(spec)
        self.prompt = evaluation_prompt(spec.prompt, spec.eval)
        self.eval_spec = dev_eval_spec(spec)
        self.tokenizer = copy.deepcopy(trainer.processing_class)
        self.tokenizer.padding_side = "left"
        apply_chat_template_choice(self.tokenizer, self.prompt)
        self.curve = read_dev_curve(trial_dir)  # a resumed attempt keeps the earlier scores
        self.scored_seconds = 0.0

    def on_save(self, args, state, control, **kwargs):
        step = state.global_step
        if not self.main or step in self.curve:
            return control
        record = self.score(step)
        self.curve[step] = record["pass_at_1"]
        checkpoint = Path(args.output_dir) / f"checkpoint-{step}"
        if checkpoint.is_dir():
            write_json_atomic(checkpoint / DEV_FILE, record)
        with open(self.trial_dir / DEV_LOG, "a") as log:
            log.write(json.dumps(record) + "\n")
        _log_to_wandb({"dev/pass_at_1": record["pass_at_1"], "train/global_step": step})
        if self.stop.reason is None and self._pruned_now(step):
            control.should_training_stop = True  # this step's checkpoint is saved: stop here, not a step later
            return control
        if self.stop.reason is None and step < state.max_steps and self._no_gain():
            self.stop.reason, self.stop.step = "early_stopped", step
            self.stop.detail = {"patience": self.spec.dev.patience, "min_delta": self.spec.dev.min_delta,
                                "best_step": best_step(self.curve)}
            _log_to_wandb({"stopping/early_stopped_at": step, "train/global_step": step})
            control.should_training_stop = True
        return control

    def _pruned_now(self, step: int) -> bool:
        """Under a worker that prunes (``TINA_SWEEP_PRUNING_WORKER``, one process): wait for its verdict on this
        dev score (it reads the score, asks the study's pruner and answers within a poll, ~0.5 s) so a pruned
        trial stops at the step the decision was made on."""
        if self.spec.dev.pruner == "none" or os.environ.get(PRUNING_WORKER) != "1" or \
                self.trainer.accelerator.num_processes > 1:
            return False
        path, deadline = self.trial_dir / VERDICT_FILE, time.monotonic() + VERDICT_SECONDS
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, KeyError):
                verdict = json.loads(path.read_text())
                if int(verdict["step"]) >= step:
                    if not verdict.get("prune"):
                        return False
                    with contextlib.suppress(OSError, ValueError):
                        self.stop.detail = json.loads((self.trial_dir / STOP_FILE).read_text())
                    self.stop.reason, self.stop.step = "pruned", step
                    _log_to_wandb({"stopping/pruned_at": step, "train/global_step": step})
                    return True
            time.sleep(0.05)
        return False

    def score(self, step: int) -> dict:
        """Dev Pass@1 of the model as it is now (greedy; LoRA active, not merged)."""
        import torch

        from tina_sweep.trial.evaluate.local import evaluate_benchmark

        model = self.trainer.accelerator.unwrap_model(self.trainer.model)
        was_training = model.training
        model.eval()
        started = time.perf_counter()
        try:
            with torch.inference_mode():
                result = evaluate_benchmark(model, self.tokenizer, self.problems, "dev", self.prompt, self.eval_spec,
                                            self.spec.seed)
        finally:
            if was_training:
                model.train()
        seconds = time.perf_counter() - started
        self.scored_seconds += seconds
        return {"step": step, "pass_at_1": result.pass_at_1, "problems": result.problems,
                "generated_tokens": result.generated_tokens, "seconds": seconds}

    def _no_gain(self) -> bool:
        patience = self.spec.dev.patience
        if patience is None or len(self.curve) <= patience:
            return False
        scores = list(self.curve.values())
        before = max(scores[:-patience])
        return max(scores[-patience:]) <= before + self.spec.dev.min_delta


class StopWhenAsked(TrainerCallback):
    """Ends training after the current step, with a checkpoint saved there, once the worker has written
    ``stop.json`` (under several processes, every process stops at the same step)."""

    def __init__(self, trainer, trial_dir: Path, stop: StopState):
        self.trainer, self.path, self.stop = trainer, trial_dir / STOP_FILE, stop

    def on_step_end(self, args, state, control, **kwargs):
        asked = self.path.is_file()
        accelerator = self.trainer.accelerator
        if accelerator.num_processes > 1:
            import torch

            flag = torch.tensor([1.0 if asked else 0.0], device=accelerator.device)
            asked = bool(accelerator.reduce(flag, reduction="sum").item() > 0)
        if asked and self.stop.reason is None:
            with contextlib.suppress(OSError, ValueError):
                self.stop.detail = json.loads(self.path.read_text())
            self.stop.reason = self.stop.detail.get("reason", "pruned")
            self.stop.step = state.global_step
            _log_to_wandb({f"stopping/{self.stop.reason}_at": state.global_step,
                           "train/global_step": state.global_step})
        if asked:
            control.should_training_stop = True
            control.should_save = True
        return control


def _log_to_wandb(values: dict) -> None:
    """Into the trial's W&B run when one is open in this process (never fails the trial)."""
    try:
        import wandb
    except ImportError:
        return
    with contextlib.suppress(Exception):
        if wandb.run is not None:
            wandb.log(values)
