"""The rounds archers shoot, as far as scoring a live shoot needs them.

archeryutils keeps the catalogues (AGB imperial and metric, indoor, WA, field, IFAA,
practice distances...), each round a list of passes with a target and a scoring system.
This module turns one into a :class:`RoundInfo`: for every arrow position, the values an
archer may score there, plus what the tie-breaks count as a "gold". Rounds are looked up
by archeryutils' code name (``"national"``, ``"wa1440_70"``, ``"portsmouth"``...), which is
also what travels on the wire.

Arrow values are what the archer calls out: integers for rings, ``"X"`` for the inner ten
(it counts 10), ``"M"`` for a miss (it counts 0).

archeryutils (and numpy under it) is imported on first use, not with this module: the
``fast-shoot`` command imports the models for its ``--help`` and must start at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

from .errors import InvalidState

if TYPE_CHECKING:
    import archeryutils as au

__all__ = [
    "Arrow",
    "RoundInfo",
    "all_rounds",
    "arrow_value",
    "display_order",
    "find_rounds",
    "get_round",
    "resolve_round",
    "round_suggestions",
    "unknown_round_message",
]

Arrow: TypeAlias = int | Literal["X", "M"]

#: Catalogues offered, in the order a picker lists them.
CATALOGUES: Final = (
    "AGB_outdoor_imperial",
    "AGB_outdoor_metric",
    "AGB_indoor",
    "WA_outdoor",
    "WA_indoor",
    "WA_field",
    "IFAA_field",
    "AGB_VI",
    "WA_VI",
    "AA_outdoor_metric",
    "AA_indoor",
    "AA_field",
    "misc",
)

#: Scoring systems whose inner ring has an X (it scores 10 and is counted for tie-breaks).
_X_SYSTEMS: Final = frozenset(
    {"10_zone", "10_zone_6_ring", "10_zone_5_ring", "10_zone_compound", "10_zone_5_ring_compound"}
)

#: Scoring systems ranked by hits then golds (the imperial rule); the rest rank by tens
#: (X included) then Xs.
_HITS_SYSTEMS: Final = frozenset({"5_zone", "Worcester", "Worcester_2_ring"})


def arrow_value(arrow: Arrow) -> int:
    """The points an arrow scores: ``"X"`` is 10, ``"M"`` is 0."""
    if arrow == "X":
        return 10
    if arrow == "M":
        return 0
    return arrow


def display_order(values: frozenset[Arrow]) -> list[Arrow]:
    """Arrow values as a score sheet lists them: X first, then highest to lowest, M last."""
    return sorted(values, key=lambda a: (a != "X", -arrow_value(a), str(a)))


@dataclass(frozen=True, slots=True)
class RoundInfo:
    """One round: its passes, the values allowed per arrow, its tie-break rule."""

    codename: str
    """archeryutils' code name, e.g. ``"national"``; the id used on the wire."""
    name: str
    """The name archers know it by, e.g. ``"National"``."""
    location: str
    """``"outdoor"``, ``"indoor"`` or ``"field"``: picks the classification table."""
    passes: tuple[tuple[int, str], ...]
    """``(arrows, scoring system)`` for each pass, in shooting order."""
    end_size: int
    """Arrows per end: 6, or 5 for Worcester rounds (as the app scores them)."""
    tie_break: Literal["hits", "tens"]
    """``"hits"``: rank ties by hits then golds; ``"tens"``: by tens (X incl.) then Xs."""

    @property
    def total_arrows(self) -> int:
        return sum(n for n, _ in self.passes)

    @property
    def total_ends(self) -> int:
        return -(-self.total_arrows // self.end_size)

    @property
    def max_score(self) -> int:
        return sum(n * _ring_values(system)[0] for n, system in self.passes)

    def scoring_system_at(self, index: int) -> str:
        """The scoring system of the pass the ``index``-th arrow (0-based) belongs to."""
        for n, system in self.passes:
            if index < n:
                return system
            index -= n
        raise IndexError(index)

    def allowed_at(self, index: int) -> frozenset[Arrow]:
        """The values allowed for the ``index``-th arrow."""
        return _allowed(self.scoring_system_at(index))

    def gold_value(self, index: int) -> int:
        """The top ring's value at arrow ``index``: 9 for imperial, 10 for metric..."""
        return _ring_values(self.scoring_system_at(index))[0]

    def allowed_per_arrow(self) -> tuple[frozenset[Arrow], ...]:
        """:meth:`allowed_at` for every arrow of the round, in order (computed once)."""
        return _per_arrow(self)[0]

    def gold_per_arrow(self) -> tuple[int, ...]:
        """:meth:`gold_value` for every arrow of the round, in order (computed once)."""
        return _per_arrow(self)[1]

    def archeryutils_round(self) -> au.Round:
        return _catalogue()[self.codename]


@cache
def _per_arrow(info: RoundInfo) -> tuple[tuple[frozenset[Arrow], ...], tuple[int, ...]]:
    systems = [system for n, system in info.passes for _ in range(n)]
    return tuple(_allowed(s) for s in systems), tuple(_ring_values(s)[0] for s in systems)


@cache
def _ring_values(system: str) -> tuple[int, ...]:
    """Ring values of a scoring system, highest first, from archeryutils' face specs."""
    import archeryutils as au

    spec = au.Target.gen_face_spec(system, 1.0)
    return tuple(sorted({int(v) for v in spec.values()}, reverse=True))


@cache
def _allowed(system: str) -> frozenset[Arrow]:
    values: set[Arrow] = set(_ring_values(system))
    values.add("M")
    if system in _X_SYSTEMS:
        values.add("X")
    return frozenset(values)


@cache
def _catalogue() -> Mapping[str, au.Round]:
    from archeryutils import load_rounds

    rounds: dict[str, au.Round] = {}
    for name in CATALOGUES:
        rounds.update(getattr(load_rounds, name))
    return rounds


def _info(codename: str, rnd: au.Round) -> RoundInfo:
    passes = tuple((int(p.n_arrows), str(p.scoring_system)) for p in rnd.passes)
    systems = {system for _, system in passes}
    worcester = any(s.startswith("Worcester") for s in systems)
    return RoundInfo(
        codename=codename,
        name=str(rnd.name),
        location=str(rnd.location or "outdoor"),
        passes=passes,
        end_size=5 if worcester else 6,
        tie_break="hits" if systems <= _HITS_SYSTEMS else "tens",
    )


@cache
def get_round(codename: str) -> RoundInfo:
    """Look a round up by its code name.

    Raises:
        InvalidState: ``unknown_round`` when no catalogue has it.
    """
    rnd = _catalogue().get(codename)
    if rnd is None:
        raise InvalidState("unknown_round", unknown_round_message(codename))
    return _info(codename, rnd)


@cache
def all_rounds() -> tuple[RoundInfo, ...]:
    """Every round on offer, catalogue by catalogue."""
    return tuple(get_round(codename) for codename in _catalogue())


def _fold(text: str) -> str:
    """Case and spacing folded, so ``"York"``, ``"york"`` and ``" YORK "`` compare equal."""
    return " ".join(text.casefold().split())


def find_rounds(query: str = "") -> list[RoundInfo]:
    """Rounds whose code name or name contains ``query``, ignoring case; all for ``""``."""
    needle = _fold(query)
    return [
        info
        for info in all_rounds()
        if needle in _fold(info.codename) or needle in _fold(info.name)
    ]


def resolve_round(text: str) -> RoundInfo:
    """The round a person meant by ``text``: its code name or its name, in any case.

    Raises:
        InvalidState: ``unknown_round``, with suggestions when some are close.
    """
    folded = _fold(text)
    for info in all_rounds():
        if folded in (_fold(info.codename), _fold(info.name)):
            return info
    raise InvalidState("unknown_round", unknown_round_message(text))


def round_suggestions(text: str, limit: int = 3) -> list[str]:
    """Code names close to ``text`` (a typo, another case, a name instead of a code)."""
    folded = _fold(text)
    by_key: dict[str, str] = {}
    for info in all_rounds():
        by_key.setdefault(_fold(info.codename), info.codename)
        by_key.setdefault(_fold(info.name), info.codename)
    if folded in by_key:  # only the case or spacing differs
        return [by_key[folded]]
    close = difflib.get_close_matches(folded, list(by_key), n=limit * 2, cutoff=0.6)
    return list(dict.fromkeys(by_key[key] for key in close))[:limit]


def unknown_round_message(text: str) -> str:
    """``There is no round called 'York'. Did you mean 'york'?`` (the suggestion if any)."""
    message = f"There is no round called {text!r}."
    suggestions = round_suggestions(text) if len(text) <= 100 else []
    if suggestions:
        message += " Did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
    return message
