"""The paper's published cost table, our price table, and the device a trial's cost records."""

from __future__ import annotations

import pytest

from tina_sweep.trial import cost
from tina_sweep.report.paper import load_published_cost


def test_published_cost_table_is_consistent_with_its_totals():
    dollars = {r["task"]: r for r in load_published_cost().to_dicts()}
    tasks = [t for t in dollars if not t.startswith("Total")]
    main = [t for t in tasks if t.startswith("Main")]
    for column in ("train_usd", "eval_usd", "total_usd"):
        assert sum(dollars[t][column] or 0 for t in tasks) == dollars["Total: All Tasks"][column]
        assert sum(dollars[t][column] or 0 for t in main) == dollars["Total: Main Tasks"][column]
    for row in dollars.values():
        assert (row["train_usd"] or 0) + row["eval_usd"] == row["total_usd"]


def test_default_price_table_prices_the_papers_gpu_as_the_paper_did():
    """The paper rented two NVIDIA L40S at about $1 per GPU-hour (its cost section): the default table agrees."""
    l40s = cost.DeviceInfo("NVIDIA L40S", "cuda", 2)
    assert cost.price_per_hour(l40s, cost.load_prices(None)) == 1.0  # per GPU-hour


def test_trial_cost_records_the_gpu_model_and_count(monkeypatch):
    import torch

    monkeypatch.setattr(cost, "cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "NVIDIA H200")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 4e9)
    result = cost.trial_cost(3600, 1800, 10, 20, cost.load_prices(None))
    assert (result.device, result.device_count) == ("NVIDIA H200", 8)
    assert result.device_hours == pytest.approx(12.0) and result.price_per_device_hour == 3.5
    assert result.total_usd == pytest.approx(42.0) and result.peak_memory_gb == pytest.approx(4.0)
