"""A load worker: one process holding a share of the benchmark's simulated clients.

Theory of operation
-------------------
The orchestrator (:mod:`benchmarks.run`) starts several of these so that the generator is
not the bottleneck, hands each a plan (a JSON file: the server, and one entry per
connection: shoot, archer credentials, write rate), and then drives them with one-line
commands on stdin; every answer is one line on stdout.

- On start the worker opens its connections (a bounded number at a time), sends each
  one's ``hello`` and waits for the first frame (``welcome``), then prints
  ``ready {"connected": n, "failed": m, ...}``. Each connection reads from the moment it
  is open, as a real client does: the relay drops a connection that leaves its pings
  unanswered, and opening thousands takes longer than that allows.
- ``go <seconds> [scale]``: writers score at their rate (times ``scale``, 1 by default:
  the capacity ramp raises it step by step on the same connections) for that long,
  everyone keeps reading; after a short drain it prints ``done {stats}`` (latency
  samples, frames and bytes, writes sent) and the connections stay open for the next
  command. No garbage collection runs meanwhile (:func:`no_collections`): the worker's
  own pauses would be counted as the server's latency.
- ``storm <seconds>``: arm the reconnect storm; prints ``armed``. When the orchestrator
  restarts the server, every client reconnects with jittered backoff, sending its
  replica's state vector; when all are back (or time is up) the worker prints
  ``synced {stats}``.
- ``quit``: close everything and exit.

Latency: a writer puts ``time.monotonic_ns()`` (one clock for every process on Linux)
into its write's stamp as the device id, ``bench.<ns>.``, taken just before the frame is
sent. The relay copies the stamp into the document, so the id travels inside the Yjs
update to every subscriber (and inside the echoed frame from the baseline); a reader finds
it with one regular-expression search, no decoding, and records ``now - ns``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import random
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import trio

from sync.clock import Stamp
from sync.codec import decode_server, encode
from sync.document import ShootDocument
from sync.models import ArcherState
from sync.protocol import Hello, Role, Update, Welcome, Write
from sync.register import Register
from sync.rounds import Arrow, get_round

from .limits import raise_fd_limit
from .wsclient import ConnectionClosed, WsClient, connect

__all__ = ["ROUND", "ConnSpec", "Plan", "main", "no_collections", "ws_overhead"]

#: The round every benchmark archer shoots (144 arrows).
ROUND: Final = "wa1440_90"
MARK: Final = re.compile(rb"bench\.(\d+)\.")
#: CBOR for ``"type": "update"`` (relay) and ``"type": "write"`` (the baseline's echo).
UPDATE_TAG: Final = b"dtypefupdate"
WRITE_TAG: Final = b"dtypeewrite"
ACK_TAG: Final = b"dtypecack"
RATE_LIMITED: Final = b"rate_limited"
CONNECT_ATTEMPTS: Final = 5
STORM_BACKOFF_MIN_S: Final = 0.05
STORM_BACKOFF_MAX_S: Final = 1.0
#: Arrows the writers cycle through; every one is valid at every position of the round.
#: What a connection attempt may end with, short of a bug: retried.
CONNECT_ERRORS: Final = (
    OSError,
    ConnectionClosed,
    trio.TooSlowError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
)
ARROW_CYCLE: Final[tuple[Arrow, ...]] = ("X", 10, 9, 9, 8, 7)


def ws_overhead(payload_len: int) -> int:
    """Bytes of WebSocket header in front of an unmasked server frame."""
    return 2 if payload_len < 126 else 4 if payload_len < 65536 else 10


@dataclass(frozen=True, slots=True)
class ConnSpec:
    shoot: str
    archer: str | None = None
    token: str | None = None
    name: str = "Bench"
    rate: float = 0.0
    """Writes per second (0 for a viewer)."""
    phase_s: float = 0.0
    """Offset of this writer's first write, so writers of a shoot interleave."""
    arrows_before: int = 0
    """Arrows the archer has already shot: its writes go on from there."""


@dataclass(frozen=True, slots=True)
class Plan:
    host: str
    port: int
    conns: list[ConnSpec]
    round: str = ROUND
    connect_concurrency: int = 64
    connect_timeout_s: float = 60.0
    replica: bool = False
    """Keep a Yjs replica per client (the reconnect storm needs its state vector)."""
    drain_s: float = 1.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        conns = [ConnSpec(**c) for c in data.pop("conns")]
        return cls(conns=conns, **data)


@dataclass(slots=True)
class Stats:
    latencies_us: list[int] = field(default_factory=list)
    delivered_writes: int = 0
    """Writes found in update frames (a frame may carry several)."""
    marked_frames: int = 0
    marked_bytes: int = 0
    marked_payload_bytes: int = 0
    frames: int = 0
    bytes: int = 0
    acks: int = 0
    rate_limited: int = 0
    writes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "latencies_us": self.latencies_us,
            "delivered_writes": self.delivered_writes,
            "marked_frames": self.marked_frames,
            "marked_bytes": self.marked_bytes,
            "marked_payload_bytes": self.marked_payload_bytes,
            "frames": self.frames,
            "bytes": self.bytes,
            "acks": self.acks,
            "rate_limited": self.rate_limited,
            "writes": self.writes,
        }


