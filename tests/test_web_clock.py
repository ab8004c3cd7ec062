"""The browser's hybrid clock is the SDK's: ``clients/web/src/protocol/clock.ts`` replays the
operation sequences of ``clients/web/test/fixtures/clock.json`` (its node test checks every
stamp), and this module regenerates those sequences with ``sync.clock.HybridClock`` and
compares, so the fixture cannot drift from the Python clock.

Regenerate after a deliberate change of the clock: ``python -m tests.test_web_clock``.
"""

from __future__ import annotations

import itertools
import json
import random
import sys

from sync.clock import MAX_CLOCK_SKEW_MS, RECENT_STAMPS, HybridClock, Stamp

from .web_tools import WEB

FIXTURES = WEB / "test" / "fixtures" / "clock.json"

#: A base wall time (2026) so the numbers look like real clocks.
BASE_MS = 1_790_000_000_000

Op = dict[str, object]


def _replay(device: str, ops: list[Op]) -> list[Op]:
    """Run ``ops`` on a fresh Python clock; each op gains the stamp it issued (``now``) and
    the clock's ``last`` afterwards."""
    clock = HybridClock(device)
    out: list[Op] = []
    for op in ops:
        done = dict(op)
        if op["op"] == "now":
            wall = op["wall_ms"]
            assert isinstance(wall, int)
            done["stamp"] = clock.now(wall).to_wire()
        elif op["op"] == "observe":
            seen = op["seen"]
            assert isinstance(seen, list)
            clock.observe(Stamp(*seen))
        else:
            wall, server, bound = op["wall_ms"], op["server_ms"], op["max_skew_ms"]
            assert isinstance(wall, int)
            assert isinstance(server, int)
            assert isinstance(bound, int)
            clock.correct(wall, server, bound)
        done["last"] = clock.last.to_wire()
        out.append(done)
    return out


def _crafted() -> list[tuple[str, list[Op]]]:
    """The cases the port exists for."""
    ahead = BASE_MS + 3_600_000
    return [
        # The tablet's write arrives after this phone's clock ran an hour ahead; the relay
        # refuses the phone's write: the corrected clock must still beat the tablet's stamp.
        (
            "phone",
            [
                {"op": "now", "wall_ms": ahead},
                {"op": "observe", "seen": [BASE_MS + 1_000, 4, "tablet"]},
                {"op": "correct", "wall_ms": ahead, "server_ms": BASE_MS, "max_skew_ms": 300_000},
                {"op": "now", "wall_ms": ahead},
            ],
        ),
        # A wrong clock for more writes than the clock remembers: the evicted stamp (within
        # the bound) is kept, or the clock stays at the bound when it lies beyond it.
        (
            "slow",
            [{"op": "observe", "seen": [BASE_MS + 200_000, 0, "other"]}]
            + [{"op": "now", "wall_ms": ahead + i} for i in range(RECENT_STAMPS + 5)]
            + [
                {
                    "op": "correct",
                    "wall_ms": ahead + 50,
                    "server_ms": BASE_MS,
                    "max_skew_ms": MAX_CLOCK_SKEW_MS,
                },
                {"op": "now", "wall_ms": ahead + 60},
            ],
        ),
        (
            "evicted",
            [{"op": "now", "wall_ms": BASE_MS + 10 + i} for i in range(RECENT_STAMPS + 3)]
            + [{"op": "now", "wall_ms": ahead + i} for i in range(RECENT_STAMPS)]
            + [
                {"op": "correct", "wall_ms": ahead, "server_ms": BASE_MS, "max_skew_ms": 1_000},
                {"op": "now", "wall_ms": ahead + 1},
            ],
        ),
        # The largest stamp that fell out of memory counts, not the last one to fall out:
        # here that is the hour-ahead stamp, so the clock stays at the bound.
        (
            "order",
            [
                {"op": "now", "wall_ms": ahead},
                {"op": "observe", "seen": [BASE_MS + 1_000, 0, "tablet"]},
            ]
            + [{"op": "now", "wall_ms": ahead} for _ in range(RECENT_STAMPS)]
            + [
                {"op": "correct", "wall_ms": ahead, "server_ms": BASE_MS, "max_skew_ms": 300_000},
                {"op": "now", "wall_ms": ahead},
            ],
        ),
    ]


def _random_ops(rng: random.Random) -> list[Op]:
    ops: list[Op] = []
    skew = rng.choice([0, 0, -120_000, 3_600_000, 86_400_000])
    wall = BASE_MS
    for _ in range(rng.randrange(1, 50)):
        wall += rng.choice([0, 0, 1, 7, 1_000, -500, 60_000])
        kind = rng.random()
        if kind < 0.55:
            ops.append({"op": "now", "wall_ms": wall + skew})
        elif kind < 0.85:
            seen_wall = wall + rng.choice([-600_000, -5_000, 0, 0, 2_000, 250_000, skew])
            device = rng.choice(["a", "b", "zz", "é"])
            ops.append({"op": "observe", "seen": [seen_wall, rng.randrange(0, 5), device]})
        else:
            server = wall + rng.choice([0, -30_000, 45_000])
            bound = rng.choice([MAX_CLOCK_SKEW_MS, MAX_CLOCK_SKEW_MS, 1_000, 0])
            ops.append(
                {"op": "correct", "wall_ms": wall + skew, "server_ms": server, "max_skew_ms": bound}
            )
            skew = rng.choice([0, skew, 3_600_000])
    return ops


def generate() -> dict[str, object]:
    """Every sequence with the stamps the Python clock gives."""
    rng = random.Random(11)
    cases = _crafted() + [(f"d{i}", _random_ops(rng)) for i in range(30)]
    return {
        "recent_stamps": RECENT_STAMPS,
        "max_clock_skew_ms": MAX_CLOCK_SKEW_MS,
        "sequences": [{"device": device, "ops": _replay(device, ops)} for device, ops in cases],
    }


def _dump(data: dict[str, object]) -> str:
    """JSON with one operation a line, so a change of the clock shows as a readable diff."""

    def line(value: object) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    sequences = data["sequences"]
    assert isinstance(sequences, list)
    blocks = [
        f'{{"device":{line(s["device"])},"ops":[\n'
        + ",\n".join(line(op) for op in s["ops"])
        + "\n]}"
        for s in sequences
    ]
    head = {k: v for k, v in data.items() if k != "sequences"}
    return line(head)[:-1] + ',"sequences":[\n' + ",\n".join(blocks) + "\n]}\n"


def test_shared_fixture_is_what_the_python_clock_issues() -> None:
    """A changed clock must change the fixture the node test checks the browser's against."""
    assert FIXTURES.read_text("utf-8") == _dump(generate()), (
        "clients/web/test/fixtures/clock.json is stale: run python -m tests.test_web_clock"
    )


def test_fixture_runs_the_correction_paths() -> None:
    """The sequences exercise what the port is for: a correction that forgets stamps, an
    observed stamp below the clock surviving it, and an evicted stamp."""
    sequences = generate()["sequences"]
    assert isinstance(sequences, list)
    forgot = 0
    for sequence in sequences:
        ops = sequence["ops"]
        for before, op in itertools.pairwise(ops):
            if op["op"] == "correct" and op["last"] < before["last"]:
                forgot += 1
    assert forgot >= 10


if __name__ == "__main__":
    FIXTURES.write_text(_dump(generate()), "utf-8")
    sys.stdout.write(f"wrote {FIXTURES.name}\n")
