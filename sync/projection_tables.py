"""The tables behind on-track classifications, filled off the event loop and read on it.

Theory of operation
-------------------
A projection (:mod:`sync.classification`) needs three answers from archeryutils: the
handicap of a score over the first arrows of a round, the expected score on the whole
round at that handicap, and the classification that score earns. Each archeryutils call
costs from half a millisecond (a vectorised score table) to several (a root find, a
classification), which the relay cannot spend inside a write. So the answers live in
tables, and this module splits the work in two:

- **lookups** (:func:`lookup_handicap`, :func:`lookup_full_score`,
  :func:`lookup_classification`) only read tables and never call archeryutils; what is not
  there yet comes back as :data:`MISSING`. The relay's actor uses only these.
- **fills** (:func:`fill`, :func:`warm`) call archeryutils and store what they found. The
  relay runs them on a worker thread and applies the result when it comes back; code
  without an event loop (the HTTP read model, tests, replicas) calls them directly.

The tables, each keyed by what its answers depend on:

- per (round, arrows counted): the expected score at every whole handicap (one
  vectorised call), which answers a handicap by bisection as
  ``handicap_from_score(..., int_prec=True)`` does;
- per (round, arrows counted, score): archeryutils' own root find, only for the scores
  whose root lies within a hair of a whole handicap (where the root finder, good to about
  0.01, decides which number it reports) or that the table cannot answer;
- per (round, profile): the classification for every score, as the few scores where it
  changes (archeryutils' thresholds) and the classification from each one on (archeryutils
  picks the first class whose threshold the score reaches, so the answer only changes at
  thresholds; each is asked of archeryutils itself).

Threads: fills may run on several worker threads while the event loop reads. Every
table is a dict written under one lock (so eviction never races another writer) and read
without it (a single ``dict.get`` is atomic in CPython); an entry is complete before it
is stored, and never changes afterwards. Two threads filling one key compute the same
value twice, which is harmless.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Final, TypeVar

import archeryutils as au
import numpy as np
from archeryutils import classifications as cf
from archeryutils import handicaps as hc

from .models import Profile
from .rounds import RoundInfo, get_round

__all__ = [
    "CACHE_SIZE",
    "MISSING",
    "Missing",
    "classify_directly",
    "enum_member",
    "fill_classification",
    "fill_full_score",
    "fill_handicap",
    "is_warm",
    "lookup_classification",
    "lookup_full_score",
    "lookup_handicap",
    "warm",
]

#: Entries kept per table. A table per (round, arrows counted) is a few KB; a busy relay
#: needs a few dozen rounds with a dozen ends each.
CACHE_SIZE: Final = 4096

#: The handicap scheme used throughout (Archery GB's, which its classifications use).
SCHEME: Final = "AGB"

#: The AGB scheme's handicap range: the tables run over it in whole steps.
TABLE_LOW: Final = -75
TABLE_HIGH: Final = 300

#: How near a whole handicap the root may lie before the table defers to archeryutils.
ROOT_MARGIN: Final = 0.05


class Missing:
    """The answer is not in the tables yet: fill them (off the event loop) and ask again."""

    _instance: Missing | None = None

    def __new__(cls) -> Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = Missing()

V = TypeVar("V")


class _Table(dict[Hashable, V]):
    """A bounded dict written under a lock (oldest entries go first) and read without."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Hashable, value: V) -> None:
        with _LOCK:
            while len(self) >= self.size:
                del self[next(iter(self))]
            self[key] = value


_LOCK = threading.Lock()


def _cached(table: _Table[V], key: Hashable, compute: Callable[[], V]) -> V:
    found = table.get(key, MISSING)
    if isinstance(found, Missing):
        value = compute()
        table.put(key, value)
        return value
    return found


