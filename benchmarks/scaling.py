"""Multi-process scaling: the many-shoots load against 1, then 2, relay processes.

``fast-shoot serve --workers N`` runs N relay processes on one port (``SO_REUSEPORT``),
coordinated through Redis by the shoots' leases. This scenario measures what that buys:
the many-shoots connection list (full mode: 1,000 shoots x 10 clients) with one archer
per shoot writing ``scaling_rate`` times a second (default 1: 10,000 messages a second
offered, several times what one process delivers on the development machine, so the
delivered messages per second are the relay's throughput; 5 a second swamped one
process there, with updates arriving 10-20 s late and most after the window). It runs once
against a relay started with ``--workers 1`` and once with ``--workers 2``, on the same
Redis, and reports the ratio (goal: at least :data:`GOAL_SPEEDUP`).

Two numbers, because the load generator shares the machine. Throughput can only double
if the machine has a core to spare for the second process; where the generator runs on
the same two cores (as on the development machine), it cannot, whatever the relay does.
So each window also records the relay's CPU (supervisor and workers), the generator's
CPU and the whole machine's busy time, and the report gives, beside the throughput ratio,
the ratio of *messages per relay CPU-second* (2 processes over 1): what a second process
costs per message (followers tailing logs and forwarding writes, a second event loop).
With a core of its own per process, throughput would scale by about
``processes x`` that ratio, so the second goal row asks it to stay at or above
``GOAL_SPEEDUP / 2`` (0.9: two processes at 90% of one's efficiency make 1.8x). The
report says when the machine had no CPU to spare, and when the run was smaller than the
goal's size.
"""

from __future__ import annotations

import math
from typing import Any, Final

import psutil

from .procs import Server, python_module
from .scenarios import MAX_WRITER_RATE, Bench

__all__ = ["GOAL_SPEEDUP", "PROCESSES", "measure_scaling", "scaling_goals", "scaling_markdown"]

#: The size the goal is stated for.
GOAL_SHOOTS: Final = 1_000
#: A window where the machine's cores were this busy (share of all of them) had no CPU
#: to spare for a second relay process.
SATURATED: Final = 0.9
#: A generator that sent less than this share of the writes offered was held back.
OFFERED: Final = 0.9
#: One process that delivered this share of the offered load was not at its limit.
UNSATURATED_DELIVERY: Final = 0.98

#: Relay processes measured, in order.
PROCESSES: Final = (1, 2)
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
                    cfg.many_shoots, cfg.many_clients, cfg.scaling_rate, MAX_WRITER_RATE
                )
                row = await bench.measure(
                    server, conns, cfg.many_clients, f"scaling {processes} processes"
                )
            finally:
                server.stop()
            row.update(processes=processes, shoots=cfg.many_shoots, rate=cfg.scaling_rate)
            row["msgs_per_cpu_s"] = row["delivered"] / row["cpu_s"] if row["cpu_s"] else math.nan
            rows.append(row)
    finally:
        bench.relay = shared_relay
    bench.results["scaling"] = {
        "rows": rows,
        "speedup": _ratio(rows[-1]["delivered_per_s"], rows[0]["delivered_per_s"]),
        "efficiency": _ratio(rows[-1]["msgs_per_cpu_s"], rows[0]["msgs_per_cpu_s"]),
        "clients_per_shoot": cfg.many_clients,
    }


def _ratio(mine: float, theirs: float) -> float:
    return mine / theirs if theirs and not math.isnan(theirs) else math.nan


def _saturated(row: dict[str, Any]) -> bool:
    """Whether the machine had no CPU to spare during the row's window."""
    return bool(row["machine_cpu_util"] >= SATURATED * row["machine_cores"])


def _processes(row: dict[str, Any]) -> str:
    count = row["processes"]
    return f"{count} process" if count == 1 else f"{count} processes"


def _usage(row: dict[str, Any]) -> str:
    """Who used the machine's cores in a row's window."""
    return (
        f"{_processes(row)}: relay {row['cpu_util']:.2f}, generator "
        f"{row['load_cpu_util']:.2f}, machine {row['machine_cpu_util']:.2f} of "
        f"{row['machine_cores']} cores busy"
    )


