"""What one write costs the relay, and how many writes a second one shoot holds.

- :func:`write_cost`: CPU per write with fan-out taken out of the picture. A shoot of
  ``write_cost_archers`` archers, each with ``write_cost_arrows`` arrows already shot
  (written and acknowledged first), and one connection, an archer who goes on scoring at
  ``write_cost_rate`` writes/s: it is the only subscriber, so what the relay spends is
  the write itself (decode, merge, CRDT update, Redis append, leaderboard, notices) plus
  one update frame and one ack. The relay's CPU while the same connection sits idle is
  measured just before, over one second, and taken off (pings, lease renewals, the Redis
  listener); both numbers are reported, and how the raw one splits between the event
  loop's thread and the worker threads. When the floor reference runs, the same writer
  is measured on it too (it sends each write back and does nothing else): what receiving
  a frame and sending one costs on this machine at this pace, in the same run. The actor's
  own work is measured alone too (:mod:`benchmarks.write_cost`, in-process, no sockets).
- :func:`ramp`: one shoot with ``ramp_subscribers`` connections, every one of them an
  archer writing (so the rate per connection stays low), offered ``ramp_rates`` writes/s
  in turn on the same connections, ``ramp_step_s`` each, until a step misses: p99 at or
  above ``ramp_p99_ms``, fewer than 99% of the expected updates delivered, or the load
  generator unable to offer 90% of the rate (then the machine, not the relay, is the
  limit, and the report says so). The highest rate held is the result. The references in
  ``ramp_references`` climb the same steps, which shows what the machine allows.
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any, Final

import trio

from .load import ConnSpec
from .procs import Server, python_module

if TYPE_CHECKING:
    from .scenarios import Bench

__all__ = ["ramp", "write_cost"]

IDLE_WINDOW_S: Final = 1.0
DELIVERED_MIN: Final = 0.99
OFFERED_MIN: Final = 0.9
PREFILL_CONCURRENCY: Final = 8
#: After a missed step the server may hold a backlog: wait (this long at most) until its
#: CPU use falls under SETTLED_CORES, so the next measurement starts on a quiet server.
SETTLE_MAX_S: Final = 20.0
SETTLE_PROBE_S: Final = 0.25
SETTLED_CORES: Final = 0.1


async def write_cost(bench: Bench) -> None:
    cfg = bench.config
    relay = bench.relay
    assert relay is not None
    bench.progress.step(f"CPU per write: scoring {cfg.write_cost_archers} archers")
    ((code, archers),) = await bench.create_shoots(1, cfg.write_cost_archers)
    limiter = trio.CapacityLimiter(PREFILL_CONCURRENCY)

    async def prefill(archer: str, token: str) -> None:
        async with limiter:
            await bench.score(code, archer, token, cfg.write_cost_arrows)

    async with trio.open_nursery() as nursery:
        for archer, token in archers:
            nursery.start_soon(prefill, archer, token)
    archer, token = archers[0]
    writer = ConnSpec(
        code, archer, token, "Archer 0", cfg.write_cost_rate, arrows_before=cfg.write_cost_arrows
    )
    result = await _cost_on(bench, relay, writer, "CPU per write")
    result.update(
        archers=cfg.write_cost_archers, arrows_each=cfg.write_cost_arrows, rate=cfg.write_cost_rate
    )
    floor = bench.references.get("floor")
    if floor is not None:
        # The same writer on the floor, which sends each write back and does nothing else.
        result["floor"] = await _cost_on(bench, floor, writer, "CPU per write, floor")
    bench.progress.label = "CPU per write: the actor alone"
    result["actor"] = await _actor_cost()
    bench.results["write_cost"] = result


async def _actor_cost() -> dict[str, Any]:
    """The actor's own share (``python -m benchmarks.write_cost``, in its own process so
    it does not share this one's event loop): a median of about a third of a millisecond
    takes a few seconds to measure."""
    done = await trio.run_process(
        python_module("benchmarks.write_cost"), capture_stdout=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def _cost_on(bench: Bench, server: Server, writer: ConnSpec, label: str) -> dict[str, Any]:
    """One writer's window on ``server``, with the server's idle CPU taken off."""
    pool, opened = await bench.open_pool(server, [writer], label)
    try:
        bench.progress.label = f"{label}: the server idle"
        idle_before, idle_started = server.cpu_s(), time.monotonic()
        await trio.sleep(IDLE_WINDOW_S)  # a measurement window, not synchronisation
        idle_per_s = (server.cpu_s() - idle_before) / (time.monotonic() - idle_started)
        loop_before = server.main_thread_cpu_s()
        measured = await bench.window(server, pool, 1, label)
        loop_s = server.main_thread_cpu_s() - loop_before
    finally:
        await pool.close()
    bench.progress.finish_step()
    writes = measured["writes"]
    net_s = measured["cpu_s"] - idle_per_s * measured["wall_s"]
    return {
        **opened,
        **measured,
        "idle_cpu_per_s": idle_per_s,
        "cpu_ms_per_write_raw": measured["cpu_s"] / writes * 1e3 if writes else math.nan,
        "cpu_ms_per_write": max(0.0, net_s) / writes * 1e3 if writes else math.nan,
        # Where it went: the event loop's thread, and the rest (worker threads), raw.
        "loop_ms_per_write": loop_s / writes * 1e3 if writes else math.nan,
        "threads_ms_per_write": (measured["cpu_s"] - loop_s) / writes * 1e3 if writes else math.nan,
    }


def _step_miss(step: dict[str, Any], offered: float, p99_limit_ms: float) -> str | None:
    """Why a ramp step was not held, or ``None`` when it was."""
    if step["writes_per_s"] < OFFERED_MIN * offered:
        return (
            f"the load generator offered {step['writes_per_s']:.0f} of {offered:g} writes/s "
            "(the machine, not the server, was the limit)"
        )
    if step["rate_limited"]:
        return f"{step['rate_limited']} writes were refused as rate-limited"
    if not step["delivered_ratio"] >= DELIVERED_MIN:
        return f"only {step['delivered_ratio']:.1%} of the updates arrived"
    if not step["p99_ms"] < p99_limit_ms:
        return f"p99 {step['p99_ms']:.1f} ms"
    return None


async def _settle(server: Server) -> float:
    """Poll the server's CPU use until it is quiet (bounded); the seconds it took."""
    started = time.monotonic()
    with trio.move_on_after(SETTLE_MAX_S):
        while True:
            before = server.cpu_s()
            await trio.sleep(SETTLE_PROBE_S)
            if server.cpu_s() - before < SETTLED_CORES * SETTLE_PROBE_S:
                break
    return time.monotonic() - started