@dataclass(slots=True)
class Client:
    spec: ConnSpec
    ws: WsClient | None = None
    replica: ShootDocument | None = None
    storm_bytes: int = 0
    bytes_at_arm: int = 0
    synced_ns: int | None = None
    attempts: int = 0
    reset: bool = False


class Worker:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.stats = Stats()
        self.measuring = False
        self.clients = [Client(spec) for spec in plan.conns]
        self.round = get_round(plan.round)
        self.storm_armed = False
        self.storm_deadline_ns = 0
        self.storm_done = trio.Event()
        self.storm_pending = 0

    # -- connections ---------------------------------------------------------------------

    async def _open(self, client: Client) -> None:
        """Connect, say hello, and wait for the first frame (the welcome)."""
        spec = client.spec
        # The shoot in the URL, as the shipped clients send it (several workers route by it).
        ws = await connect(self.plan.host, self.plan.port, f"/ws?code={spec.shoot}")
        try:
            sv = client.replica.state_vector() if client.replica is not None else b"\x00"
            role: Role = "archer" if spec.archer else "viewer"
            await ws.send(encode(Hello(spec.shoot, role, sv, spec.archer, spec.token)))
            first = await ws.receive()
        except BaseException:
            await ws.aclose()
            raise
        if client.replica is not None:
            message = decode_server(first)
            if not isinstance(message, Welcome):
                await ws.aclose()
                raise OSError(f"expected welcome, got {type(message).__name__}")
            if message.reset:
                client.reset = True
                client.replica = ShootDocument()
            client.replica.apply_update(message.update)
        client.ws = ws

    async def connect_all(self, readers: trio.Nursery) -> tuple[int, int]:
        """Open every connection; each one's reader starts in ``readers`` once it is open."""
        limiter = trio.CapacityLimiter(self.plan.connect_concurrency)
        failed = 0

        async def one(client: Client) -> None:
            nonlocal failed
            async with limiter:
                for attempt in range(CONNECT_ATTEMPTS):
                    try:
                        with trio.fail_after(self.plan.connect_timeout_s):
                            await self._open(client)
                        readers.start_soon(self.read_loop, client)
                        return
                    except CONNECT_ERRORS:
                        await trio.sleep(0.1 * 2**attempt)  # backoff before a retry
            failed += 1

        if self.plan.replica:
            for client in self.clients:
                client.replica = ShootDocument()
        async with trio.open_nursery() as nursery:
            for client in self.clients:
                nursery.start_soon(one, client)
        return len(self.clients) - failed, failed

    # -- reading -------------------------------------------------------------------------

    def _record(self, data: bytes, now_ns: int) -> None:
        stats = self.stats
        size = len(data) + ws_overhead(len(data))
        stats.frames += 1
        stats.bytes += size
        if UPDATE_TAG in data or WRITE_TAG in data:
            # A busy relay sends a run of queued writes as one merged update: each write
            # in the frame is a delivery, with its own latency.
            marks = [int(ns) for ns in MARK.findall(data)]
            if marks:
                stats.latencies_us.extend((now_ns - ns) // 1000 for ns in marks)
                stats.delivered_writes += len(marks)
                stats.marked_frames += 1
                stats.marked_bytes += size
                stats.marked_payload_bytes += len(data)
        elif ACK_TAG in data:
            stats.acks += 1
        elif RATE_LIMITED in data:
            stats.rate_limited += 1

    async def read_loop(self, client: Client) -> None:
        while True:
            ws = client.ws
            if ws is None:
                return
            try:
                data = await ws.receive()
            except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
                if not self.storm_armed:
                    client.ws = None
                    return
                client.storm_bytes += ws.bytes_received - client.bytes_at_arm
                await self._reconnect(client)
                continue
            now = time.monotonic_ns()
            if self.measuring:
                self._record(data, now)
            if client.replica is not None and UPDATE_TAG in data:
                message = decode_server(data)
                if isinstance(message, Update):
                    client.replica.apply_update(message.update)

    async def _reconnect(self, client: Client) -> None:
        client.ws = None
        delay = STORM_BACKOFF_MIN_S
        while time.monotonic_ns() < self.storm_deadline_ns:
            await trio.sleep(delay * random.uniform(0.5, 1.5))  # jittered backoff
            delay = min(delay * 2, STORM_BACKOFF_MAX_S)
            client.attempts += 1
            try:
                with trio.fail_after(10):
                    await self._open(client)
            except CONNECT_ERRORS:
                continue
            assert client.ws is not None
            client.synced_ns = time.monotonic_ns()
            client.storm_bytes += client.ws.bytes_received
            client.bytes_at_arm = client.ws.bytes_received
            break
        self.storm_pending -= 1
        if self.storm_pending == 0:
            self.storm_done.set()

    # -- writing -------------------------------------------------------------------------

    async def write_loop(
        self, client: Client, go_ns: int, end_ns: int, counter: int, scale: float
    ) -> int:
        spec = client.spec
        ws = client.ws
        if ws is None or spec.archer is None or spec.rate <= 0:
            return counter
        interval_ns = int(1e9 / (spec.rate * scale))
        total = self.round.total_arrows
        arrows = [ARROW_CYCLE[i % len(ARROW_CYCLE)] for i in range(spec.arrows_before % total)]
        next_ns = go_ns + int(spec.phase_s / scale * 1e9)
        while next_ns < end_ns and not ws.closed:
            await trio.sleep(max(0.0, (next_ns - time.monotonic_ns()) / 1e9))
            next_ns += interval_ns
            if len(arrows) >= total:
                arrows = []
            arrows.append(ARROW_CYCLE[len(arrows) % len(ARROW_CYCLE)])
            counter += 1
            send_ns = time.monotonic_ns()
            stamp = Stamp(time.time_ns() // 1_000_000, counter, f"bench.{send_ns}.")
            state = ArcherState(name=spec.name, round=self.plan.round, arrows=tuple(arrows))
            frame = encode(Write(counter, Register(spec.archer, stamp, state)))
            try:
                await ws.send(frame)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return counter
            self.stats.writes += 1
        return counter

    # -- commands ------------------------------------------------------------------------

    async def go(self, duration_s: float, scale: float = 1.0) -> dict[str, Any]:
        self.stats = Stats()
        self.measuring = True
        go_ns = time.monotonic_ns()
        end_ns = go_ns + int(duration_s * 1e9)
        async with trio.open_nursery() as nursery:
            for client in self.clients:
                nursery.start_soon(
                    self.write_loop, client, go_ns, end_ns, 1_000_000 + go_ns // 10**9, scale
                )
        # A worker holding only viewers has no writes to wait for: it still measures for
        # the whole window.
        await trio.sleep(max(0.0, (end_ns - time.monotonic_ns()) / 1e9) + self.plan.drain_s)
        self.measuring = False
        return self.stats.to_json()

    def arm_storm(self, timeout_s: float) -> None:
        self.storm_armed = True
        self.storm_deadline_ns = time.monotonic_ns() + int(timeout_s * 1e9)
        self.storm_pending = sum(1 for c in self.clients if c.ws is not None)
        for client in self.clients:
            client.synced_ns = None
            client.storm_bytes = 0
            client.attempts = 0
            client.bytes_at_arm = client.ws.bytes_received if client.ws is not None else 0
        if self.storm_pending == 0:
            self.storm_done.set()

    async def storm_result(self) -> dict[str, Any]:
        with trio.move_on_at(trio.current_time() + self._deadline_remaining_s()):
            await self.storm_done.wait()
        synced = [c for c in self.clients if c.synced_ns is not None]
        return {
            "synced_ns": [c.synced_ns for c in synced],
            "unsynced": len(self.clients) - len(synced),
            "bytes": sum(c.storm_bytes for c in self.clients),
            "attempts": sum(c.attempts for c in self.clients),
            "resets": sum(1 for c in self.clients if c.reset),
        }

    def _deadline_remaining_s(self) -> float:
        return max(0.0, (self.storm_deadline_ns - time.monotonic_ns()) / 1e9)

    async def close_all(self) -> None:
        async with trio.open_nursery() as nursery:
            for client in self.clients:
                if client.ws is not None:
                    nursery.start_soon(client.ws.aclose)


def _say(kind: str, body: Any = None) -> None:
    line = kind if body is None else f"{kind} {json.dumps(body, separators=(',', ':'))}"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def no_collections() -> Iterator[None]:
    """No automatic garbage collection inside: for a measurement window.

    A worker's own pauses are counted as the server's latency: a message that arrives
    while the worker's collector walks its heap is stamped when the walk is over. With
    5,000 connections in a worker, its collections took 30-60 ms (the youngest generation)
    and 100-335 ms (a full one) about once a second in the many-shoots run, even with the
    connections frozen out of sight: that was most of the p95 and p99 reported for the
    relay there, whose own time from a write to its fan-out was under 50 ms for 99% of
    them. What the window leaves is collected after it, before ``done`` is reported.
    """
    gc.collect()
    gc.freeze()  # the connections, which live until the run ends
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


async def _serve(plan: Plan) -> None:
    worker = Worker(plan)
    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        connected, failed = await worker.connect_all(nursery)
        _say(
            "ready",
            {"connected": connected, "failed": failed, "seconds": time.monotonic() - started},
        )
        while True:
            line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
            command, _, argument = line.strip().partition(" ")
            if command == "go":
                seconds, _, scale = argument.partition(" ")
                with no_collections():
                    stats = await worker.go(float(seconds), float(scale or 1))
                _say("done", stats)
            elif command == "storm":
                worker.arm_storm(float(argument))
                _say("armed")
                _say("synced", await worker.storm_result())
            else:  # "quit", or the orchestrator went away (EOF)
                worker.storm_armed = False
                await worker.close_all()
                nursery.cancel_scope.cancel()
                return


def main() -> None:
    raise_fd_limit()
    plan = Plan.from_json(json.loads(Path(sys.argv[1]).read_text()))
    trio.run(_serve, plan)


if __name__ == "__main__":
    main()
