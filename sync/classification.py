"""On-track classifications: where an archer's score so far is heading.

The original app called an archer "on track" for a classification by a flat pace per
end. That is wrong for most rounds: the longest distance is shot first, so a flat pace
under-predicts the finish of an imperial round and rounds often end on easier faces.
The Archery GB handicap tables already model this, so the projection goes through them:

1. the score of the *completed* ends gives a handicap on the partial round made of
   exactly the arrows shot (same passes, same targets, truncated);
2. that handicap gives the expected score on the whole round;
3. the expected score gives the classification from the AGB 2023 tables for the
   round's location (outdoor, indoor or field) and the archer's profile.

Only completed ends count: an end in progress is a handful of arrows whose score
swings the handicap by several points either way, and the leaderboard would flicker.
Once the archer has finished, there is nothing to project: the classification is the
one the actual total earns ("achieved").

archeryutils does the arithmetic. Each of its calls costs about half a millisecond of
numpy work and the relay rebuilds the leaderboard after every applied write, so results
are cached by everything they depend on: the round, the arrows counted, the score, the
profile and whether the archer has finished. A miss is frequent all the same (every end
brings a new score), and archeryutils' root find for a handicap costs about 6 ms on the
event loop; so handicaps and predicted scores come from a table of the expected score at
every whole handicap, one vectorised call per (round, arrows counted), which gives
archeryutils' own answers (the table defers to the root find only where the root lies
within a hair of a whole handicap).

Rounds, bowstyles or age groups the AGB tables do not cover (IFAA rounds, flatbow
indoors...) get no classification, but still a handicap whenever the handicap tables can
give one; archeryutils' ``ValueError`` is the signal, and it never escapes this module.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any, Final, Literal

import archeryutils as au
import numpy as np
from archeryutils import classifications as cf
from archeryutils import handicaps as hc

from .models import ArcherState, Profile, ScoreSummary, summarize
from .rounds import RoundInfo, get_round

#: ``[handicap, predicted score, classification, status]`` as stored in the document.
DerivedValues = list[int | str | None]

__all__ = [
    "CACHE_SIZE",
    "DerivedValues",
    "Projection",
    "age_group_enum",
    "bowstyle_enum",
    "current_handicap",
    "derived_values",
    "gender_enum",
    "projection",
]

#: Entries kept per cache. A shoot of 200 archers holds one live entry per archer and
#: round-position; a few thousand covers many shoots per relay at ~1 KB each.
CACHE_SIZE: Final = 4096

#: The handicap scheme used throughout (Archery GB's, which its classifications use).
_SCHEME: Final = "AGB"


@dataclass(frozen=True, slots=True)
class Projection:
    """An archer's handicap and the classification their score is heading for."""

    handicap: float | None
    """AGB handicap (whole number) of the completed ends, or of the whole round when
    finished; ``None`` when there is none (a score of 0)."""
    predicted_score: int | None
    """Expected final score at that handicap; the actual total once every arrow is shot
    or the archer has finished."""
    classification: str | None
    """AGB 2023 classification as archeryutils names it (``"B3"``, ``"I-MB"``,
    ``"UC"``...), or ``None`` when the tables do not cover this round or profile."""
    status: Literal["on_track", "achieved"]
    """``"on_track"`` while shooting, ``"achieved"`` once the archer has finished."""


def _members(enum: Any) -> Mapping[str, Any]:
    # Iterating the enum yields only the canonical members, so the deprecated AGE_*
    # aliases (which warn) and attribute names like "__class__" are never accepted.
    return {member.name.lower(): member for member in enum}


_BOWSTYLES: Final = _members(cf.AGB_bowstyles)
_AGE_GROUPS: Final = _members(cf.AGB_ages)
_GENDERS: Final = _members(cf.AGB_genders)


def _lookup(members: Mapping[str, Any], name: str, what: str) -> Any:
    try:
        return members[name]
    except KeyError:
        raise ValueError(f"archeryutils has no AGB {what} called {name!r}") from None


def bowstyle_enum(bowstyle: str) -> cf.AGB_bowstyles:
    """archeryutils' enum for a profile's bowstyle (``"recurve"`` -> ``RECURVE``).

    Raises:
        ValueError: for a name the enum does not have.
    """
    return _lookup(_BOWSTYLES, bowstyle, "bowstyle")


