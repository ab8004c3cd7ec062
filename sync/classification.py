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

archeryutils does the arithmetic, through tables (:mod:`sync.projection_tables`): each
of its calls costs half a millisecond to several, and the relay projects on every write.
So there are two ways to ask:

- :func:`projection` and :func:`derived_values` always answer, filling the tables first if
  they must (clients, the HTTP read model, tests: whoever may block);
- :func:`peek_projection` and :func:`peek_derived` read the tables only and answer
  :data:`~sync.projection_tables.MISSING` with a :class:`Need` when they lack something;
  the relay's actor uses these on the event loop and fills the need on a worker thread
  (:func:`fill`), then applies the answer (see :mod:`relay.projector`).

Both give the same answer for the same state, by construction: :func:`projection` is
"fill, then peek".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from archeryutils import classifications as cf

from . import projection_tables as tables
from .models import ArcherState, Need, ScoreSummary, checked, summarize
from .projection_tables import MISSING, Missing
from .rounds import RoundInfo, get_round

#: ``[handicap, predicted score, classification, status]`` as stored in the document.
DerivedValues = list[int | str | None]

__all__ = [
    "CACHE_SIZE",
    "DerivedValues",
    "Need",
    "Projection",
    "age_group_enum",
    "bowstyle_enum",
    "current_handicap",
    "derived_values",
    "fill",
    "gender_enum",
    "is_warm",
    "peek_derived",
    "peek_projection",
    "projection",
    "warm",
]

#: Entries kept per table (see :mod:`sync.projection_tables`).
CACHE_SIZE: Final = tables.CACHE_SIZE


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


def bowstyle_enum(bowstyle: str) -> cf.AGB_bowstyles:
    """archeryutils' enum for a profile's bowstyle (``"recurve"`` -> ``RECURVE``).

    Raises:
        ValueError: for a name the enum does not have.
    """
    return tables.enum_member("bowstyle", bowstyle)


def age_group_enum(age_group: str) -> cf.AGB_ages:
    """archeryutils' enum for a profile's age group (``"over_50"`` -> ``OVER_50``).

    Raises:
        ValueError: for a name the enum does not have.
    """
    return tables.enum_member("age group", age_group)


def gender_enum(gender: str) -> cf.AGB_genders:
    """archeryutils' enum for a profile's gender (``"open"`` -> ``OPEN``).

    Raises:
        ValueError: for a name the enum does not have.
    """
    return tables.enum_member("gender", gender)


def current_handicap(round_info: RoundInfo, arrows_counted: int, score: int) -> float | None:
    """The AGB handicap for ``score`` over the first ``arrows_counted`` arrows of a round.

    The partial round keeps the real passes' targets, truncated to the arrows counted,
    so 36 arrows of a National are 36 arrows at 60 yards, not a pro-rata share of both
    distances.

    Returns:
        The handicap (a whole number, as in the published tables), or ``None`` when there
        is none: no arrows, a score of 0 or below, or one archeryutils refuses.
    """
    codename = round_info.codename
    tables.fill_handicap(codename, arrows_counted, score)
    found = tables.lookup_handicap(codename, arrows_counted, score)
    assert not isinstance(found, Missing)
    return found


def need_of(state: ArcherState, summary: ScoreSummary, round_info: RoundInfo) -> Need | None:
    """What ``state``'s projection depends on; ``None`` while there is nothing to project
    (no end completed yet, and not finished)."""
    if state.finished:
        return Need(
            round_info.codename, round_info.total_arrows, summary.total, state.profile, True
        )
    if summary.ends_completed < 1:
        return None
    arrows = min(summary.ends_completed * round_info.end_size, round_info.total_arrows)
    return Need(round_info.codename, arrows, sum(summary.end_totals), state.profile, False)


