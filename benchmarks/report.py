"""The results as Markdown tables, PNG plots and raw JSON, with where and how they were made."""

from __future__ import annotations

import json
import math
import os
import platform
import resource
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import psutil

from .scaling import scaling_goals, scaling_markdown

__all__ = ["goals", "machine", "write_report"]

#: Published numbers the issue asks us to beat (yhub, one writer and 100 observers).
YHUB_P50_MS: Final = 3.5
YHUB_P99_MS: Final = 7.4
YHUB_CPU_US: Final = 14.4

GOAL_P99_MS: Final = 5.0
GOAL_CPU_RATIO: Final = 1.25
GOAL_CONNECTIONS: Final = 10_000
GOAL_STORM_CLIENTS: Final = 5_000
GOAL_STORM_S: Final = 10.0
GOAL_BYTES: Final = 200
GOAL_KIB_PER_CONNECTION: Final = 30

PACKAGES: Final = ("trio", "hypercorn", "wsproto", "pycrdt", "cbor2", "redis", "starlette")


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
    }


def _f(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ratio(row: dict[str, Any]) -> float:
    relay, base = row.get("relay"), row.get("baseline")
    if not relay or not base or not base["cpu_us_per_msg"]:
        return math.nan
    return float(relay["cpu_us_per_msg"] / base["cpu_us_per_msg"])


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
    "Relay / baseline CPU",
]


def _load_rows(label: str, row: dict[str, Any]) -> list[list[str]]:
    out = []
    for server in ("relay", "baseline"):
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
                _f(_ratio(row)) if server == "relay" else "",
            ]
        )
    return out


def _verdict(measured: float, goal: float, *, lower_is_better: bool = True) -> str:
    if math.isnan(measured):
        return "not measured"
    met = measured <= goal if lower_is_better else measured >= goal
    if met:
        return "met"
    factor = measured / goal if lower_is_better else goal / max(measured, 1e-9)
    return f"missed ({factor:.2f}x the goal)"


