"""A trainer callback that holds every trial at a step until the test opens the gate (``TINA_SWEEP_CALLBACKS=
tests/gate.py:Gate``): a test that must act while a trial is in the middle of training waits for that event,
whatever the machine's speed, instead of racing a fast trial.

``TINA_GATE_DIR``: the gate's folder; ``TINA_GATE_STEP``: the step (after its checkpoint is saved) at which a
trial writes ``<dir>/<pid>.waiting`` (its attempt folder, JSON) and waits for ``<dir>/open``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from transformers import TrainerCallback


class Gate(TrainerCallback):
    def __init__(self):
        self.folder = Path(os.environ["TINA_GATE_DIR"])
        self.step = int(os.environ.get("TINA_GATE_STEP", "2"))

    def on_save(self, args, state, control, **kwargs):
        if state.global_step != self.step:
            return
        attempt = Path(args.output_dir).parent
        waiting = self.folder / f"{os.getpid()}.waiting"
        tmp = waiting.with_suffix(".tmp")
        tmp.write_text(json.dumps({"attempt": str(attempt), "pid": os.getpid(), "step": state.global_step}))
        os.replace(tmp, waiting)
        deadline = time.monotonic() + 1800  # a test that never opens the gate fails its trial, not CI's clock
        while not (self.folder / "open").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"gate at step {self.step} was never opened ({self.folder})")
            time.sleep(0.05)
        waiting.unlink(missing_ok=True)
