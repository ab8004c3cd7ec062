"""The goals a run is judged by: each with its target, what was measured, and a verdict.

Speed goals are stated against the floor reference of the same run (``references.py``):
absolute numbers on a shared machine move about 3x with its load, ratios measured in one
run do not. Each goal is reported whether it was met, missed (by how much) or not
measured (and why), in the JSON report under ``goals`` and in the Markdown.
"""

from __future__ import annotations

import math
from typing import Any, Final

from .scaling import scaling_goals
from .stats import fmt

__all__ = [
    "ACTOR_WRITE_GOAL",
    "CPU_GOAL",
    "P99_GOAL",
    "RAMP_GOAL",
    "WRITE_GOAL",
    "closest_fanout",
    "goals",
    "ratio",
    "verdict",
]

GOAL_SUBSCRIBERS: Final = 100
GOAL_CPU_RATIO: Final = 2.0
GOAL_P99_RATIO: Final = 1.3
GOAL_WRITE_MS: Final = 0.3
RAMP_GOAL_WRITES_PER_S: Final = 1_000.0
GOAL_CONNECTIONS: Final = 10_000
GOAL_STORM_CLIENTS: Final = 5_000
GOAL_STORM_S: Final = 10.0
GOAL_BYTES: Final = 200
GOAL_KIB_PER_CONNECTION: Final = 30

CPU_GOAL: Final = "Relay CPU per delivered frame vs the floor, 100 subscribers"
P99_GOAL: Final = "Fan-out p99 vs the floor's p99, 100 subscribers, 20 writes/s"
WRITE_GOAL: Final = "Fixed CPU per write (one subscriber, 20 archers x 72 arrows)"
ACTOR_WRITE_GOAL: Final = (
    "CPU per write in the shoot's actor, before fan-out (20 archers x 72 arrows)"
)
RAMP_GOAL: Final = "Writes/s one shoot holds with 50 subscribers at p99 < 50 ms"


def ratio(row: dict[str, Any], key: str, server: str = "relay", ref: str = "floor") -> float:
    """``row[server][key] / row[ref][key]``, or ``nan`` when either is missing."""
    mine, theirs = row.get(server), row.get(ref)
    if not mine or not theirs or not theirs.get(key):
        return math.nan
    return float(mine[key] / theirs[key])


def verdict(measured: float, goal: float, *, lower_is_better: bool = True) -> str:
    if math.isnan(measured):
        return "not measured"
    if not lower_is_better and measured <= 0:
        return "missed (nothing held)"
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


def closest_fanout(results: dict[str, Any]) -> dict[str, Any] | None:
    """The fan-out row at 100 subscribers, else the size closest to it."""
    rows = results.get("fanout") or []
    if not rows:
        return None
    row: dict[str, Any] = min(
        rows, key=lambda r: abs(math.log(r["subscribers"] / GOAL_SUBSCRIBERS))
    )
    return row


def _at_size(row: dict[str, Any], text: str) -> str:
    if row["subscribers"] == GOAL_SUBSCRIBERS:
        return text
    return f"{text} at {row['subscribers']} subscribers (goal is for {GOAL_SUBSCRIBERS})"


def _fanout_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    row = closest_fanout(results)
    if row is None:
        return []
    relay, floor = row["relay"], row.get("floor", {})
    node = row.get("node")
    cpu = ratio(row, "cpu_us_per_msg")
    cpu_detail = (
        f"{fmt(relay['cpu_us_per_msg'], 1)} µs vs {fmt(floor.get('cpu_us_per_msg'), 1)} µs"
        f" per frame at {row['subscribers']} subscribers"
    )
    if node:
        cpu_detail += f"; Node ws {fmt(node['cpu_us_per_msg'], 1)} µs"
    p99 = ratio(row, "p99_ms")
    p99_detail = (
        f"p99 {fmt(relay['p99_ms'])} vs {fmt(floor.get('p99_ms'))} ms, p50 "
        f"{fmt(relay['p50_ms'])} vs {fmt(floor.get('p50_ms'))} ms "
        f"({fmt(ratio(row, 'p50_ms'))}x)"
    )
    return [
        _goal(
            CPU_GOAL,
            f"<= {GOAL_CPU_RATIO:g}x the floor",
            cpu,
            "x",
            _at_size(row, verdict(cpu, GOAL_CPU_RATIO)),
            cpu_detail,
        ),
        _goal(
            P99_GOAL,
            f"<= {GOAL_P99_RATIO:g}x the floor's p99",
            p99,
            "x",
            _at_size(row, verdict(p99, GOAL_P99_RATIO)),
            p99_detail,
        ),
    ]


def _write_goal(results: dict[str, Any]) -> list[dict[str, Any]]:
    cost = results.get("write_cost")
    if cost is None:
        return []
    ms = cost["cpu_ms_per_write"]
    text = verdict(ms, GOAL_WRITE_MS)
    if (cost["archers"], cost["arrows_each"]) != (20, 72):
        text += f" in a shoot of {cost['archers']} x {cost['arrows_each']}"
    return [
        _goal(
            WRITE_GOAL,
            f"<= {GOAL_WRITE_MS:g} ms",
            ms,
            "ms",
            text,
            f"{cost['writes']} writes at {cost['rate']:g}/s; {fmt(cost['cpu_ms_per_write_raw'])} ms"
            f" before taking off the idle relay's {fmt(cost['idle_cpu_per_s'] * 1e3, 1)} ms/s"
            f"; event loop {fmt(cost.get('loop_ms_per_write'))} ms, worker threads"
            f" {fmt(cost.get('threads_ms_per_write'))} ms{_floor_write(cost)}",
        ),
        *_actor_write_goal(cost.get("actor")),
    ]


