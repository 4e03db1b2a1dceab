"""The cost/score Pareto front of a sweep's arms: which arms no other arm beats on both cost and Pass@1."""

from __future__ import annotations

import math

import polars as pl

_ROW = "__pareto_row"


def _front_rows(costs: list[float | None], scores: list[float | None]) -> list[bool]:
    """On-front flags for one group: lowest cost wins, highest score wins; rows with a missing value are off.

    A row is off the front when another row costs no more and scores no less, and is strictly better in one of
    the two. Rows with the same cost and the same score do not dominate each other: all of them stay on.
    """
    flags = [False] * len(costs)
    order = sorted((i for i in range(len(costs)) if costs[i] is not None and scores[i] is not None),
                   key=lambda i: (costs[i], -scores[i]))
    best = float("-inf")  # best score among strictly cheaper rows
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and costs[order[end]] == costs[order[start]]:
            end += 1
        top = scores[order[start]]  # the group is sorted by score descending
        if top > best:
            for i in order[start:end]:
                flags[i] = scores[i] == top
        best = max(best, top)
        start = end
    return flags


def _number(value: object) -> float | None:
    """A float, or None for a missing or NaN value."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def pareto_front(frame: pl.DataFrame, cost: str = "total_usd", score: str = "mean",
                 by: str | None = "benchmark") -> pl.DataFrame:
    """``frame`` with a boolean ``on_front`` column: minimise ``cost``, maximise ``score``, per ``by`` group.

    ``by`` is ignored when the frame has no such column (one group). Row order is kept.
    """
    indexed = frame.with_row_index(_ROW)
    groups = indexed.partition_by(by, maintain_order=True) if by and by in frame.columns else [indexed]
    flags: dict[int, bool] = {}
    for group in groups:
        rows = group[_ROW].to_list()
        costs = [_number(v) for v in group[cost].to_list()]
        scores = [_number(v) for v in group[score].to_list()]
        flags.update(zip(rows, _front_rows(costs, scores)))
    on_front = pl.Series("on_front", [flags[i] for i in indexed[_ROW].to_list()], dtype=pl.Boolean)
    return frame.with_columns(on_front)