def age_group_enum(age_group: str) -> cf.AGB_ages:
    """archeryutils' enum for a profile's age group (``"over_50"`` -> ``OVER_50``).

    Raises:
        ValueError: for a name the enum does not have.
    """
    return _lookup(_AGE_GROUPS, age_group, "age group")


def gender_enum(gender: str) -> cf.AGB_genders:
    """archeryutils' enum for a profile's gender (``"open"`` -> ``OPEN``).

    Raises:
        ValueError: for a name the enum does not have.
    """
    return _lookup(_GENDERS, gender, "gender")


def current_handicap(round_info: RoundInfo, arrows_counted: int, score: int) -> float | None:
    """The AGB handicap for ``score`` over the first ``arrows_counted`` arrows of a round.

    The partial round keeps the real passes' targets, truncated to the arrows counted,
    so 36 arrows of a National are 36 arrows at 60 yards, not a pro-rata share of both
    distances.

    Returns:
        The handicap (a whole number, as in the published tables), or ``None`` when there
        is none: no arrows, a score of 0 or below, or one archeryutils refuses.
    """
    return _handicap(round_info.codename, arrows_counted, score)


def projection(
    state: ArcherState, summary: ScoreSummary, round_info: RoundInfo
) -> Projection | None:
    """Where ``state``'s score is heading, or where it ended up.

    Args:
        state: The archer's state (its profile and finished flag are used).
        summary: ``summarize(state, round_info)``.
        round_info: The archer's round.

    Returns:
        ``None`` while there is nothing to project: no end completed yet, or a score of
        0 over the completed ends. Otherwise an ``"on_track"`` projection from the
        completed ends, or an ``"achieved"`` one from the total once finished.
    """
    profile = state.profile
    if state.finished:
        return _project(
            round_info.codename, round_info.total_arrows, summary.total, profile, finished=True
        )
    if summary.ends_completed < 1:
        return None
    arrows = min(summary.ends_completed * round_info.end_size, round_info.total_arrows)
    score = sum(summary.end_totals)
    return _project(round_info.codename, arrows, score, profile, finished=False)


@lru_cache(maxsize=CACHE_SIZE)
def _project(
    codename: str, arrows: int, score: int, profile: Profile, *, finished: bool
) -> Projection | None:
    # Profile is frozen and hashable: its three fields are part of the cache key.
    info = get_round(codename)
    handicap = _handicap(codename, arrows, score)
    if handicap is None and not finished:
        return None
    if finished or arrows >= info.total_arrows or handicap is None:
        # Nothing left to shoot: the total is the outcome, not the table's expectation.
        # (A missing handicap here means finished with nothing scored.)
        predicted: int | None = score
    else:
        predicted = _score_for_round(codename, handicap)
    classification = None if predicted is None else _classify(info, predicted, profile)
    return Projection(
        handicap=handicap,
        predicted_score=predicted,
        classification=classification,
        status="achieved" if finished else "on_track",
    )


@lru_cache(maxsize=CACHE_SIZE)
def _handicap(codename: str, arrows: int, score: int) -> float | None:
    get_round(codename)  # an unknown round raises, whatever the score
    if score <= 0 or arrows <= 0:
        return None
    table = _score_table(codename, arrows)
    if table is not None:
        found = table.handicap(score)
        if found is not None:
            return found
    return _handicap_root(codename, arrows, score)


