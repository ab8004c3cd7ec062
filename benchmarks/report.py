"""The results as Markdown tables, PNG plots and raw JSON, with where and how they were made."""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import select
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import psutil

from .churn import churn_markdown
from .goals import goals, ratio
from .scaling import scaling_markdown
from .stats import fmt as _f

__all__ = ["machine", "write_report"]

#: Published numbers from another project, for orientation (yhub, one writer and 100 observers).
YHUB_P50_MS: Final = 3.5
YHUB_P99_MS: Final = 7.4
YHUB_CPU_US: Final = 14.4

#: Every server a load row can hold, in the order the tables show them.
SERVERS: Final = ("relay", "floor", "node", "baseline")
COLORS: Final = {
    "relay": "tab:blue",
    "floor": "tab:green",
    "node": "tab:orange",
    "baseline": "tab:grey",
}

PACKAGES: Final = ("trio", "hypercorn", "wsproto", "pycrdt", "cbor2", "redis", "starlette")

#: The wake-up probe: this many sleeps of :data:`WAKE_SLEEP_S` (the gap between two
#: writes at the CPU-per-write scenario's 50 writes/s).
WAKE_PROBES: Final = 40
WAKE_SLEEP_S: Final = 0.02


def wake_cost_us() -> float:
    """The CPU time this machine charges a thread for one sleep of 20 ms in
    ``epoll_wait`` and the wake-up after it: median, in microseconds.

    Every server here sleeps like this between frames. On the virtual machines these
    benchmarks run on, the charge has been anywhere from tens of microseconds to a few
    hundred, and it grows with the sleep's length, so a server that waits more often per
    write (the relay waits for the client's frame and for Redis's answer; the floor only
    for the frame) pays it more often. The report gives it so runs on different hosts can
    be told apart.
    """
    costs = []
    with select.epoll() as epoll:
        for _ in range(WAKE_PROBES):
            begin = time.thread_time_ns()
            epoll.poll(WAKE_SLEEP_S)  # the sleep being measured, not synchronisation
            costs.append((time.thread_time_ns() - begin) / 1e3)
    return statistics.median(costs)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "nofile": f"{soft}/{hard}",
        "packages": versions,
        "wake_us": round(wake_cost_us(), 1),
    }


