"""Percentiles, the merging of load workers' reports, and numbers as the report shows them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["fmt", "merge_reports", "percentile", "summarize_latency"]

PERCENTILES = (50, 95, 99)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (``nan`` when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summarize_latency(samples_us: Iterable[int]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds."""
    values = sorted(samples_us)
    summary = {f"p{p}_ms": percentile(values, p) / 1000 for p in PERCENTILES}
    summary["max_ms"] = values[-1] / 1000 if values else math.nan
    summary["samples"] = len(values)
    return summary


def merge_reports(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Add up the workers' ``done`` reports (latency samples are concatenated)."""
    merged: dict[str, Any] = {"latencies_us": []}
    for report in reports:
        for key, value in report.items():
            if key == "latencies_us":
                merged["latencies_us"].extend(value)
            else:
                merged[key] = merged.get(key, 0) + value
    return merged


def fmt(value: Any, digits: int = 2) -> str:
    """A number for a Markdown table: thousands separated, ``-`` for missing or ``nan``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
