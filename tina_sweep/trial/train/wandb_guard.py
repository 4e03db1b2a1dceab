"""W&B inside training: an error in transformers' WandbCallback becomes one warning and stops W&B logging for the
rest of training, instead of failing the trial."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any


def warn(what: str, error: BaseException) -> None:
    """One line on stderr; the caller carries on without W&B."""
    detail = (str(error).strip().splitlines() or [""])[0][:200]
    print(f"warning: W&B {what} failed ({type(error).__name__}: {detail}); continuing without it",
          file=sys.stderr, flush=True)


def guard_wandb_callback(trainer: Any) -> None:
    """Swap transformers' WandbCallback on ``trainer`` for one whose W&B errors become a single warning and stop
    W&B logging for the rest of training instead of failing it."""
    from transformers.integrations import WandbCallback

    if trainer.pop_callback(WandbCallback) is not None:
        trainer.add_callback(_safe_callback_class(WandbCallback)())


@functools.cache
def _safe_callback_class(base: type) -> type:
    def guarded(method: Callable) -> Callable:
        @functools.wraps(method)
        def hook(self, *args, **kwargs):
            if getattr(self, "_broken", False):
                return None
            try:
                return method(self, *args, **kwargs)
            except Exception as error:
                self._broken = True
                warn("training log", error)
                return None
        return hook

    from transformers import TrainerCallback

    hooks = {name: guarded(getattr(base, name)) for name in vars(TrainerCallback) if name.startswith("on_")}
    return type("SafeWandbCallback", (base,), hooks)
