"""What a trial cost: wall time per phase, device, device-hours, tokens, peak memory, dollars.

Dollars = device-hours x the price of that device per hour, from a price table the user can override with a
JSON file ({"NVIDIA H100 80GB HBM3": 2.5, ...}). The defaults are typical on-demand cloud prices per GPU-hour
(and per 2-vCPU machine-hour for a CPU); they are assumptions, stated as such in every report.
"""

from __future__ import annotations

import json
import math
import platform
import resource
from dataclasses import asdict, dataclass
from pathlib import Path

from tina_sweep.trial.gpus import cuda_available

DEFAULT_PRICES_PER_DEVICE_HOUR: dict[str, float] = {
    "cpu": 0.10,  # a 2-vCPU cloud machine
    "NVIDIA L40S": 1.00,
    "NVIDIA A100": 1.80,
    "NVIDIA H100": 2.50,
    "NVIDIA H200": 3.50,
    "NVIDIA RTX 6000 Ada": 0.90,
}


@dataclass
class DeviceInfo:
    name: str
    kind: str  # "cuda" or "cpu"
    count: int


def current_device() -> DeviceInfo:
    """The accelerator this process trains on: every visible CUDA GPU, else the CPU."""
    if cuda_available():
        import torch

        return DeviceInfo(torch.cuda.get_device_name(0), "cuda", torch.cuda.device_count())
    return DeviceInfo(_cpu_name(), "cpu", 1)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def load_prices(path: str | Path | None) -> dict[str, float]:
    """The default price table, updated with a user's JSON file of ``{device name prefix: $ per hour}``."""
    prices = dict(DEFAULT_PRICES_PER_DEVICE_HOUR)
    if path:
        try:
            overrides = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON (line {error.lineno}: {error.msg})") from None
        except UnicodeDecodeError:
            raise ValueError("not UTF-8 text") from None
        except FileNotFoundError:
            raise ValueError("no such file") from None
        except IsADirectoryError:
            raise ValueError("is a directory, not a JSON file") from None
        if not isinstance(overrides, dict) or not overrides:
            raise ValueError('must hold a JSON object of {"device name": dollars per device-hour}, got '
                             f"{json.dumps(overrides)[:60]}")
        bad = [k for k, v in overrides.items()
               if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0]
        if bad:
            raise ValueError(f"{bad[0]!r}: must be a non-negative number of dollars per device-hour, "
                             f"got {json.dumps(overrides[bad[0]])}")
        prices.update(overrides)
    return prices


def price_per_hour(device: DeviceInfo, prices: dict[str, float]) -> float:
    """The longest matching name prefix wins; a CPU uses the ``cpu`` entry."""
    if device.kind == "cpu":
        return prices.get(device.name, prices["cpu"])
    matches = [name for name in prices if device.name.startswith(name)]
    return prices[max(matches, key=len)] if matches else 0.0


def peak_memory_gb() -> float:
    """Peak GPU memory allocated, or the process's peak resident memory on CPU, in GB."""
    if cuda_available():
        import torch

        return torch.cuda.max_memory_allocated() / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux


@dataclass
class Cost:
    train_seconds: float
    eval_seconds: float
    device: str
    device_count: int
    device_hours: float
    price_per_device_hour: float
    train_usd: float
    eval_usd: float
    total_usd: float
    train_tokens: int
    eval_tokens: int
    peak_memory_gb: float

    def as_dict(self) -> dict:
        return asdict(self)


def trial_cost(train_seconds: float, eval_seconds: float, train_tokens: int, eval_tokens: int,
               prices: dict[str, float]) -> Cost:
    device = current_device()
    rate = price_per_hour(device, prices)
    hours = lambda seconds: seconds / 3600 * device.count  # noqa: E731
    return Cost(train_seconds, eval_seconds, device.name, device.count, hours(train_seconds + eval_seconds), rate,
                hours(train_seconds) * rate, hours(eval_seconds) * rate, hours(train_seconds + eval_seconds) * rate,
                train_tokens, eval_tokens, peak_memory_gb())