# -- handicaps from a score ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreTable:
    """The expected score at every whole handicap, for one round cut to some arrows.

    :meth:`handicap` answers as ``handicap_from_score(..., int_prec=True)`` does: from the
    first whole handicap at or past the exact root, step on while the rounded score still
    reaches ``score``. ``None`` means the table cannot say (a maximum score, a score beyond
    its ends, a root near a whole handicap): only archeryutils' root find can.
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
        if not ROOT_MARGIN < fraction < 1 - ROOT_MARGIN:
            return None
        while index + 1 < len(self.rounded) and self.rounded[index + 1] >= score:
            index += 1
        if index + 1 >= len(self.rounded):
            return None
        return float(TABLE_LOW + index)


_SCORE_TABLES: _Table[ScoreTable | None] = _Table()
_ROOTS: _Table[float | None] = _Table()
_FULL_SCORES: _Table[int | None] = _Table()
_CLASS_TABLES: _Table[ClassTable | None] = _Table()


def score_table(codename: str, arrows: int) -> ScoreTable | None:
    """The table for the first ``arrows`` arrows of a round (built if missing: one
    vectorised archeryutils call); ``None`` where archeryutils cannot make one."""
    return _cached(_SCORE_TABLES, (codename, arrows), lambda: _build_score_table(codename, arrows))


def _build_score_table(codename: str, arrows: int) -> ScoreTable | None:
    partial = partial_round(get_round(codename), arrows)
    scheme = hc.handicap_scheme(SCHEME)
    handicaps = np.arange(TABLE_LOW, TABLE_HIGH + 1, dtype=float)
    try:
        raw = scheme.score_for_round(handicaps, partial, rounded_score=False)
        rounded = scheme.score_for_round(handicaps, partial, rounded_score=True)
    except ValueError:
        return None
    values = tuple(float(v) for v in raw)
    if any(b > a for a, b in pairwise(values)):
        return None  # not decreasing: the bisection would be wrong; ask archeryutils
    return ScoreTable(values, tuple(float(v) for v in rounded), float(partial.max_score()))


def handicap_root(codename: str, arrows: int, score: int) -> float | None:
    """archeryutils' own answer: a root find, about 6 ms (the tables' fallback)."""
    try:
        partial = partial_round(get_round(codename), arrows)
        return float(hc.handicap_from_score(score, partial, SCHEME, int_prec=True))
    except ValueError:
        return None


def lookup_handicap(codename: str, arrows: int, score: int) -> float | Missing | None:
    """The handicap of ``score`` over the first ``arrows`` arrows, from the tables only."""
    if score <= 0 or arrows <= 0:
        return None
    table = _SCORE_TABLES.get((codename, arrows), MISSING)
    if isinstance(table, ScoreTable):
        found = table.handicap(score)
        if found is not None:
            return found
    elif isinstance(table, Missing):
        return MISSING
    return _ROOTS.get((codename, arrows, score), MISSING)


def fill_handicap(codename: str, arrows: int, score: int) -> None:
    """Put what :func:`lookup_handicap` needs for these arguments in the tables."""
    if score <= 0 or arrows <= 0:
        return
    table = score_table(codename, arrows)
    if table is not None and table.handicap(score) is not None:
        return
    _cached(_ROOTS, (codename, arrows, score), lambda: handicap_root(codename, arrows, score))


# -- the expected score on the whole round -------------------------------------------------


def lookup_full_score(codename: str, handicap: float) -> int | Missing | None:
    """The expected (rounded) score on the whole round at ``handicap``, from the tables."""
    info = get_round(codename)
    table = _SCORE_TABLES.get((codename, info.total_arrows), MISSING)
    if isinstance(table, Missing):
        return MISSING
    index = int(handicap) - TABLE_LOW
    if table is not None and handicap == int(handicap) and 0 <= index < len(table.rounded):
        return int(table.rounded[index])
    return _FULL_SCORES.get((codename, handicap), MISSING)


def fill_full_score(codename: str, handicap: float) -> None:
    """Put what :func:`lookup_full_score` needs for these arguments in the tables."""
    info = get_round(codename)
    score_table(codename, info.total_arrows)
    if not isinstance(lookup_full_score(codename, handicap), Missing):
        return

    def compute() -> int | None:
        try:
            full = info.archeryutils_round()
            return int(hc.score_for_round(handicap, full, SCHEME, rounded_score=True))
        except ValueError:
            return None

    _cached(_FULL_SCORES, (codename, handicap), compute)


# -- classifications -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClassTable:
    """One (round, profile)'s classification for every score from 0 to the maximum."""

    starts: tuple[int, ...]
    """Ascending scores where the classification changes; the first is 0."""
    names: tuple[str | None, ...]
    """The classification from each start on (``None`` where archeryutils refuses)."""
    max_score: int

    def classify(self, score: int) -> str | None:
        if not 0 <= score <= self.max_score:
            return None  # archeryutils refuses a score outside the round's range
        return self.names[bisect_right(self.starts, score) - 1]