def projection(
    state: ArcherState, summary: ScoreSummary, round_info: RoundInfo
) -> Projection | None:
    """Where ``state``'s score is heading, or where it ended up (filling the tables first
    if they lack something: up to a few milliseconds; see :func:`peek_projection`).

    Args:
        state: The archer's state (its profile and finished flag are used).
        summary: ``summarize(state, round_info)``.
        round_info: The archer's round.

    Returns:
        ``None`` while there is nothing to project: no end completed yet, or a score of
        0 over the completed ends. Otherwise an ``"on_track"`` projection from the
        completed ends, or an ``"achieved"`` one from the total once finished.
    """
    need = need_of(state, summary, round_info)
    if need is None:
        return None
    found = _peek(need)
    if isinstance(found, Missing):
        fill(need)
        found = _peek(need)
        assert not isinstance(found, Missing), need
    return found


def peek_projection(
    state: ArcherState, summary: ScoreSummary, round_info: RoundInfo
) -> Projection | Need | None:
    """:func:`projection` from the tables only: never calls archeryutils, and answers with
    the :class:`Need` to :func:`fill` when the tables lack something."""
    need = need_of(state, summary, round_info)
    if need is None:
        return None
    found = _peek(need)
    return need if isinstance(found, Missing) else found


#: Projections already put together, by need: a peek that hits costs one dict lookup.
_PROJECTIONS: dict[Need, Projection | None] = {}


def _peek(need: Need) -> Projection | Missing | None:
    done = _PROJECTIONS.get(need, MISSING)
    if not isinstance(done, Missing):
        return done
    found = _assemble(need)
    if not isinstance(found, Missing):
        if len(_PROJECTIONS) >= CACHE_SIZE:
            _PROJECTIONS.clear()  # the tables stay; re-assembling is a few microseconds
        _PROJECTIONS[need] = found
    return found


def _assemble(need: Need) -> Projection | Missing | None:
    codename, arrows, score = need.round, need.arrows, need.score
    handicap = tables.lookup_handicap(codename, arrows, score)
    if isinstance(handicap, Missing):
        return MISSING
    if handicap is None and not need.finished:
        return None
    predicted: int | Missing | None
    if need.finished or arrows >= get_round(codename).total_arrows or handicap is None:
        # Nothing left to shoot: the total is the outcome, not the table's expectation.
        # (A missing handicap here means finished with nothing scored.)
        predicted = score
    else:
        predicted = tables.lookup_full_score(codename, handicap)
        if isinstance(predicted, Missing):
            return MISSING
    classification = (
        None
        if predicted is None
        else tables.lookup_classification(codename, need.profile, predicted)
    )
    if isinstance(classification, Missing):
        return MISSING
    return Projection(
        handicap=handicap,
        predicted_score=predicted,
        classification=classification,
        status="achieved" if need.finished else "on_track",
    )


def fill(need: Need) -> None:
    """Put everything ``need``'s projection depends on into the tables, calling
    archeryutils as much as it takes (run it on a worker thread where that matters).
    Also warms the round's other tables, so the archer's next ends are hits."""
    codename = need.round
    tables.warm(codename, need.profile)
    tables.fill_handicap(codename, need.arrows, need.score)
    handicap = tables.lookup_handicap(codename, need.arrows, need.score)
    if isinstance(handicap, float):
        tables.fill_full_score(codename, handicap)


def warm(state: ArcherState) -> None:
    """Build the tables an archer in ``state`` will need as they shoot (see
    :func:`sync.projection_tables.warm`; the state must be valid)."""
    tables.warm(state.round, state.profile)


def is_warm(state: ArcherState) -> bool:
    """Whether :func:`warm` has been done for the state's round and profile."""
    return tables.is_warm(state.round, state.profile)


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
    return _derived(projection(state, summarize(state, info), info))


def peek_derived(state: ArcherState) -> DerivedValues | Need | None:
    """:func:`derived_values` from the tables only (see :func:`peek_projection`); the
    relay's actor passes this to its document. ``None`` for an invalid state."""
    valid = checked(state)
    if valid is None:
        return None
    found = peek_projection(state, valid[1], valid[0])
    return found if isinstance(found, Need) else _derived(found)


def _derived(proj: Projection | None) -> DerivedValues | None:
    if proj is None:
        return None
    handicap = None if proj.handicap is None else int(proj.handicap)
    return [handicap, proj.predicted_score, proj.classification, proj.status]