def _handicap_root(codename: str, arrows: int, score: int) -> float | None:
    """archeryutils' own answer: a root find, about 6 ms (the table's fallback)."""
    try:
        partial = _partial_round(get_round(codename), arrows)
        return float(hc.handicap_from_score(score, partial, _SCHEME, int_prec=True))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _ScoreTable:
    """The expected score at every whole handicap, for one round cut to some arrows.

    One vectorised archeryutils call (well under a millisecond) replaces a root find per
    score (about 6 ms each, on the event loop, for every new score an archer reaches).
    :meth:`handicap` answers as ``handicap_from_score(..., int_prec=True)`` does: from
    the first whole handicap at or past the exact root, step on while the rounded score
    still reaches ``score``. What the table cannot answer (a maximum score, a score
    beyond its ends) goes to archeryutils itself.
    """

    raw: tuple[float, ...]
    rounded: tuple[float, ...]
    max_score: float
    descending: tuple[float, ...] = ()
    """``raw`` negated (ascending), for the bisection."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "descending", tuple(-v for v in self.raw))

    def handicap(self, score: int) -> float | None:
        if score >= self.max_score:
            return None
        index = bisect_left(self.descending, -score)  # the first raw score <= score
        if index == 0 or index >= len(self.raw):
            return None
        above, below = self.raw[index - 1], self.raw[index]
        fraction = (above - score) / (above - below)  # where the root lies between them
        if not _ROOT_MARGIN < fraction < 1 - _ROOT_MARGIN:
            # The root is near a whole handicap: archeryutils' root finder (good to about
            # 0.01) may land either side of it, so only it can say which number it reports.
            return None
        while index + 1 < len(self.rounded) and self.rounded[index + 1] >= score:
            index += 1
        if index + 1 >= len(self.rounded):
            return None
        return float(_TABLE_LOW + index)


#: How near a whole handicap the root may lie before the table defers to archeryutils.
_ROOT_MARGIN: Final = 0.05


#: The AGB scheme's handicap range: the tables run over it in whole steps.
_TABLE_LOW: Final = -75
_TABLE_HIGH: Final = 300


@lru_cache(maxsize=CACHE_SIZE)
def _score_table(codename: str, arrows: int) -> _ScoreTable | None:
    partial = _partial_round(get_round(codename), arrows)
    scheme = hc.handicap_scheme(_SCHEME)
    handicaps = np.arange(_TABLE_LOW, _TABLE_HIGH + 1, dtype=float)
    try:
        raw = scheme.score_for_round(handicaps, partial, rounded_score=False)
        rounded = scheme.score_for_round(handicaps, partial, rounded_score=True)
    except ValueError:
        return None
    values = tuple(float(v) for v in raw)
    if any(b > a for a, b in pairwise(values)):
        return None  # not decreasing: the bisection would be wrong; ask archeryutils
    return _ScoreTable(values, tuple(float(v) for v in rounded), float(partial.max_score()))


@lru_cache(maxsize=CACHE_SIZE)
def _score_for_round(codename: str, handicap: float) -> int | None:
    info = get_round(codename)
    table = _score_table(codename, info.total_arrows)
    index = int(handicap) - _TABLE_LOW
    if table is not None and handicap == int(handicap) and 0 <= index < len(table.rounded):
        return int(table.rounded[index])
    full = info.archeryutils_round()
    try:
        return int(hc.score_for_round(handicap, full, _SCHEME, rounded_score=True))
    except ValueError:
        return None


def _partial_round(info: RoundInfo, arrows: int) -> au.Round:
    """The first ``arrows`` arrows of a round, as a round of its own."""
    full = info.archeryutils_round()
    if arrows >= info.total_arrows:
        return full
    passes = []
    remaining = arrows
    for p in full.passes:
        if remaining <= 0:
            break
        n = min(int(p.n_arrows), remaining)
        passes.append(au.Pass(n, p.target))
        remaining -= n
    return au.Round(f"{info.name} (first {arrows} arrows)", passes)


def _classify(info: RoundInfo, score: int, profile: Profile) -> str | None:
    calculate = _CLASSIFIERS.get(info.location)
    if calculate is None:
        return None
    try:
        result = calculate(
            score,
            info.codename,
            bowstyle_enum(profile.bowstyle),
            gender_enum(profile.gender),
            age_group_enum(profile.age_group),
        )
    except (ValueError, KeyError):
        # Not an AGB classification round, or a bowstyle/age the tables do not cover.
        return None
    return str(result)


_CLASSIFIERS: Final = {
    "outdoor": cf.calculate_agb_outdoor_classification,
    "indoor": cf.calculate_agb_indoor_classification,
    "field": cf.calculate_agb_field_classification,
}


def derived_values(state: ArcherState) -> DerivedValues | None:
    """What a browser cannot compute (archeryutils is Python), for the archer's own map.

    The shoot's actor stores this beside each archer's state in the same transaction as
    the write (``derived`` in ``docs/protocol.md``): ``[handicap, predicted score,
    classification, status]``, each possibly ``None``, or ``None`` as a whole while
    :func:`projection` has nothing to say (no end completed). Clients compute totals and
    positions from the arrows themselves; only these values need the handicap tables.

    The state must already be valid (the actor validates before writing).
    """
    info = get_round(state.round)
    proj = projection(state, summarize(state, info), info)
    if proj is None:
        return None
    handicap = None if proj.handicap is None else int(proj.handicap)
    return [handicap, proj.predicted_score, proj.classification, proj.status]
