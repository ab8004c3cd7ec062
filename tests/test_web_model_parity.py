"""The browser ranks exactly as ``sync/leaderboard.py`` does: the same fixtures (tie-breaks
on both rules, full ties, mixed rounds, archers who left or broke a rule, random scores)
through the JS model (``clients/web/src/model``) and through ``build_leaderboard``."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from sync.classification import derived_values
from sync.clock import Stamp
from sync.codec import register_to_wire
from sync.leaderboard import build_leaderboard
from sync.models import ArcherState, Profile
from sync.register import Register
from sync.rounds import display_order, get_round

from .web_tools import run_tool

ROUNDS = ("national", "wa1440_70", "portsmouth", "worcester", "york")
FIELDS = (
    "total",
    "hits",
    "golds",
    "xs",
    "arrows_shot",
    "ends_completed",
    "end_totals",
    "position",
    "behind",
    "handicap",
    "predicted_score",
    "classification",
    "classification_status",
    "overall_position",
)
JS_NAMES = {
    "arrows_shot": "arrowsShot",
    "ends_completed": "endsCompleted",
    "end_totals": "endTotals",
    "predicted_score": "predicted",
    "classification_status": "status",
    "overall_position": "overallPosition",
}


def _rounds_json() -> list[dict[str, Any]]:
    out = []
    for codename in ROUNDS:
        info = get_round(codename)
        passes, first = [], 0
        for arrows, _ in info.passes:
            passes.append(
                {
                    "arrows": arrows,
                    "values": display_order(info.allowed_at(first)),
                    "gold": info.gold_value(first),
                }
            )
            first += arrows
        out.append(
            {
                "codename": codename,
                "name": info.name,
                "location": info.location,
                "total_arrows": info.total_arrows,
                "end_size": info.end_size,
                "max_score": info.max_score,
                "values": display_order(info.allowed_at(0)),
                "tie_break": info.tie_break,
                "passes": passes,
            }
        )
    return out


def reg(archer: str, name: str, round_: str, arrows: tuple[Any, ...], **kw: Any) -> Register:
    profile = kw.pop("profile", Profile("recurve", "adult", "open"))
    state = ArcherState(name, round_, profile, arrows=arrows, **kw)
    return Register(archer, Stamp(1, 0, "d"), state)


def crafted() -> list[Register]:
    nine = (9, 9, 9, 9, 9, 9)
    return [
        # National (hits, then golds): 54 each. More hits wins; then more golds.
        reg("n1", "Ann", "national", (9, 9, 9, 9, 9, 9)),  # 6 hits, 6 golds
        reg("n2", "Bob", "national", (9, 9, 9, 9, 9, 7, 1, "M", "M", "M", "M", "M")),  # 7 hits
        reg("n3", "Cat", "national", (9, 9, 7, 7, 7, 7, 3, 3, 1, 1, "M", "M")),  # 10 hits
        reg("n4", "Dan", "national", (9, 9, 7, 7, 7, 7, 3, 3, 1, 1, "M", "M")),  # full tie with Cat
        reg("n5", "Dan", "national", (9, 9, 7, 7, 7, 7, 3, 3, 1, 1, "M", "M")),  # same name: by id
        reg("n6", "Émile", "national", (7, 7, 7, 7, 7, 7, 5, 5, 1, 1)),  # 54, 10 hits, 0 golds
        reg("n7", "Zed", "national", ()),  # nothing shot yet
        # WA 1440 (tens incl. X, then Xs): 60 each.
        reg("w1", "Ann", "wa1440_70", (10, 10, 10, 10, 10, 10)),
        reg("w2", "Bea", "wa1440_70", ("X", "X", 10, 10, 10, 10)),
        reg("w3", "Cy", "wa1440_70", ("X", 10, 10, 10, 10, 10)),
        reg("w4", "Di", "wa1440_70", (10, 10, 10, 10, 9, 9, 1, 1)),
        # Portsmouth, Worcester (ends of 5), York; finished and left archers.
        reg("p1", "Pat", "portsmouth", (*nine, *nine, 10, 10, 10), finished=True),
        reg("p2", "Pip", "portsmouth", (*nine, *nine)),
        reg("c1", "Wes", "worcester", (5, 5, 4, 4, 3, 5, 5, 5, 5, 5)),
        reg("c2", "Wil", "worcester", (5, 5, 5, 5, 5, 4, 4, 3, 5, 5)),
        reg("y1", "Yan", "york", (9, 9, 7, 7, 5, 5) * 3),
        reg("y2", "Left", "york", (9, 9, 9, 9, 9, 9) * 3, left=True),
        # Breaks the round's rules (no 10 on an imperial face): skipped on both sides.
        reg("bad", "Bad", "national", (10, 9, 9, 9, 9, 9)),
        reg("unk", "Unknown", "no_such_round", ()),
    ]


def random_registers(seed: int, count: int) -> list[Register]:
    rng = random.Random(seed)
    registers = []
    for i in range(count):
        round_ = rng.choice(ROUNDS[:4])
        info = get_round(round_)
        n = rng.choice([0, info.end_size, 2 * info.end_size, rng.randrange(0, 4 * info.end_size)])
        # Few distinct values make ties likely.
        arrows = tuple(
            rng.choice(display_order(info.allowed_at(k))[:3])
            for k in range(min(n, info.total_arrows))
        )
        name = rng.choice(["Al", "Bo", "Cy", "Al"])
        registers.append(reg(f"r{i:03}", name, round_, arrows, finished=rng.random() < 0.1))
    return registers


def _entries(registers: list[Register]) -> list[dict[str, Any]]:
    entries = []
    for r in registers:
        try:
            derived = derived_values(r.state)
        except Exception:
            derived = None  # a state the relay would have refused
        wire = register_to_wire(r)
        entries.append(
            {
                "id": r.archer_id,
                "state": wire["state"],
                "stamp": wire["stamp"],
                "derived": None
                if derived is None
                else dict(
                    zip(("handicap", "predicted", "classification", "status"), derived, strict=True)
                ),
            }
        )
    return entries


def _python_side(registers: list[Register]) -> dict[str, Any]:
    board = build_leaderboard(registers)
    return {
        "groups": [
            (g.round, [(s.archer_id, *(getattr(s, f) for f in FIELDS)) for s in g.standings])
            for g in board.groups
        ],
        "overall": [s.archer_id for s in board.overall],
    }


def _js_side(registers: list[Register]) -> dict[str, Any]:
    out = run_tool("rank", {"rounds": _rounds_json(), "archers": _entries(registers)})
    assert isinstance(out, dict)

    def row(s: dict[str, Any]) -> tuple[Any, ...]:
        values = [s[JS_NAMES.get(f, f)] for f in FIELDS]
        values[FIELDS.index("end_totals")] = tuple(values[FIELDS.index("end_totals")])
        return (s["archerId"], *values)

    return {
        "groups": [(g["round"], [row(s) for s in g["standings"]]) for g in out["groups"]],
        "overall": [s["archerId"] for s in out["overall"]],
    }


def test_crafted_tie_breaks_rank_the_same(web_tests_built: Path) -> None:
    registers = crafted()
    python, js = _python_side(registers), _js_side(registers)
    assert js == python
    national = dict(python["groups"])["national"]
    # The fixture exercises what it claims: hits beat hits, full ties share a place.
    assert [row[0] for row in national][:3] == ["n3", "n4", "n5"]
    assert [row[FIELDS.index("position") + 1] for row in national][:3] == [1, 1, 1]


def test_random_shoots_rank_the_same(web_tests_built: Path) -> None:
    for seed in range(3):
        registers = random_registers(seed, 40)
        assert _js_side(registers) == _python_side(registers), f"seed {seed}"
