"""Counters and histograms for ``/metrics`` (Prometheus text format) and ``/health``.

A handful of numbers, kept by hand: the relay runs on one thread, so plain integers are
safe and cheaper than a metrics library. Nothing here names a shoot or its code.

Besides the relay's own numbers, the process's garbage collector: how many objects are
frozen out of its sight (:mod:`relay.collector`), and its collections and what they freed
per generation. A frozen object that dies in a reference cycle waits there for the next
thaw, so a frozen count that keeps growing while the connections and shoots do not is
garbage held, and worth a look.
"""

from __future__ import annotations

import gc
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Final

__all__ = ["Histogram", "Metrics"]

LATENCY_BUCKETS_S: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


@dataclass(slots=True)
class Histogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS_S
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def render(self, name: str, help_text: str) -> list[str]:
        lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        cumulative = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            cumulative += count
            lines.append(f'{name}_bucket{{le="{bound}"}} {cumulative}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum {self.total:.6f}")
        lines.append(f"{name}_count {self.count}")
        return lines


@dataclass(slots=True)
class Metrics:
    connections: int = 0
    live_shoots: int = 0
    followed_shoots: int = 0
    writes_forwarded: int = 0
    takeovers: int = 0
    websockets_passed: int = 0
    websockets_taken: int = 0
    websockets_not_passed: int = 0
    writes_applied: int = 0
    writes_superseded: int = 0
    writes_rejected: int = 0
    frames_fanned_out: int = 0
    resyncs: int = 0
    errors: int = 0
    actor_crashes: int = 0
    shoots_unreadable: int = 0
    redis_failures: int = 0
    redis_degraded_shoots: int = 0
    unloads_deferred: int = 0
    fanout_latency: Histogram = field(default_factory=Histogram)
    redis_latency: Histogram = field(default_factory=Histogram)

    def render(self) -> str:
        gauges = {
            "fastshoot_connections": ("WebSocket connections open", self.connections),
            "fastshoot_live_shoots": ("Shoots loaded in memory", self.live_shoots),
            "fastshoot_followed_shoots": (
                "Shoots served here while another relay owns them",
                self.followed_shoots,
            ),
            "fastshoot_redis_degraded_shoots": (
                "Shoots with writes waiting for Redis",
                self.redis_degraded_shoots,
            ),
        }
        counters = {
            "fastshoot_writes_applied_total": ("Writes that won", self.writes_applied),
            "fastshoot_writes_forwarded_total": (
                "Writes forwarded to the owning relay",
                self.writes_forwarded,
            ),
            "fastshoot_takeovers_total": (
                "Shoots this relay took over from a follower",
                self.takeovers,
            ),
            "fastshoot_websockets_passed_total": (
                "WebSockets passed to the sibling worker owning their shoot",
                self.websockets_passed,
            ),
            "fastshoot_websockets_taken_total": (
                "WebSockets a sibling worker passed here, as this worker owns their shoot",
                self.websockets_taken,
            ),
            "fastshoot_websockets_not_passed_total": (
                "WebSockets served here although a sibling worker owns their shoot (it or "
                "Redis did not answer in time)",
                self.websockets_not_passed,
            ),
            "fastshoot_writes_superseded_total": (
                "Writes a newer one beat",
                self.writes_superseded,
            ),
            "fastshoot_writes_rejected_total": ("Writes refused as invalid", self.writes_rejected),
            "fastshoot_frames_fanned_out_total": ("Update frames queued", self.frames_fanned_out),
            "fastshoot_resyncs_total": ("Slow subscribers resynced", self.resyncs),
            "fastshoot_errors_total": ("Error messages sent to clients", self.errors),
            "fastshoot_actor_crashes_total": ("Shoot actors restarted", self.actor_crashes),
            "fastshoot_shoots_unreadable_total": (
                "Shoot loads refused: data in Redis that cannot be decoded",
                self.shoots_unreadable,
            ),
            "fastshoot_redis_failures_total": ("Failed Redis calls", self.redis_failures),
            "fastshoot_unloads_deferred_total": (
                "Idle shoots kept loaded because Redis lacked some of their writes",
                self.unloads_deferred,
            ),
        }
        lines: list[str] = []
        for name, (help_text, value) in gauges.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
        for name, (help_text, value) in counters.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {value}"]
        lines += self.fanout_latency.render(
            "fastshoot_fanout_seconds", "Time from a write's arrival to its update being queued"
        )
        lines += self.redis_latency.render("fastshoot_redis_seconds", "Redis batch round trips")
        lines += _collector_lines()
        return "\n".join(lines) + "\n"


def _collector_lines() -> list[str]:
    """The process's garbage collector, as ``gc`` counts it."""
    frozen = "fastshoot_gc_frozen_objects"
    lines = [
        f"# HELP {frozen} Objects frozen out of the garbage collector's sight",
        f"# TYPE {frozen} gauge",
        f"{frozen} {gc.get_freeze_count()}",
    ]
    stats = gc.get_stats()
    for name, key, help_text in (
        ("fastshoot_gc_collections_total", "collections", "Garbage collections"),
        ("fastshoot_gc_collected_total", "collected", "Objects garbage collections freed"),
    ):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        lines += [f'{name}{{generation="{n}"}} {each[key]}' for n, each in enumerate(stats)]
    return lines