_CLASSIFIERS: Final = {
    "outdoor": (cf.calculate_agb_outdoor_classification, cf.agb_outdoor_classification_scores),
    "indoor": (cf.calculate_agb_indoor_classification, cf.agb_indoor_classification_scores),
    "field": (cf.calculate_agb_field_classification, cf.agb_field_classification_scores),
}


def _members(enum: Any) -> Mapping[str, Any]:
    # Iterating the enum yields only the canonical members, so the deprecated AGE_*
    # aliases (which warn) and attribute names like "__class__" are never accepted.
    return {member.name.lower(): member for member in enum}


_ENUMS: Final = {
    "bowstyle": _members(cf.AGB_bowstyles),
    "age group": _members(cf.AGB_ages),
    "gender": _members(cf.AGB_genders),
}


def enum_member(what: str, name: str) -> Any:
    """archeryutils' enum member for a profile value (``what``: ``"bowstyle"``, ``"age
    group"`` or ``"gender"``).

    Raises:
        ValueError: for a name the enum does not have.
    """
    try:
        return _ENUMS[what][name]
    except KeyError:
        raise ValueError(f"archeryutils has no AGB {what} called {name!r}") from None


def profile_enums(profile: Profile) -> tuple[Any, Any, Any]:
    """archeryutils' (bowstyle, gender, age group) enums; ``ValueError`` for unknown names."""
    return (
        enum_member("bowstyle", profile.bowstyle),
        enum_member("gender", profile.gender),
        enum_member("age group", profile.age_group),
    )


def classify_directly(info: RoundInfo, score: int, profile: Profile) -> str | None:
    """archeryutils' own classification of ``score`` (about 1-2 ms; the tables' source)."""
    pair = _CLASSIFIERS.get(info.location)
    if pair is None:
        return None
    try:
        return str(pair[0](score, info.codename, *profile_enums(profile)))
    except (ValueError, KeyError):
        # Not an AGB classification round, or a bowstyle/age the tables do not cover.
        return None


def _build_class_table(codename: str, profile: Profile) -> ClassTable | None:
    info = get_round(codename)
    pair = _CLASSIFIERS.get(info.location)
    if pair is None:
        return None
    try:
        thresholds = pair[1](info.codename, *profile_enums(profile))
    except (ValueError, KeyError):
        return None
    starts = sorted({0, *(int(t) for t in thresholds if 0 <= t <= info.max_score)})
    names = tuple(classify_directly(info, start, profile) for start in starts)
    return ClassTable(tuple(starts), names, info.max_score)


def lookup_classification(codename: str, profile: Profile, score: int) -> str | Missing | None:
    """The classification ``score`` earns on the round, from the tables only."""
    table = _CLASS_TABLES.get((codename, profile), MISSING)
    if isinstance(table, ClassTable):
        return table.classify(score)
    return None if table is None else MISSING


def fill_classification(codename: str, profile: Profile) -> None:
    """Put the (round, profile)'s classification table in the tables."""
    _cached(_CLASS_TABLES, (codename, profile), lambda: _build_class_table(codename, profile))


def warm(codename: str, profile: Profile) -> None:
    """Build every table an archer on this round with this profile will need: the score
    table at each end's arrow count and for the whole round, and the classification
    table (a few milliseconds in all, on a worker thread). Root finds are left for the
    scores that need one."""
    info = get_round(codename)
    for end in range(1, info.total_ends + 1):
        score_table(codename, min(end * info.end_size, info.total_arrows))
    score_table(codename, info.total_arrows)
    fill_classification(codename, profile)


def is_warm(codename: str, profile: Profile) -> bool:
    """Whether :func:`warm` has built this round's whole-round and classification tables
    (a cheap check the relay makes on every write, to warm ahead of need)."""
    info = get_round(codename)
    return (codename, profile) in _CLASS_TABLES and (codename, info.total_arrows) in _SCORE_TABLES


def partial_round(info: RoundInfo, arrows: int) -> au.Round:
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
