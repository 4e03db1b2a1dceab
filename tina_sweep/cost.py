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

import torch

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
    if torch.cuda.is_available():
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
    if torch.cuda.is_available():
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


# ------------------------------------------------------------------ the paper's own cost table

# The paper ran on two NVIDIA L40S GPUs rented on a commercial cloud at about $1 per GPU-hour (its "cost" section);
# its cost table (data/reference/tina_paper_cost_usd.csv) gives dollars only, rounded to whole dollars.
PAPER_DEVICE = DeviceInfo("NVIDIA L40S", "cuda", 2)
PAPER_PRICE_PER_GPU_HOUR = 1.00


def device_hours_cost(device_hours: float, device: DeviceInfo, prices: dict[str, float]) -> float:
    """Dollars for ``device_hours`` (already summed over the devices) on ``device`` at the table's price: the
    same price lookup trial_cost uses."""
    return device_hours * price_per_hour(device, prices)


def paper_gpu_hours() -> list[dict]:
    """The paper's cost table as GPU-hours: published dollars / the stated $1 per GPU-hour. (The paper states
    dollars and the price, not hours, so these hours are derived, to the table's one-dollar rounding.)"""
    import csv

    from tina_sweep.data import bundled_path

    rows = []
    with open(bundled_path("reference/tina_paper_cost_usd.csv"), newline="") as handle:
        for row in csv.DictReader(handle):
            hours = {k: (float(row[f"{k}_usd"]) / PAPER_PRICE_PER_GPU_HOUR if row[f"{k}_usd"] else None)
                     for k in ("train", "eval", "total")}
            rows.append({"task": row["task"], **{f"{k}_gpu_hours": v for k, v in hours.items()}})
    return rows


def paper_cost_table(prices: dict[str, float] | None = None, device: DeviceInfo = PAPER_DEVICE) -> list[dict]:
    """The paper's cost table regenerated from its GPU-hours by our cost code: at the paper's price (the default)
    it reproduces the published dollars; with another price table or device it says what the same GPU-hours
    would cost there (GPU-hours of an L40S are not those of an H100: a like-for-like estimate needs measured
    hours, which ``trial_cost`` records)."""
    prices = prices if prices is not None else {PAPER_DEVICE.name: PAPER_PRICE_PER_GPU_HOUR}
    table = []
    for row in paper_gpu_hours():
        usd = {k: (None if row[f"{k}_gpu_hours"] is None else device_hours_cost(row[f"{k}_gpu_hours"], device, prices))
               for k in ("train", "eval", "total")}
        table.append({"task": row["task"], **{f"{k}_usd": v for k, v in usd.items()}})
    return table