def _goal(
    name: str, target: str, measured: float, unit: str, verdict: str, detail: str = ""
) -> dict[str, Any]:
    """One goal as the JSON report keeps it (and the Markdown table shows it)."""
    return {
        "name": name,
        "target": target,
        "measured": None if math.isnan(measured) else measured,
        "unit": unit,
        "verdict": verdict,
        "detail": detail,
    }


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every goal this run measured, with its target and verdict (``goals`` in the JSON)."""
    rows = []
    fanout = {r["subscribers"]: r for r in results.get("fanout", [])}
    at100 = fanout.get(100)
    if at100 is not None:
        p99 = at100["relay"]["p99_ms"]
        rows.append(
            _goal(
                "Fan-out p99, 100 subscribers, 20 writes/s",
                f"<= {GOAL_P99_MS} ms (yhub: {YHUB_P99_MS} ms)",
                p99,
                "ms",
                _verdict(p99, GOAL_P99_MS),
                f"p50 {_f(at100['relay']['p50_ms'])} ms",
            )
        )
        ratio = _ratio(at100)
        rows.append(
            _goal(
                "Relay CPU per delivered message vs baseline, 100 subscribers",
                f"<= {GOAL_CPU_RATIO}x (yhub: {YHUB_CPU_US} µs)",
                ratio,
                "x",
                _verdict(ratio, GOAL_CPU_RATIO),
                f"{_f(at100['relay']['cpu_us_per_msg'], 1)} µs vs "
                f"{_f(at100.get('baseline', {}).get('cpu_us_per_msg'), 1)} µs",
            )
        )
    many = results.get("many")
    if many is not None:
        held = many["relay"]["connections"]
        rows.append(
            _goal(
                "Concurrent connections in one relay process",
                f">= {GOAL_CONNECTIONS:,}",
                float(held),
                "connections",
                _verdict(held, GOAL_CONNECTIONS, lower_is_better=False)
                if many["target_connections"] >= GOAL_CONNECTIONS
                else f"not tried at scale ({many['target_connections']:,} asked)",
                f"of {many['target_connections']:,} tried",
            )
        )
        per_connection = many.get("bytes_per_connection")
        if per_connection is not None:
            kib = per_connection / 1024
            rows.append(
                _goal(
                    "Memory per idle connection (RSS growth / connections)",
                    f"<= {GOAL_KIB_PER_CONNECTION} KiB",
                    kib,
                    "KiB",
                    _verdict(kib, GOAL_KIB_PER_CONNECTION),
                    f"baseline {_f(many.get('baseline_bytes_per_connection', math.nan) / 1024, 1)}"
                    " KiB",
                )
            )
    storm = results.get("storm")
    if storm is not None:
        seconds = storm["all_synced_after_restart_s"]
        verdict = _verdict(seconds, GOAL_STORM_S)
        if storm["clients"] < GOAL_STORM_CLIENTS:
            verdict = (
                f"{verdict} at {storm['clients']:,} clients (goal is for {GOAL_STORM_CLIENTS:,})"
            )
        if storm["unsynced"]:
            verdict += f"; {storm['unsynced']} never resynced"
        rows.append(
            _goal(
                "Clients back in sync after a relay restart",
                f"{GOAL_STORM_CLIENTS:,} within {GOAL_STORM_S:g} s",
                seconds,
                "s",
                verdict,
                f"{storm['synced']:,} clients, counted from SIGTERM",
            )
        )
    wire = results.get("wire")
    if wire is not None:
        measured = wire["per_subscriber_ws_bytes"]
        rows.append(
            _goal(
                "Bytes per subscriber for a one-arrow update",
                f"<= {GOAL_BYTES} B",
                float(measured),
                "B",
                _verdict(float(measured), GOAL_BYTES),
                f"update {wire['update_ws_bytes']} B + notices {wire['notice_ws_bytes']} B",
            )
        )
    return rows + scaling_goals(results)


def _goals(results: dict[str, Any]) -> list[str]:
    rows = []
    for goal in goals(results):
        measured = goal["measured"]
        shown = "not measured" if measured is None else f"{_f(measured)} {goal['unit']}"
        if goal["detail"]:
            shown += f" ({goal['detail']})"
        rows.append([goal["name"], goal["target"], shown, goal["verdict"]])
    return _table(["Goal", "Target", "Measured", "Verdict"], rows)


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
        f"- Load: {info['workers']} load worker processes on the same machine; everything "
        "on 127.0.0.1. Relay and baseline are separate processes measured the same way in "
        "the same run.",
        f"- Run time: {info['seconds']:.0f} s",
        "",
        "Definitions: a *delivered message* is one write's update reaching one subscriber "
        "(the writer's own connection included). *CPU µs / msg* is the server process's "
        "CPU time (user + system, all threads) in the window divided by delivered messages; "
        "for the relay it includes everything a write costs (CRDT, Redis persistence, "
        "acks, leaderboard, notices). *Latency* is from the write leaving the archer's "
        "client to the update arriving at a subscriber (`time.monotonic_ns`, one clock on "
        "this machine). The baseline is a bare broadcast server on the relay's server "
        "stack (hypercorn trio worker, raw ASGI, same settings).",
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
    if results.get("many"):
        row = results["many"]
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
                    "RSS per idle connection (baseline)",
                    "RSS per live shoot (relay)",
                    "Relay RSS with all connected",
                ],
                [
                    [
                        f"{row['relay']['connections']:,} / {row['target_connections']:,}",
                        _f(row["relay"]["failed"]),
                        _f(row["relay"]["connect_s"], 1),
                        f"{_f(row['bytes_per_connection'] / 1024, 1)} KiB",
                        f"{_f(row.get('baseline_bytes_per_connection', math.nan) / 1024, 1)} KiB",
                        f"{_f(row['bytes_per_live_shoot'] / 1024, 1)} KiB",
                        f"{_f(row['relay']['rss_connected'] / 2**20, 0)} MiB",
                    ]
                ],
            ),
        ]
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
                    "New relay listening s",
                    "All in sync s after SIGTERM",
                    "... after listening",
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
                        _f(s["all_synced_after_listening_s"]),
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

    def latency(ax: Any) -> None:
        for server, style in (("relay", "-"), ("baseline", "--")):
            if all(server in r for r in rows):
                for p, marker in (("p50", "o"), ("p95", "s"), ("p99", "^")):
                    ys = [r[server][f"{p}_ms"] for r in rows]
                    ax.plot(subs, ys, style, marker=marker, label=f"{server} {p}")
        ax.axhline(GOAL_P99_MS, color="grey", linestyle=":", label="p99 goal")

    def cpu(ax: Any) -> None:
        for server, style in (("relay", "-"), ("baseline", "--")):
            if all(server in r for r in rows):
                ys = [r[server]["cpu_us_per_msg"] for r in rows]
                ax.plot(subs, ys, style, marker="o", label=server)
        ax.axhline(YHUB_CPU_US, color="grey", linestyle=":", label="yhub")

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
        for server in ("relay", "baseline"):
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
