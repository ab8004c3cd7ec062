"""The benchmark scenarios, each measured on the relay and, where it applies, the references.

One :class:`Bench` holds the run's processes: a real redis-server, the relay (its own
process, ``benchmarks.relay_proc``) and the reference servers (``benchmarks.references``:
the floor, and optionally Node ``ws`` and the hypercorn baseline), each in its own
process. Every load scenario builds a list of connections (shoots are created and
archers joined over the relay's HTTP API), runs it through load worker processes against
the relay and then, unchanged, against each reference, reading each server's CPU time
around the same measurement window. The relay is driven through its public interface
only (HTTP and WebSocket), so whatever version of it is checked out is what is measured.
The capacity scenarios (CPU per write, the write-rate ramp) are in ``capacity.py``.

Definitions used in the results:

- *delivered message*: one write's update frame arriving at one subscriber (the writer's
  own connection included, as the relay sends an archer its own update). Other frames
  (acks, notices) are counted as frames but not as delivered messages: they are work
  the relay does per write, and it is charged to the delivered messages.
- *CPU per delivered message*: server process CPU time (user + system, all its threads)
  during the window, divided by delivered messages.
- *fan-out latency*: a delivered message's arrival time minus its write's send time,
  both ``time.monotonic_ns()`` on this machine.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import psutil
import trio

from relay.redis_server import RedisServer

from . import capacity, wire
from .durability import measure_append_cost
from .load import ROUND, ConnSpec
from .procs import Server, WorkerPool, python_module
from .progress import Progress
from .references import Skipped, make_reference
from .stats import merge_reports, summarize_latency

__all__ = ["Bench", "Config"]

#: Writes per second per writer connection, safely under the relay's 10/s limit.
MAX_WRITER_RATE: Final = 9.0
#: What the relay logs once it serves (``relay.server``): the storm's start-up ends there.
RELAY_SERVING: Final = "relay listening on"
HTTP_CONCURRENCY: Final = 16


def machine_busy_s() -> float:
    """CPU seconds all the machine's cores have been busy since boot, whoever used them
    (the server, the load generator, anything else running): a window where this grows
    by about the number of cores per second had no CPU to spare."""
    times = psutil.cpu_times()
    busy = times.user + times.system
    for extra in ("nice", "irq", "softirq"):  # Linux's other busy states (steal is not ours)
        busy += getattr(times, extra, 0.0)
    return float(busy)


@dataclass(frozen=True, slots=True)
class Config:
    """What to run; :meth:`quick` and :meth:`full` are the two presets."""

    subscribers: tuple[int, ...]
    duration_s: float
    shoot_rate: float = 20.0
    """Writes per second in the single-shoot fan-out runs."""
    writer_rate: float = 5.0
    """Writes per second per writer in those runs (so 20/s is four archers)."""
    throughput_subscribers: int = 100
    throughput_rate: float = 100.0
    """Writes per second for the throughput run (0 skips it)."""
    many_shoots: int = 100
    many_clients: int = 10
    many_rate: float = 0.2
    """Writes per second per shoot in the many-shoots run."""
    scaling_rate: float = 1.0
    """Writes per second per shoot in the scaling run (same shoots and clients as the
    many-shoots run): more than one relay process delivers, without swamping it."""
    churn_clients: int = 500
    """Sessions per round in the churn run (``churn.py``), in shoots of 20."""
    churn_rounds: int = 4
    """Rounds of sessions in the churn run (0 skips it)."""
    storm_clients: int = 500
    storm_per_shoot: int = 10
    storm_timeout_s: float = 60.0
    write_cost_archers: int = 20
    write_cost_arrows: int = 72
    """The shoot the CPU-per-write run writes into: this many archers, each with this
    many arrows shot (the size the write-cost goal is stated for)."""
    write_cost_rate: float = 50.0
    """Writes per second from the one connection of that run."""
    ramp_subscribers: int = 50
    ramp_rates: tuple[float, ...] = (250.0, 500.0, 1000.0, 1500.0, 2000.0)
    """Writes per second offered to one shoot, step by step, until p99 reaches the limit."""
    ramp_step_s: float = 3.0
    ramp_p99_ms: float = 50.0
    ramp_references: tuple[str, ...] = ("floor",)
    """References that climb the same ramp (what the machine and generator allow)."""
    workers: int = 2
    references: tuple[str, ...] = ("floor",)
    """Reference servers measured beside the relay (see ``references.py``)."""
    many_references: tuple[str, ...] = ("floor",)
    """References that take the many-shoots load too (their memory per connection)."""
    drain_s: float = 1.0
    """How long load workers keep reading after the last write of a window."""
    profile_dir: Path | None = None
    """Record the servers with py-spy (collapsed stacks) during every load window."""

    @classmethod
    def quick(cls) -> Config:
        return cls(
            subscribers=(100,),
            duration_s=2.0,
            throughput_rate=0.0,
            many_shoots=50,
            storm_clients=200,
            churn_rounds=0,
            ramp_rates=(250.0, 500.0, 1000.0),
            ramp_step_s=2.0,
            ramp_references=(),
            many_references=(),
            drain_s=0.5,
        )

    @classmethod
    def full(cls) -> Config:
        return cls(
            subscribers=(10, 25, 50, 100, 200, 500),
            duration_s=15.0,
            many_shoots=1000,
            storm_clients=5000,
            churn_clients=2000,
            churn_rounds=8,
            references=("floor", "node", "baseline"),
        )


@dataclass(slots=True)
class Bench:
    config: Config
    work_dir: Path
    progress: Progress
    redis: RedisServer | None = None
    relay: Server | None = None
    references: dict[str, Server] = field(default_factory=dict)
    """The references that started, in the order they are measured."""
    results: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    # -- processes -----------------------------------------------------------------------

    def start(self) -> None:
        self.redis = RedisServer(self.work_dir / "redis")
        self.redis.start()
        relay_dir = str(self.work_dir / "relay")
        self.relay = Server(
            "relay",
            python_module(
                "benchmarks.relay_proc", "--redis-url", self.redis.url, "--data-dir", relay_dir
            ),
            self.work_dir,
        )
        self.relay.spawn()
        skipped = self.results.setdefault("skipped_references", {})
        for name in self.config.references:  # they start while the relay does
            try:
                server = make_reference(name, self.work_dir)
                server.spawn()
            except Skipped as exc:
                skipped[name] = str(exc)
                self.notes.append(f"Reference {name} skipped: {exc}")
                continue
            self.references[name] = server
        self.results["relay_start_s"] = self.relay.wait_ready("/health")
        for name, server in list(self.references.items()):
            try:
                server.wait_ready("/")
            except RuntimeError as exc:
                server.stop()
                del self.references[name]
                skipped[name] = str(exc)
                self.notes.append(f"Reference {name} skipped: {exc}")

    def stop(self) -> None:
        for server in (self.relay, *self.references.values()):
            if server is not None:
                server.stop()
        if self.redis is not None:
            self.redis.close()

    # -- shoots --------------------------------------------------------------------------

    async def create_shoots(
        self, count: int, writers_per_shoot: int
    ) -> list[tuple[str, list[tuple[str, str]]]]:
        """Create shoots and join archers over HTTP: ``(code, [(archer, token)...])``."""
        assert self.relay is not None
        shoots: list[tuple[str, list[tuple[str, str]]]] = []
        limiter = trio.CapacityLimiter(HTTP_CONCURRENCY)
        async with httpx.AsyncClient(base_url=self.relay.http_url, timeout=30) as http:

            async def one() -> None:
                async with limiter:
                    created = await http.post(
                        "/api/shoots", json={"creator": "Bench", "title": "Benchmark"}
                    )
                    created.raise_for_status()
                    code = created.json()["code"]
                    archers = []
                    for index in range(writers_per_shoot):
                        joined = await http.post(
                            f"/api/shoots/{code}/join",
                            json={"name": f"Archer {index}", "round": ROUND},
                        )
                        joined.raise_for_status()
                        archers.append((joined.json()["archer_id"], joined.json()["token"]))
                    shoots.append((code, archers))

            async with trio.open_nursery() as nursery:
                for _ in range(count):
                    nursery.start_soon(one)
        return shoots

    async def score(self, code: str, archer: str, token: str, arrows: int) -> None:
        """One archer's register with ``arrows`` arrows, written and acknowledged."""
        assert self.relay is not None
        await wire.score(self.relay.port, code, archer, token, arrows)

    async def _shoot_conns(
        self, shoots: int, per_shoot: int, shoot_rate: float, writer_rate: float
    ) -> list[ConnSpec]:
        writers = max(1, math.ceil(shoot_rate / writer_rate)) if shoot_rate > 0 else 0
        writers = min(writers, per_shoot)
        rate = shoot_rate / writers if writers else 0.0
        conns: list[ConnSpec] = []
        for code, archers in await self.create_shoots(shoots, writers):
            offset = random.random() / shoot_rate if shoot_rate > 0 else 0.0
            for index, (archer, token) in enumerate(archers):
                phase = offset + index / shoot_rate
                conns.append(ConnSpec(code, archer, token, f"Archer {index}", rate, phase))
            conns += [ConnSpec(code) for _ in range(per_shoot - len(archers))]
        return conns

    # -- one measurement -----------------------------------------------------------------

    async def open_pool(
        self, server: Server, conns: list[ConnSpec], label: str
    ) -> tuple[WorkerPool, dict[str, Any]]:
        """Start load workers holding ``conns`` open to ``server``; how that went."""
        self.progress.step(f"{label}: connecting {len(conns)}")
        rss_before = server.rss()
        started = time.monotonic()
        pool, ready = await WorkerPool.start(
            "127.0.0.1",
            server.port,
            conns,
            self.config.workers,
            self.work_dir,
            drain_s=self.config.drain_s,
        )
        return pool, {
            "server": server.name,
            "connections": sum(r["connected"] for r in ready),
            "failed": sum(r["failed"] for r in ready),
            "connect_s": time.monotonic() - started,
            "rss_before": rss_before,
            "rss_connected": server.rss(),
        }

    async def window(
        self,
        server: Server,
        pool: WorkerPool,
        per_shoot: int,
        label: str,
        *,
        duration: float | None = None,
        scale: float = 1.0,
    ) -> dict[str, Any]:
        """One measurement on open connections: writers at ``scale`` times their rate."""
        duration = self.config.duration_s if duration is None else duration
        self.progress.label = f"{label}: writing for {duration:g} s"
        cpu_before, wall_before = server.cpu_s(), time.monotonic()
        load_before, busy_before = pool.cpu_s(), machine_busy_s()
        async with trio.open_nursery() as profiling:
            if self.config.profile_dir is not None:
                # Not cancelled with the ticker: py-spy writes its file only when it ends.
                profiling.start_soon(self._profile, server, duration, label)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.progress.tick_for, duration + 1.0)
                await pool.broadcast(f"go {duration} {scale}")
                reports = await pool.read_all("done")
                nursery.cancel_scope.cancel()
            cpu_s, wall_s = server.cpu_s() - cpu_before, time.monotonic() - wall_before
            load_cpu_s, busy_s = pool.cpu_s() - load_before, machine_busy_s() - busy_before
        merged = merge_reports(reports)
        delivered = merged["delivered_writes"]
        expected = merged["writes"] * per_shoot
        return {
            "writes": merged["writes"],
            "writes_per_s": merged["writes"] / duration,
            "delivered": delivered,
            "update_frames": merged["marked_frames"],
            "expected": expected,
            "delivered_ratio": delivered / expected if expected else math.nan,
            "delivered_per_s": delivered / duration,
            "frames": merged["frames"],
            "acks": merged["acks"],
            "rate_limited": merged["rate_limited"],
            "cpu_s": cpu_s,
            "wall_s": wall_s,
            "cpu_util": cpu_s / wall_s,
            "load_cpu_util": load_cpu_s / wall_s,
            "machine_cpu_util": busy_s / wall_s,
            "machine_cores": psutil.cpu_count() or 1,
            "cpu_us_per_msg": cpu_s / delivered * 1e6 if delivered else math.nan,
            "bytes_per_msg": merged["marked_bytes"] / delivered if delivered else math.nan,
            **summarize_latency(merged["latencies_us"]),
        }

    async def measure(
        self, server: Server, conns: list[ConnSpec], per_shoot: int, label: str
    ) -> dict[str, Any]:
        """Connect ``conns`` to ``server``, write for the configured time, and summarize."""
        pool, opened = await self.open_pool(server, conns, label)
        try:
            measured = await self.window(server, pool, per_shoot, label)
        finally:
            await pool.close()
        self.progress.finish_step()
        return {**opened, **measured}

    async def _profile(self, server: Server, duration: float, label: str) -> None:
        """py-spy's collapsed stacks of the server for the window (py-spy must be on PATH)."""
        assert self.config.profile_dir is not None
        self.config.profile_dir.mkdir(parents=True, exist_ok=True)
        name = label.replace(" ", "-").replace("/", "-")
        out = self.config.profile_dir / f"{name}.txt"
        command = ["py-spy", "record", "--pid", str(server.pid), "--duration"]
        command += [str(max(1, int(duration))), "--format", "raw", "--rate", "200"]
        await trio.run_process([*command, "--output", str(out)], capture_stdout=True, check=False)

    async def compare(
        self,
        conns: list[ConnSpec],
        per_shoot: int,
        label: str,
        references: tuple[str, ...] | None = None,
    ) -> dict[str, Any]:
        """The relay, then each started reference (all, or those named), on ``conns``."""
        assert self.relay is not None
        result = {"relay": await self.measure(self.relay, conns, per_shoot, f"{label} relay")}
        for name, server in self.references.items():
            if references is not None and name not in references:
                continue
            result[name] = await self.measure(server, conns, per_shoot, f"{label} {name}")
        return result

    # -- scenarios -----------------------------------------------------------------------

    async def fanout(self) -> None:
        cfg = self.config
        rows = []
        for subscribers in cfg.subscribers:
            conns = await self._shoot_conns(1, subscribers, cfg.shoot_rate, cfg.writer_rate)
            row = await self.compare(conns, subscribers, f"fan-out {subscribers}")
            row.update(subscribers=subscribers, shoots=1, rate=cfg.shoot_rate)
            rows.append(row)
        self.results["fanout"] = rows

    async def throughput(self) -> None:
        cfg = self.config
        if cfg.throughput_rate <= 0:
            return
        conns = await self._shoot_conns(
            1, cfg.throughput_subscribers, cfg.throughput_rate, MAX_WRITER_RATE
        )
        row = await self.compare(conns, cfg.throughput_subscribers, "throughput")
        row.update(subscribers=cfg.throughput_subscribers, shoots=1, rate=cfg.throughput_rate)
        self.results["throughput"] = row

    async def write_cost(self) -> None:
        """CPU per write, fan-out aside (``capacity.write_cost``)."""
        await capacity.write_cost(self)

    async def ramp(self) -> None:
        """The write rate one shoot holds (``capacity.ramp``)."""
        await capacity.ramp(self)

    async def many_shoots(self) -> None:
        """Many shoots at once; also connections held and memory per shoot/connection."""
        cfg = self.config
        assert self.relay is not None
        self.progress.step(f"many shoots: creating {cfg.many_shoots}")
        rss_empty = self.relay.rss()
        conns = await self._shoot_conns(
            cfg.many_shoots, cfg.many_clients, cfg.many_rate, MAX_WRITER_RATE
        )
        rss_shoots = self.relay.rss()
        row = await self.compare(conns, cfg.many_clients, "many shoots", cfg.many_references)
        relay = row["relay"]
        row.update(
            shoots=cfg.many_shoots,
            clients_per_shoot=cfg.many_clients,
            rate=cfg.many_rate,
            target_connections=len(conns),
            rss_empty=rss_empty,
            rss_shoots=rss_shoots,
            bytes_per_live_shoot=(rss_shoots - rss_empty) / cfg.many_shoots,
            bytes_per_connection=(relay["rss_connected"] - rss_shoots)
            / max(1, relay["connections"]),
        )
        row["reference_bytes_per_connection"] = {
            name: (row[name]["rss_connected"] - row[name]["rss_before"]) / row[name]["connections"]
            for name in self.references
            if name in row and row[name]["connections"]  # one that held none measured nothing
        }
        self.results["many"] = row

    async def storm(self) -> None:
        """Restart the relay under connected clients; time until all are back in sync."""
        cfg = self.config
        assert self.relay is not None
        per_shoot = cfg.storm_per_shoot
        shoots = max(1, cfg.storm_clients // per_shoot)
        self.progress.step(f"storm: creating {shoots} shoots")
        conns = await self._shoot_conns(shoots, per_shoot, 1.0, MAX_WRITER_RATE)
        self.progress.label = f"storm: connecting {len(conns)}"
        pool, ready = await WorkerPool.start(
            "127.0.0.1",
            self.relay.port,
            conns,
            cfg.workers,
            self.work_dir,
            replica=True,
        )
        try:
            connected = sum(r["connected"] for r in ready)
            # A few arrows per shoot first, so every replica holds some state.
            self.progress.label = "storm: scoring before the restart"
            await pool.broadcast("go 2")
            await pool.read_all("done")
            self.progress.label = f"storm: restarting the relay under {connected} clients"
            await pool.broadcast(f"storm {cfg.storm_timeout_s}")
            await pool.read_all("armed")
            killed_ns = time.monotonic_ns()
            await trio.to_thread.run_sync(self.relay.stop)
            stopped_ns = time.monotonic_ns()
            await trio.to_thread.run_sync(self.relay.start_until_logged, RELAY_SERVING)
            serving_ns = time.monotonic_ns()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.progress.tick_for, 10.0)
                reports = await pool.read_all("synced")
                nursery.cancel_scope.cancel()
            relay_cpu_s = self.relay.cpu_s()
        finally:
            await pool.close()
        self.progress.finish_step()
        synced = sorted(ns for r in reports for ns in r["synced_ns"])
        total_bytes = sum(r["bytes"] for r in reports)
        after_kill = [(ns - killed_ns) / 1e9 for ns in synced]
        after_serving = [(ns - serving_ns) / 1e9 for ns in synced]
        self.results["storm"] = {
            "clients": connected,
            "failed_to_connect": sum(r["failed"] for r in ready),
            "synced": len(synced),
            "unsynced": sum(r["unsynced"] for r in reports),
            "resets": sum(r["resets"] for r in reports),
            "attempts": sum(r["attempts"] for r in reports),
            "stop_s": (stopped_ns - killed_ns) / 1e9,
            "start_s": (serving_ns - stopped_ns) / 1e9,
            "all_synced_after_restart_s": max(after_kill) if after_kill else math.nan,
            "all_synced_after_serving_s": max(after_serving) if after_serving else math.nan,
            "median_after_restart_s": after_kill[len(after_kill) // 2] if after_kill else math.nan,
            "bytes_total": total_bytes,
            "bytes_per_client": total_bytes / max(1, len(synced)),
            "relay_cpu_s_start_and_catch_up": relay_cpu_s,
        }

    async def durability(self) -> None:
        """The cost of ``appendfsync always`` per store append (see ``durability.py``)."""
        self.progress.step("appendfsync always against everysec")
        self.results["durability"] = await trio.to_thread.run_sync(
            measure_append_cost, self.work_dir
        )

    async def wire_bytes(self) -> None:
        """Bytes one subscriber receives for a one-arrow update (``wire.wire_bytes``)."""
        await wire.wire_bytes(self)
