"""Fixed CPU per write: what one write costs the shoot's actor before any fan-out.

A shoot of 20 archers with 72 arrows each (three rounds, mixed profiles) is scored end
by end, one write per arrow, straight into a real :class:`relay.actor.ShootActor` in this
process, with one subscriber. Each write is timed with the thread's CPU clock around the
actor's handling of the message: the register merge, the Yjs write with its derived
values, the encoding, the leaderboard, the notices and the notices' memory. Redis is not
involved (the persister is not running; it works on a worker thread in the relay anyway),
and the one subscriber only has a frame queued, so this is the fixed cost a write adds
however many subscribers there are.

In the same run, after every write, the board and the notices are also rebuilt from
scratch from every register (what every write cost before the board was kept
incrementally), so the two numbers are compared on the same machine at the same moment.

Back to back, one write after another, the actor runs with its code and data in the
processor's caches, which a live shoot never does: its writes come tens of milliseconds
apart, with the rest of the relay (and of the machine) running in between. So every
:data:`PACED_EVERY`-th write comes after :data:`PACE_S` of sleep, the gap between two
writes at the ``writecost`` scenario's 50 writes/s, and is counted apart: the *paced*
cost, which is what a write costs a relay at work (measured: about three times the back
to back cost, in every part of the write alike).

``python -m benchmarks.write_cost`` prints a JSON object; :func:`run` returns it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import trio

from relay.actor import ShootActor, Submit, Subscribe
from relay.config import Settings
from relay.metrics import Metrics
from relay.store import Owner, RedisStore, StoredShoot
from relay.subscriber import Subscriber
from sync.clock import Stamp
from sync.leaderboard import build_leaderboard
from sync.models import ArcherState, Profile, Shoot
from sync.notifications import NotifierState, next_notices
from sync.register import Register
from sync.rounds import get_round

__all__ = ["WriteCost", "goal", "run", "shoot_writes"]

#: The rounds the archers shoot (72 arrows each, six-arrow ends).
ROUNDS = ("national", "wa720_70", "wa720_60")
#: The relay's clock during the run (fixed: stamps are an hour behind it).
_NOW_MS = 1_800_000_000_000
#: The sleep before a paced write: the gap between two writes at 50 writes/s.
PACE_S = 0.02
#: Every this many writes, one is paced (about 180 of a 20 x 72 shoot: 4 s of sleep).
PACED_EVERY = 8

PROFILES = (
    Profile("recurve", "adult", "open"),
    Profile("compound", "adult", "female"),
    Profile("barebow", "over_50", "open"),
    Profile("longbow", "under_18", "female"),
)


@dataclass(frozen=True, slots=True)
class WriteCost:
    """CPU per write, in milliseconds."""

    writes: int
    """Every write of the shoot; the median and p99 are of those not paced."""
    median_ms: float
    p99_ms: float
    max_ms: float
    scratch_median_ms: float
    """The board and notices rebuilt from every register, after the same writes."""
    scratch_p99_ms: float
    paced_writes: int
    """How many writes came after a pause of :data:`PACE_S` (not in the median above)."""
    paced_median_ms: float
    paced_p99_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "writes": self.writes,
            "median_ms": round(self.median_ms, 4),
            "p99_ms": round(self.p99_ms, 4),
            "max_ms": round(self.max_ms, 4),
            "scratch_median_ms": round(self.scratch_median_ms, 4),
            "scratch_p99_ms": round(self.scratch_p99_ms, 4),
            "paced_writes": self.paced_writes,
            "paced_median_ms": round(self.paced_median_ms, 4),
            "paced_p99_ms": round(self.paced_p99_ms, 4),
            "pace_s": PACE_S,
        }


def shoot_writes(archers: int, arrows: int, seed: int = 1) -> Iterator[Register]:
    """The writes of a shoot scored end by end: every archer shoots an end, one write per
    arrow (the whole state so far, as devices send it)."""
    rng = random.Random(seed)
    states = [
        ArcherState(
            name=f"Archer {n:02d}",
            round=ROUNDS[n % len(ROUNDS)],
            profile=PROFILES[n % len(PROFILES)],
        )
        for n in range(archers)
    ]
    skill = [rng.uniform(0.3, 0.9) for _ in range(archers)]
    ms = _NOW_MS - 3_600_000
    for start in range(0, arrows, 6):
        for n, state in enumerate(states):
            info = get_round(state.round)
            for index in range(start, min(start + 6, arrows, info.total_arrows)):
                values = sorted(info.allowed_at(index), key=_value)
                weight = [rng.random() ** (1 - skill[n]) for _ in values]
                arrow = rng.choices(values, weights=sorted(weight))[0]
                state = ArcherState(
                    name=state.name,
                    round=state.round,
                    profile=state.profile,
                    arrows=(*state.arrows, arrow),
                )
                ms += 1
                yield Register(f"a{n:02d}", Stamp(ms, 0, f"d{n:02d}"), state)
            states[n] = state


def _value(arrow: object) -> int:
    return {"X": 11, "M": 0}.get(arrow, arrow)  # type: ignore[call-overload, no-any-return]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _actor() -> ShootActor:
    shoot = Shoot("1234", "bench", "Bench", "Sam", 0, 2**62, "UTC")
    stored = StoredShoot(shoot, None, [])
    # Never contacted: the persister is not started, so no command is ever sent.
    store = RedisStore("redis://127.0.0.1:9/0")
    send, receive = trio.open_memory_channel[Any](1)
    del send
    return ShootActor(
        stored,
        store,
        receive,
        Settings(),
        Metrics(),
        owner=Owner(1, "bench"),
        now_ms=lambda: _NOW_MS,
    )


async def _measure(archers: int, arrows: int) -> WriteCost:
    actor = _actor()
    subscriber = Subscriber(limit=10**7)
    actor._handle(Subscribe(subscriber, b"\x00"))
    costs: list[float] = []
    paced: list[float] = []
    scratch: list[float] = []
    notifier, board = NotifierState(), build_leaderboard(())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(actor.projector.run)
        for index, register in enumerate(shoot_writes(archers, arrows)):
            pause = index % PACED_EVERY == PACED_EVERY - 1
            if pause:
                await trio.sleep(PACE_S)  # the gap between writes, not synchronisation
            begin = time.thread_time_ns()
            submit = Submit(register)
            actor._handle(submit)
            (paced if pause else costs).append((time.thread_time_ns() - begin) / 1e6)
            await _settle(actor)

            begin = time.thread_time_ns()
            after = build_leaderboard(actor.doc.registers().values())
            notifier, _ = next_notices(notifier, board, after)
            scratch.append((time.thread_time_ns() - begin) / 1e6)
            board = after
        nursery.cancel_scope.cancel()
    if actor._metrics.writes_applied != len(costs) + len(paced):
        written = len(costs) + len(paced)
        raise RuntimeError(f"only {actor._metrics.writes_applied} of {written} writes applied")
    return WriteCost(
        writes=len(costs) + len(paced),
        median_ms=statistics.median(costs),
        p99_ms=_percentile(costs, 0.99),
        max_ms=max(costs),
        scratch_median_ms=statistics.median(scratch),
        scratch_p99_ms=_percentile(scratch, 0.99),
        paced_writes=len(paced),
        paced_median_ms=statistics.median(paced),
        paced_p99_ms=_percentile(paced, 0.99),
    )


async def _settle(actor: ShootActor) -> None:
    """Let work the actor handed to worker threads finish (not counted: it is not on the
    event loop), with a deadline so a stuck helper fails the run instead of hanging it."""
    with trio.fail_after(60):
        await actor.projector.wait_idle()


def run(archers: int = 20, arrows: int = 72) -> dict[str, Any]:
    """Measure and return the result as plain data (milliseconds of CPU per write)."""
    cost = trio.run(_measure, archers, arrows)
    return {"archers": archers, "arrows": arrows, **cost.to_dict()}


#: The goal this measures, as ``fast-shoot bench`` reports goals.
GOAL_NAME = "fixed CPU per write"
GOAL_TARGET_MS = 0.3


def goal(result: dict[str, Any]) -> dict[str, Any]:
    """The goal entry for a :func:`run` result, in the shape of ``goals`` in the bench's
    JSON report (name, target, measured, unit, verdict, detail): the median CPU of a paced
    write (what a write costs a relay at work) against at most 0.3 ms."""
    measured = result["paced_median_ms"]
    if measured <= GOAL_TARGET_MS:
        verdict = "met"
    else:
        verdict = f"missed ({measured / GOAL_TARGET_MS:.2f}x the goal)"
    return {
        "name": f"{GOAL_NAME} ({result['archers']} archers x {result['arrows']} arrows, median)",
        "target": f"<= {GOAL_TARGET_MS} ms",
        "measured": measured,
        "unit": "ms",
        "verdict": verdict,
        "detail": f"{result['paced_writes']} writes after {result['pace_s'] * 1e3:g} ms idle;"
        f" back to back: median {result['median_ms']} ms, p99 {result['p99_ms']} ms;"
        f" board and notices rebuilt from scratch: {result['scratch_median_ms']} ms",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--archers", type=int, default=20)
    parser.add_argument("--arrows", type=int, default=72)
    args = parser.parse_args(argv)
    result = run(args.archers, args.arrows)
    print(json.dumps({**result, "goal": goal(result)}, indent=2))


if __name__ == "__main__":
    main()