def _wake_line(m: dict[str, Any]) -> list[str]:
    if "wake_us" not in m:  # a report written before the probe existed
        return []
    return [
        f"- Waking: this machine charges a thread {m['wake_us']:g} µs of CPU for one 20 ms "
        "sleep in `epoll_wait` and the wake-up after it (median of "
        f"{WAKE_PROBES}). Every server pays it per wait; the relay waits twice per write "
        "(the client's frame, then Redis's answer), the floor once. Hosts where it is "
        "large show larger CPU per write for everyone, and the relay more."
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


LOAD_HEADER: Final = [
    "Server",
    "Connections",
    "Writes/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "Delivered msg/s",
    "Delivered / expected",
    "CPU µs / msg",
    "CPU use (cores)",
    "CPU / floor",
    "p99 / floor",
]


def _load_rows(label: str, row: dict[str, Any]) -> list[list[str]]:
    out = []
    for server in SERVERS:
        r = row.get(server)
        if r is None:
            continue
        out.append(
            [
                f"{label} {server}",
                _f(r["connections"]),
                _f(r["writes_per_s"], 1),
                _f(r["p50_ms"]),
                _f(r["p95_ms"]),
                _f(r["p99_ms"]),
                _f(r["max_ms"]),
                _f(r["delivered_per_s"], 0),
                _f(r["delivered_ratio"], 3),
                _f(r["cpu_us_per_msg"], 1),
                _f(r["cpu_util"]),
                "" if server == "floor" else _f(ratio(row, "cpu_us_per_msg", server)),
                "" if server == "floor" else _f(ratio(row, "p99_ms", server)),
            ]
        )
    return out


def _goals(results: dict[str, Any]) -> list[str]:
    rows = []
    for goal in goals(results):
        measured = goal["measured"]
        unit = goal["unit"] if goal["unit"] == "x" else f" {goal['unit']}"
        shown = "not measured" if measured is None else f"{_f(measured)}{unit}"
        if goal["detail"]:
            shown += f" ({goal['detail']})"
        rows.append([goal["name"], goal["target"], shown, goal["verdict"]])
    return _table(["Goal", "Target", "Measured", "Verdict"], rows)


def _cost_row(name: str, cost: dict[str, Any]) -> list[str]:
    return [
        name,
        _f(cost["writes"]),
        _f(cost["cpu_s"], 3),
        _f(cost["idle_cpu_per_s"] * 1e3, 1),
        _f(cost["cpu_ms_per_write_raw"], 3),
        _f(cost["cpu_ms_per_write"], 3),
        f"{_f(cost.get('loop_ms_per_write', math.nan), 3)} / "
        f"{_f(cost.get('threads_ms_per_write', math.nan), 3)}",
        _f(cost["p50_ms"]),
        _f(cost["p99_ms"]),
    ]


def _capacity(results: dict[str, Any]) -> list[str]:
    """The CPU-per-write and write-rate ramp sections."""
    lines: list[str] = []
    cost = results.get("write_cost")
    if cost:
        lines += [
            f"## CPU per write: one connection writing {cost['rate']:g}/s into a shoot of "
            f"{cost['archers']} archers x {cost['arrows_each']} arrows",
            "",
            *_table(
                [
                    "Server",
                    "Writes",
                    "CPU s",
                    "Idle CPU ms/s",
                    "CPU ms / write",
                    "... idle taken off",
                    "event loop / threads ms",
                    "p50 ms",
                    "p99 ms",
                ],
                [
                    _cost_row(name, measured)
                    for name, measured in (("relay", cost), ("floor", cost.get("floor")))
                    if measured is not None
                ],
            ),
            "The writer is the shoot's only subscriber, so this is the write itself (decode, "
            "merge, CRDT, Redis append, leaderboard, notices) plus one update frame and one "
            "ack. The idle relay's CPU is measured for 1 s just before, on the same "
            "connection. The raw CPU splits between the event loop's thread and the worker "
            "threads (Redis calls, projections) as shown. The floor gets the same writer and "
            "sends each write back, nothing else: what receiving a frame and sending one costs "
            "at this pace on this machine.",
            "",
        ]
        actor = cost.get("actor")
        if actor:
            lines += [
                f"The shoot's actor alone (in-process, `python -m benchmarks.write_cost`): "
                f"median {_f(actor['paced_median_ms'], 3)} ms, p99"
                f" {_f(actor['paced_p99_ms'], 3)} ms per write after"
                f" {_f(actor['pace_s'] * 1e3, 0)} ms idle ({actor['paced_writes']} writes);"
                f" back to back, caches warm: median {_f(actor['median_ms'], 3)} ms, p99"
                f" {_f(actor['p99_ms'], 3)} ms; the board and notices rebuilt from scratch"
                f" instead: median {_f(actor['scratch_median_ms'], 3)} ms.",
                "",
            ]
    ramp = results.get("ramp")
    if ramp:
        rows = []
        for server in SERVERS:
            climb = ramp.get(server)
            if not climb:
                continue
            for step in climb["steps"]:
                rows.append(
                    [
                        server,
                        _f(step["offered"], 0),
                        _f(step["writes_per_s"], 0),
                        _f(step["p50_ms"]),
                        _f(step["p99_ms"]),
                        _f(step["delivered_ratio"], 3),
                        _f(step["cpu_util"]),
                        "held" if step["held"] else f"missed: {step['miss']}",
                    ]
                )
        lines += [
            f"## Write-rate ramp: one shoot, {ramp['subscribers']} subscribers (every one "
            f"writing), {ramp['step_s']:g} s per step, held while p99 < "
            f"{ramp['p99_limit_ms']:g} ms",
            "",
            *_table(
                [
                    "Server",
                    "Offered writes/s",
                    "Sent writes/s",
                    "p50 ms",
                    "p99 ms",
                    "Delivered / expected",
                    "CPU use (cores)",
                    "Step",
                ],
                rows,
            ),
        ]
    return lines


def _markdown(results: dict[str, Any], info: dict[str, Any]) -> str:
    m = info["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    lines = [
        f"# fast-shoot benchmarks ({info['mode']})",
        "",
        f"- Date: {info['date']}",
        f"- Command: `{info['command']}`",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}; "
        f"Python {m['python']}; open files {m['nofile']}",
        f"- Packages: {packages}",
        *_wake_line(m),
        f"- Load: {info['workers']} load worker processes on the same machine; everything "
        "on 127.0.0.1. The relay and the reference servers are separate processes measured "
        "the same way, with the same load, in the same run.",
        f"- Run time: {info['seconds']:.0f} s",
        "",
        "Definitions: a *delivered message* is one write's update reaching one subscriber "
        "(the writer's own connection included). *CPU µs / msg* is the server process's "
        "CPU time (user + system, all threads) in the window divided by delivered messages; "
        "for the relay it includes everything a write costs (CRDT, Redis persistence, "
        "acks, leaderboard, notices). *Latency* is from the write leaving the archer's "
        "client to the update arriving at a subscriber (`time.monotonic_ns`, one clock on "
        "this machine). The *floor* is the smallest Python server doing the fan-out job "
        "(trio, sockets it owns, each message framed once, one non-blocking `send` per "
        "subscriber, a bounded queue only when the kernel's buffer is full); *node* is "
        "Node's `ws` library, `ws.send` per subscriber; *baseline* is hypercorn's trio "
        "worker with a raw ASGI app. Each relays a write frame to everyone in the shoot "
        "and does nothing else. *CPU / floor* and *p99 / floor* divide by the floor's "
        "numbers in the same table; absolute numbers on a shared machine move with its "
        "load, those ratios much less.",
        "",
        "## Goals",
        "",
        *_goals(results),
    ]
    if results.get("fanout"):
        rows = []
        for row in results["fanout"]:
            rows += _load_rows(f"{row['subscribers']} subs", row)
        lines += [
            f"## Fan-out latency: one shoot, {results['fanout'][0]['rate']:g} writes/s",
            "",
            *_table(LOAD_HEADER, rows),
            f"yhub (one writer, 100 observers): p50 {YHUB_P50_MS} ms, p99 {YHUB_P99_MS} ms, "
            f"{YHUB_CPU_US} µs server CPU per update per observer.",
            "",
        ]
    if results.get("throughput"):
        row = results["throughput"]
        lines += [
            f"## Throughput: one shoot, {row['subscribers']} subscribers, "
            f"{row['rate']:g} writes/s offered",
            "",
            *_table(LOAD_HEADER, _load_rows(f"{row['subscribers']} subs", row)),
        ]
    lines += _capacity(results)
    if results.get("many"):
        row = results["many"]
        references = row.get("reference_bytes_per_connection", {})
        label = f"{row['shoots']:,} x {row['clients_per_shoot']}"
        lines += [
            f"## Many shoots at once: {label} clients, {row['rate']:g} writes/s per shoot",
            "",
            *_table(LOAD_HEADER, _load_rows(label, row)),
            "## Connections and memory",
            "",
            *_table(
                [
                    "Connections held / tried",
                    "Failed",
                    "Connect time s",
                    "RSS per idle connection (relay)",
                    *(f"... ({name})" for name in references),
                    "RSS per live shoot (relay)",
                    "Relay RSS with all connected",
                ],
                [
                    [
                        f"{row['relay']['connections']:,} / {row['target_connections']:,}",
                        _f(row["relay"]["failed"]),
                        _f(row["relay"]["connect_s"], 1),
                        f"{_f(row['bytes_per_connection'] / 1024, 1)} KiB",
                        *(f"{_f(size / 1024, 1)} KiB" for size in references.values()),
                        f"{_f(row['bytes_per_live_shoot'] / 1024, 1)} KiB",
                        f"{_f(row['relay']['rss_connected'] / 2**20, 0)} MiB",
                    ]
                ],
            ),
        ]
    lines += churn_markdown(results)
    if results.get("storm"):
        s = results["storm"]
        lines += [
            "## Reconnect storm: relay restarted (SIGTERM, then a new process) under "
            f"{s['clients']:,} clients",
            "",
            *_table(
                [
                    "Clients",
                    "Old relay stopped s",
                    "New relay serving s",
                    "All in sync s after SIGTERM",
                    "... after serving",
                    "Median s after SIGTERM",
                    "Bytes to catch up (total)",
                    "Bytes per client",
                    "Never resynced",
                    "Resets",
                ],
                [
                    [
                        _f(s["clients"]),
                        _f(s["stop_s"]),
                        _f(s["start_s"]),
                        _f(s["all_synced_after_restart_s"]),
                        _f(s["all_synced_after_serving_s"]),
                        _f(s["median_after_restart_s"]),
                        _f(s["bytes_total"]),
                        _f(s["bytes_per_client"], 0),
                        _f(s["unsynced"]),
                        _f(s["resets"]),
                    ]
                ],
            ),
            "Bytes are everything the clients read from their sockets from the restart "
            "until back in sync: the close frame, the HTTP upgrade response and the welcome.",
            "",
        ]
    if results.get("wire"):
        w = results["wire"]
        lines += [
            f"## Bytes on the wire: one arrow in a shoot of {w['archers']} archers with "
            f"{w['arrows_each']} arrows each",
            "",
            *_table(
                ["What one subscriber receives", "Bytes"],
                [
                    ["Update frame (WebSocket framing + CBOR + Yjs)", _f(w["update_ws_bytes"])],
                    ["... of which CBOR message", _f(w["update_cbor_bytes"])],
                    ["... of which Yjs update", _f(w["update_yjs_bytes"])],
                    [f"Notice frames ({w['notice_frames']})", _f(w["notice_ws_bytes"])],
                    ["Total per subscriber", _f(w["per_subscriber_ws_bytes"])],
                    ["Whole shoot as a welcome frame", _f(w["whole_shoot_welcome_ws_bytes"])],
                    [
                        "Whole shoot as JSON (`GET /api/shoots/{code}`)",
                        _f(w["whole_shoot_json_bytes"]),
                    ],
                ],
            ),
            "TCP/IP headers (about 52 bytes per segment on loopback) come on top of every "
            "frame and are the same for any server.",
            "",
        ]
    if results.get("durability"):
        d = results["durability"]["median_us"]
        lines += [
            "## What `appendfsync always` costs (one fenced store append, median µs)",
            "",
            *_table(
                ["Updates per append", *d],
                [[n, *(_f(d[policy][n], 0) for policy in d)] for n in d["always"]],
            ),
            "The persister sends every waiting update in one append, so the fsync is paid "
            "once per batch, not per write.",
            "",
        ]
    lines += scaling_markdown(results)
    if info.get("plots"):
        lines += ["## Plots", ""]
        lines += [f"![{name}]({name})" for name in info["plots"]]
        lines.append("")
    if info.get("notes"):
        lines += ["## Notes", "", *[f"- {note}" for note in info["notes"]], ""]
    return "\n".join(lines)