def scaling_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The scaling goals for the report's goal table (empty when not measured): the
    throughput ratio, and the ratio of messages per relay CPU-second."""
    from .goals import _goal, verdict

    scaling = results.get("scaling")
    if scaling is None:
        return []
    rows = scaling["rows"]
    shoots, clients = rows[0]["shoots"], scaling["clients_per_shoot"]
    caveats = []
    if shoots != GOAL_SHOOTS:
        caveats.append(f"at {shoots:,} shoots (goal is for {GOAL_SHOOTS:,})")
    failed = sum(row["failed"] for row in rows)
    if failed:
        caveats.append(f"{failed} connections failed")
    speed_caveats = list(caveats)
    one = rows[0]
    if one["delivered_ratio"] >= UNSATURATED_DELIVERY:
        speed_caveats.append(
            f"1 process delivered {one['delivered_ratio']:.0%} of the offered load (relay "
            f"at {one['cpu_util']:.2f} cores): the load did not reach one process's limit"
        )
    starved = [row for row in rows if row["writes_per_s"] < OFFERED * row["shoots"] * row["rate"]]
    for row in starved:
        offered = row["shoots"] * row["rate"]
        speed_caveats.append(
            f"with {_processes(row)} the generator sent "
            f"{row['writes_per_s']:,.0f} of {offered:,.0f} writes/s (the machine, or the "
            "relay's back-pressure on the writers' sockets, held it back)"
        )
    if any(_saturated(row) for row in rows):
        speed_caveats.append(
            "the machine's cores were busy (relay, load generator and whatever else ran): "
            "the throughput ratio is the machine's limit, see the per-CPU row"
        )

    def judged(measured: float, goal: float, notes: list[str]) -> str:
        return "; ".join([verdict(measured, goal, lower_is_better=False), *notes])

    throughput = " vs ".join(f"{row['delivered_per_s']:,.0f} msg/s" for row in rows)
    per_cpu = " vs ".join(f"{row['msgs_per_cpu_s']:,.0f}" for row in rows)
    usage = "; ".join(_usage(row) for row in rows)
    name = f"{shoots:,} shoots x {clients} clients, 2 relay processes vs 1"
    efficiency_goal = GOAL_SPEEDUP / PROCESSES[-1]
    return [
        _goal(
            f"Throughput, {name}",
            f">= {GOAL_SPEEDUP}x",
            scaling["speedup"],
            "x",
            judged(scaling["speedup"], GOAL_SPEEDUP, speed_caveats),
            f"{throughput}; {usage}",
        ),
        _goal(
            f"Messages per relay CPU-second, {name}",
            f">= {efficiency_goal:g}x (makes {GOAL_SPEEDUP}x with a core per process)",
            scaling["efficiency"],
            "x",
            judged(scaling["efficiency"], efficiency_goal, caveats),
            f"{per_cpu} msg per relay CPU-second",
        ),
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
            _f(row["load_cpu_util"]),
            _f(row["machine_cpu_util"]),
            _f(row["cpu_us_per_msg"], 1),
            _f(row["msgs_per_cpu_s"], 0),
        ]
        for row in scaling["rows"]
    ]
    header = ["Processes", "Connections", "Failed", "Writes/s", "Delivered msg/s"]
    header += ["Delivered / expected", "p50 ms", "p99 ms", "Relay CPU (cores)"]
    header += ["Generator CPU (cores)", "Machine busy (cores)", "Relay CPU µs / msg"]
    header += ["Msg / relay CPU-s"]
    cores = scaling["rows"][0]["machine_cores"]
    return [
        "## Several relay processes on one port (`--workers`)",
        "",
        *_table(header, table),
        f"Throughput with 2 processes: {_f(scaling['speedup'])}x that of 1 (goal "
        f">= {GOAL_SPEEDUP}x); messages per relay CPU-second: "
        f"{_f(scaling['efficiency'])}x. The load generator runs on the same {cores} cores"
        " as the relay, and *Machine busy* counts every process on the machine (other work"
        " included): where it is near the number of cores, a second relay process had no"
        " CPU to gain, and the per-CPU ratio is the one that tells what the relay does.",
        "",
    ]