async def _climb(bench: Bench, server: Server, conns: list[ConnSpec]) -> dict[str, Any]:
    cfg = bench.config
    subscribers = cfg.ramp_subscribers
    label = f"ramp {server.name}"
    pool, opened = await bench.open_pool(server, conns, label)
    steps: list[dict[str, Any]] = []
    stopped = "every step held"
    try:
        for rate in cfg.ramp_rates:
            step = await bench.window(
                server,
                pool,
                subscribers,
                f"{label} {rate:g}/s",
                duration=cfg.ramp_step_s,
                scale=rate / subscribers,
            )
            miss = _step_miss(step, rate, cfg.ramp_p99_ms)
            steps.append({"offered": rate, "held": miss is None, "miss": miss, **step})
            if miss is not None:
                stopped = f"at {rate:g} writes/s: {miss}"
                break
    finally:
        await pool.close()
    settle_s = await _settle(server)
    bench.progress.finish_step()
    held = [step["writes_per_s"] for step in steps if step["held"]]
    return {
        **opened,
        "settle_s": settle_s,
        "steps": steps,
        "held_writes_per_s": max(held) if held else 0.0,
        "highest_offered": steps[-1]["offered"] if steps else math.nan,
        "stopped": stopped,
    }


async def ramp(bench: Bench) -> None:
    cfg = bench.config
    assert bench.relay is not None
    subscribers = cfg.ramp_subscribers
    bench.progress.step(f"ramp: {subscribers} archers joining")
    ((code, archers),) = await bench.create_shoots(1, subscribers)
    # Every connection writes at 1/s, scaled by each step; phases spread them evenly.
    conns = [
        ConnSpec(code, archer, token, f"Archer {index}", 1.0, index / subscribers)
        for index, (archer, token) in enumerate(archers)
    ]
    result: dict[str, Any] = {
        "subscribers": subscribers,
        "p99_limit_ms": cfg.ramp_p99_ms,
        "step_s": cfg.ramp_step_s,
        "rates": list(cfg.ramp_rates),
        "relay": await _climb(bench, bench.relay, conns),
    }
    for name in cfg.ramp_references:
        server = bench.references.get(name)
        if server is not None:
            result[name] = await _climb(bench, server, conns)
    bench.results["ramp"] = result
