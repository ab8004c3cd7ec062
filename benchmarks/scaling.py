"""Multi-process scaling: the many-shoots load against 1, then 2, relay processes.

``fast-shoot serve --workers N`` runs N relay processes on one port (``SO_REUSEPORT``),
coordinated through Redis by the shoots' leases. This scenario measures what that buys:
the many-shoots connection list (full mode: 1,000 shoots x 10 clients) with one archer
per shoot writing :data:`RATE_PER_SHOOT` times a second, far more than one process can
deliver, so the delivered messages per second are the relay's throughput. It runs once
against a relay started with ``--workers 1`` and once with ``--workers 2``, on the same
Redis, and reports the ratio (goal: at least :data:`GOAL_SPEEDUP`).

CPU is read over the whole process tree (supervisor and workers). On a machine whose
cores also run the load generator, the second process competes with the generator for
the same cores: compare CPU per delivered message too, which does not depend on that.
"""

from __future__ import annotations

import math
from typing import Any, Final

import psutil

from .procs import Server, python_module
from .scenarios import MAX_WRITER_RATE, Bench

__all__ = ["GOAL_SPEEDUP", "PROCESSES", "measure_scaling", "scaling_goals", "scaling_markdown"]

#: Relay processes measured, in order.
PROCESSES: Final = (1, 2)
#: Writes per second per shoot offered (one archer writing, under the per-connection limit).
RATE_PER_SHOOT: Final = 5.0
#: Throughput with 2 processes over 1 process.
GOAL_SPEEDUP: Final = 1.8


class WorkersServer(Server):
    """The relay as ``--workers N``: CPU and memory summed over its process tree."""

    def __init__(self, processes: int, redis_url: str, bench: Bench) -> None:
        data_dir = bench.work_dir / f"relay-{processes}"
        args = ["--redis-url", redis_url, "--data-dir", str(data_dir)]
        args += ["--workers", str(processes)]
        command = python_module("benchmarks.relay_proc", *args)
        super().__init__(f"relay-{processes}p", command, bench.work_dir)

    def _tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.pid)
        return [root, *root.children(recursive=True)]

    def cpu_s(self) -> float:
        total = 0.0
        for process in self._tree():
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def rss(self) -> int:
        total = 0
        for process in self._tree():
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total


async def measure_scaling(bench: Bench) -> None:
    """Run the scenario; ``bench.results["scaling"]``."""
    cfg = bench.config
    assert bench.redis is not None
    rows: list[dict[str, Any]] = []
    shared_relay = bench.relay
    try:
        for processes in PROCESSES:
            server = WorkersServer(processes, bench.redis.url, bench)
            bench.progress.step(f"scaling: {processes} relay processes")
            server.start("/health")
            bench.relay = server  # shoots are created through the relay under test
            try:
                conns = await bench._shoot_conns(
                    cfg.many_shoots, cfg.many_clients, RATE_PER_SHOOT, MAX_WRITER_RATE
                )
                row = await bench.measure(
                    server, conns, cfg.many_clients, f"scaling {processes} processes"
                )
            finally:
                server.stop()
            row.update(processes=processes, shoots=cfg.many_shoots, rate=RATE_PER_SHOOT)
            rows.append(row)
    finally:
        bench.relay = shared_relay
    one, two = rows[0]["delivered_per_s"], rows[-1]["delivered_per_s"]
    bench.results["scaling"] = {
        "rows": rows,
        "speedup": two / one if one else math.nan,
        "clients_per_shoot": cfg.many_clients,
    }


def scaling_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The scaling goal for the report's goal table (empty when not measured)."""
    from .goals import _goal, verdict

    scaling = results.get("scaling")
    if scaling is None:
        return []
    rows = scaling["rows"]
    failed = sum(row["failed"] for row in rows)
    detail = " vs ".join(f"{row['delivered_per_s']:,.0f} msg/s" for row in rows)
    if failed:
        detail += f"; {failed} connections failed"
    shoots = rows[0]["shoots"]
    return [
        _goal(
            f"Throughput, {shoots:,} shoots x {scaling['clients_per_shoot']} clients, "
            "2 relay processes vs 1",
            f">= {GOAL_SPEEDUP}x",
            scaling["speedup"],
            "x",
            verdict(scaling["speedup"], GOAL_SPEEDUP, lower_is_better=False),
            detail,
        )
    ]


def scaling_markdown(results: dict[str, Any]) -> list[str]:
    """The scenario's section of the Markdown report."""
    from .report import _table
    from .stats import fmt as _f

    scaling = results.get("scaling")
    if scaling is None:
        return []
    table = [
        [
            _f(row["processes"]),
            _f(row["connections"]),
            _f(row["failed"]),
            _f(row["writes_per_s"], 0),
            _f(row["delivered_per_s"], 0),
            _f(row["delivered_ratio"], 3),
            _f(row["p50_ms"]),
            _f(row["p99_ms"]),
            _f(row["cpu_util"]),
            _f(row["cpu_us_per_msg"], 1),
        ]
        for row in scaling["rows"]
    ]
    header = ["Processes", "Connections", "Failed", "Writes/s", "Delivered msg/s"]
    header += ["Delivered / expected", "p50 ms", "p99 ms", "CPU use (cores)", "CPU µs / msg"]
    return [
        "## Several relay processes on one port (`--workers`)",
        "",
        *_table(header, table),
        f"Throughput with 2 processes: {_f(scaling['speedup'])}x that of 1 (goal "
        f">= {GOAL_SPEEDUP}x). The load generator runs on the same cores.",
        "",
    ]
