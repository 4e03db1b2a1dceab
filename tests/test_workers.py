"""How many trials `tina-sweep run` starts at once when --workers is not given, and how it says so."""

from __future__ import annotations

import pytest

import tina_sweep.run.worker as worker
from tina_sweep.run.runner import RunOptions, describe_slots
from tina_sweep.run.worker import default_workers, plan_slots


@pytest.fixture
def machine(monkeypatch):
    """A machine with ``cores`` cores and ``memory`` GB available."""
    def set_machine(cores: int, memory: float | None):
        monkeypatch.setattr(worker, "_cores", lambda: list(range(cores)))
        monkeypatch.setattr(worker, "available_memory_gb", lambda: memory)
    return set_machine


def test_one_single_threaded_trial_per_core(machine):
    machine(2, 20.0)
    assert default_workers("cpu", gpus=[]) == 2
    slots = plan_slots(2, gpus=[])
    assert [slot.threads for slot in slots] == [1, 1] and [slot.cpus for slot in slots] == [(0,), (1,)]
    assert describe_slots(slots) == "2 trial(s) at a time (CPUs 0; CPUs 1), 1 thread(s) each"


def test_memory_caps_the_workers(machine):
    machine(16, 8.0)  # 3.5 GB per cpu trial: two fit
    assert default_workers("cpu", gpus=[]) == 2
    assert default_workers("smoke", gpus=[]) == 16  # tiny trials: one per core
    machine(4, 1.0)  # not even one fits: still one
    assert default_workers("cpu", gpus=[]) == 1
    machine(3, None)  # memory unknown: one per core
    assert default_workers("cpu", gpus=[]) == 3


def test_one_per_gpu(machine):
    machine(32, 500.0)
    assert default_workers("paper", gpus=["0", "1", "2"]) == 3


def test_explicit_workers_win(machine):
    machine(8, 100.0)
    assert RunOptions("cpu", workers=1).worker_count() == 1
    assert RunOptions("cpu").worker_count() == 8


def test_available_memory_reads_meminfo():
    memory = worker.available_memory_gb()
    assert memory is None or memory > 0