def _floor_write(cost: dict[str, Any]) -> str:
    floor = cost.get("floor")
    if floor is None:
        return ""
    ms = floor["cpu_ms_per_write"]
    return (
        f"; the floor, sending each write back and nothing else: {fmt(ms)} ms per write "
        f"(the relay {fmt(cost['cpu_ms_per_write'] / ms if ms else math.nan)}x that)"
    )


def _actor_write_goal(actor: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The same target for the actor's share alone (the issue's "before fan-out": the
    merge, the Yjs write, the board and the notices), measured in-process, on writes that
    come after the gap of a live shoot (:mod:`benchmarks.write_cost`)."""
    if actor is None:
        return []
    ms = actor["paced_median_ms"]
    return [
        _goal(
            ACTOR_WRITE_GOAL,
            f"<= {GOAL_WRITE_MS:g} ms",
            ms,
            "ms",
            verdict(ms, GOAL_WRITE_MS),
            f"median of {actor['paced_writes']} writes into a"
            f" {actor['archers']} x {actor['arrows']} shoot, each after"
            f" {fmt(actor['pace_s'] * 1e3, 0)} ms idle, in-process"
            f" (benchmarks.write_cost); back to back, caches warm: median"
            f" {fmt(actor['median_ms'])} ms, p99 {fmt(actor['p99_ms'])} ms; the board and"
            f" notices rebuilt from scratch instead: {fmt(actor['scratch_median_ms'])} ms",
        )
    ]


def _ramp_goal(results: dict[str, Any]) -> list[dict[str, Any]]:
    ramp = results.get("ramp")
    if ramp is None:
        return []
    relay = ramp["relay"]
    held = float(relay["held_writes_per_s"])
    text = verdict(held, RAMP_GOAL_WRITES_PER_S, lower_is_better=False)
    if ramp["subscribers"] != 50 or ramp["p99_limit_ms"] != 50:
        text += f" with {ramp['subscribers']} subscribers, p99 < {ramp['p99_limit_ms']:g} ms"
    if max(ramp["rates"], default=0) < RAMP_GOAL_WRITES_PER_S and text != "met":
        text = f"not tried at scale (steps up to {max(ramp['rates'], default=0):g} writes/s)"
    detail = f"stopped {relay['stopped']}"
    floor = ramp.get("floor")
    if floor is not None:
        floor_held = floor["held_writes_per_s"]
        detail += f"; the floor held {fmt(floor_held, 0)} writes/s"
        if floor_held < RAMP_GOAL_WRITES_PER_S and text != "met":
            text += (
                "; the floor held less than the goal too: here the machine and the load"
                " generator are the limit, not only the relay"
            )
    return [
        _goal(
            RAMP_GOAL, f">= {RAMP_GOAL_WRITES_PER_S:,.0f} writes/s", held, "writes/s", text, detail
        )
    ]


def _many_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    many = results.get("many")
    if many is None:
        return []
    held = many["relay"]["connections"]
    rows = [
        _goal(
            "Concurrent connections in one relay process",
            f">= {GOAL_CONNECTIONS:,}",
            float(held),
            "connections",
            verdict(held, GOAL_CONNECTIONS, lower_is_better=False)
            if many["target_connections"] >= GOAL_CONNECTIONS
            else f"not tried at scale ({many['target_connections']:,} asked)",
            f"of {many['target_connections']:,} tried",
        )
    ]
    per_connection = many.get("bytes_per_connection")
    if per_connection is not None:
        kib = per_connection / 1024
        references = many.get("reference_bytes_per_connection", {})
        rows.append(
            _goal(
                "Memory per idle connection (RSS growth / connections)",
                f"<= {GOAL_KIB_PER_CONNECTION} KiB",
                kib,
                "KiB",
                verdict(kib, GOAL_KIB_PER_CONNECTION),
                ", ".join(f"{name} {fmt(size / 1024, 1)} KiB" for name, size in references.items()),
            )
        )
    return rows


def _storm_goal(results: dict[str, Any]) -> list[dict[str, Any]]:
    storm = results.get("storm")
    if storm is None:
        return []
    seconds = storm["all_synced_after_restart_s"]
    text = verdict(seconds, GOAL_STORM_S)
    if storm["clients"] < GOAL_STORM_CLIENTS:
        text = f"{text} at {storm['clients']:,} clients (goal is for {GOAL_STORM_CLIENTS:,})"
    if storm["unsynced"]:
        text += f"; {storm['unsynced']} never resynced"
    return [
        _goal(
            "Clients back in sync after a relay restart",
            f"{GOAL_STORM_CLIENTS:,} within {GOAL_STORM_S:g} s",
            seconds,
            "s",
            text,
            f"{storm['synced']:,} clients, counted from SIGTERM",
        )
    ]


def _wire_goal(results: dict[str, Any]) -> list[dict[str, Any]]:
    wire = results.get("wire")
    if wire is None:
        return []
    measured = float(wire["per_subscriber_ws_bytes"])
    return [
        _goal(
            "Bytes per subscriber for a one-arrow update",
            f"<= {GOAL_BYTES} B",
            measured,
            "B",
            verdict(measured, GOAL_BYTES),
            f"update {wire['update_ws_bytes']} B + notices {wire['notice_ws_bytes']} B",
        )
    ]


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every goal this run measured, with its target and verdict (``goals`` in the JSON)."""
    return [
        *_fanout_goals(results),
        *_write_goal(results),
        *_ramp_goal(results),
        *_many_goals(results),
        *_storm_goal(results),
        *_wire_goal(results),
        *scaling_goals(results),
    ]
