"""The browser's register tie-break is the relay's: the canonical CBOR bytes of a state
(``sync/canonical.py``) equal those of ``clients/web/src/protocol/canonical.ts``, on the
shared fixtures and on random states, and the merge order follows them."""

from __future__ import annotations

import json
import random
from pathlib import Path

from sync.canonical import canonical_state, state_to_wire
from sync.clock import Stamp
from sync.models import ArcherState, Profile
from sync.register import Register, merge

from .web_tools import WEB, run_tool

FIXTURES = WEB / "test" / "fixtures" / "canonical.json"


def _state(wire: dict[str, object]) -> ArcherState:
    profile = wire["profile"]
    assert isinstance(profile, dict)
    arrows = wire["arrows"]
    assert isinstance(arrows, list)
    return ArcherState(
        name=str(wire["name"]),
        round=str(wire["round"]),
        profile=Profile(**profile),
        arrows=tuple(arrows),
        finished=bool(wire["finished"]),
        left=bool(wire["left"]),
    )


def test_shared_fixtures_are_python_canonical_bytes() -> None:
    """The fixture file the JS test reads is still what Python computes (a changed
    encoding must change both sides)."""
    for fixture in json.loads(FIXTURES.read_text("utf-8"))["states"]:
        assert canonical_state(_state(fixture["state"])).hex() == fixture["canonical"]


def test_equal_stamps_merge_by_canonical_bytes_in_either_order() -> None:
    stamp = Stamp(5, 0, "buggy")
    a = Register("a", stamp, ArcherState("C", "national", arrows=(9,)))
    b = Register("a", stamp, ArcherState("C", "national", arrows=(10,)))
    winner = a if canonical_state(a.state) > canonical_state(b.state) else b
    assert merge(a, b) == merge(b, a) == winner


def test_random_states_encode_identically_in_the_browser(web_tests_built: Path) -> None:
    rng = random.Random(11)
    names = ["", "Chris", "Zoë", "🎯 " * 20, "x" * 200, "a\u0000b"]
    states = [
        ArcherState(
            name=rng.choice(names),
            round=rng.choice(["national", "york", "wa1440_70"]),
            profile=Profile(
                rng.choice(["recurve", "compound", "barebow"]),
                rng.choice(["adult", "u18", "50+"]),
                rng.choice(["open", "female"]),
            ),
            arrows=tuple(
                rng.choice([0, 1, 5, 9, 10, "X", "M"]) for _ in range(rng.randrange(0, 150))
            ),
            finished=rng.random() < 0.5,
            left=rng.random() < 0.2,
        )
        for _ in range(200)
    ]
    result = run_tool("canonical", {"states": [state_to_wire(s) for s in states]})
    assert isinstance(result, dict)
    assert result["canonical"] == [canonical_state(s).hex() for s in states]