def _plots(results: dict[str, Any], out: Path, prefix: str) -> list[str]:
    rows = results.get("fanout") or []
    if not rows:
        return []
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    subs = [r["subscribers"] for r in rows]
    names = []

    def plot(name: str, draw: Callable[[Any], None], ylabel: str, title: str) -> None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        draw(ax)
        ax.set_xlabel("subscribers in the shoot")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        names.append(name)

    drawn = [server for server in SERVERS if all(server in r for r in rows)]

    def latency(ax: Any) -> None:
        for server in drawn:
            for p, style in (("p50", "--"), ("p99", "-")):
                ys = [r[server][f"{p}_ms"] for r in rows]
                ax.plot(subs, ys, style, color=COLORS[server], marker="o", label=f"{server} {p}")
        ax.set_xscale("log")

    def cpu(ax: Any) -> None:
        for server in drawn:
            ys = [r[server]["cpu_us_per_msg"] for r in rows]
            ax.plot(subs, ys, "-", color=COLORS[server], marker="o", label=server)
        ax.set_xscale("log")

    rate = rows[0]["rate"]
    plot(
        f"{prefix}-latency.png",
        latency,
        "fan-out latency (ms)",
        f"Fan-out latency, one shoot, {rate:g} writes/s",
    )
    plot(
        f"{prefix}-cpu.png",
        cpu,
        "server CPU per delivered message (µs)",
        f"CPU per delivered message, {rate:g} writes/s",
    )
    return names


def _generator_notes(results: dict[str, Any]) -> list[str]:
    """Runs where the load generator could not keep its own schedule."""
    notes = []
    rows = [*results.get("fanout", []), results.get("throughput"), results.get("many")]
    for row in rows:
        if not row:
            continue
        offered = row["rate"] * row.get("shoots", 1)
        for server in SERVERS:
            r = row.get(server)
            if r is not None and r["writes_per_s"] < 0.9 * offered:
                notes.append(
                    f"{server}, {r['connections']:,} connections: the load workers sent "
                    f"{r['writes_per_s']:.0f} of {offered:g} writes/s; they (on the same "
                    "cores) were saturated, so latency there measures the generator too."
                )
    return notes


def write_report(results: dict[str, Any], info: dict[str, Any], out: Path) -> Path:
    """Write ``<mode>.md``, ``<mode>.json`` and the plots into ``out``; returns the .md."""
    out.mkdir(parents=True, exist_ok=True)
    prefix = str(info["mode"])
    notes = [*info.get("notes", []), *_generator_notes(results)]
    info = {**info, "notes": notes, "plots": _plots(results, out, prefix)}
    if results.get("fanout") and not info["plots"]:
        info.setdefault("notes", []).append(
            "Plots skipped: matplotlib is not installed (the `bench` extra)."
        )
    (out / f"{prefix}.json").write_text(
        json.dumps(
            {"info": info, "goals": goals(results), "results": results}, indent=1, default=str
        )
    )
    path = out / f"{prefix}.md"
    path.write_text(_markdown(results, info))
    return path
