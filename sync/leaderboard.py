"""The leaderboard: archers ranked within their round, and across rounds by handicap.

Scores on different rounds cannot be compared (a 500 on a National and a 500 on a
York mean very different things), which the first leaderboard got wrong. So the
ranking that decides positions is per round, with archery's own tie-breaks:

* imperial 5-zone rounds and Worcester rank equal scores by hits, then golds;
* metric rounds rank equal scores by tens (X included), then Xs.

Archers still equal on every key share the position (1, 2, 2, 4), as at a tournament;
for display they are listed by name, then id, so every replica shows the same order.

The cross-round ranking is by current AGB handicap (lower is better), which is what
handicaps are for: comparing archers on different rounds. Archers without one yet
(no end completed, or nothing scored) come last, by name.

Everything is derived from the registers; nothing is stored. :func:`build_leaderboard`
builds a board from scratch (validation and summaries are cached per frozen archer
state, the archeryutils work in :mod:`sync.classification`'s tables). The relay does not
rebuild it on every write: :class:`sync.live_board.LiveBoard` keeps the same board up to
date one register at a time, and a property test holds the two to the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter, itemgetter
from typing import Any, Final, Literal, TypeVar

from .classification import Need, Projection, projection
from .models import ArcherState, Profile, ScoreSummary, checked
from .register import Register, merge
from .rounds import RoundInfo

#: How a board gets an archer's projection: :func:`sync.classification.projection`
#: (always answers), or :func:`~sync.classification.peek_projection` (tables only; a
#: :class:`~sync.classification.Need` shows as no projection until it is filled).
Projector = Callable[[ArcherState, ScoreSummary, RoundInfo], "Projection | Need | None"]

__all__ = [
    "Entry",
    "Leaderboard",
    "OrderKey",
    "Projector",
    "RoundGroup",
    "Standing",
    "base_standing",
    "build_leaderboard",
    "order_key",
    "overall_key",
    "overall_positions",
    "placed",
    "rank",
    "ranking_key",
]

_T = TypeVar("_T")

OrderKey = tuple[int, int, int, str, str]
"""An archer's place in their round's display order (:func:`order_key`)."""


@dataclass(frozen=True, slots=True)
class Standing:
    """One archer's line on the leaderboard; everything is derived from their arrows."""

    archer_id: str
    name: str
    round: str
    """archeryutils code name of the round, e.g. ``"national"``."""
    round_name: str
    """The round's display name, e.g. ``"National"``."""
    profile: Profile
    arrows_shot: int
    total: int
    hits: int
    golds: int
    """Top-ring arrows: 9s on imperial faces; 10s and Xs on metric faces."""
    xs: int
    ends_completed: int
    end_totals: tuple[int, ...]
    total_arrows: int
    """Arrows in the whole round."""
    max_score: int
    finished: bool
    position: int
    """Position within the round group; archers tied on every ranking key share it."""
    behind: int | None
    """Points behind the archer listed directly above; ``None`` for the first."""
    handicap: float | None
    predicted_score: int | None
    classification: str | None
    classification_status: Literal["on_track", "achieved"] | None
    overall_position: int | None
    """Position in the cross-round ranking by handicap; ``None`` without a handicap."""

    def to_dict(self) -> dict[str, Any]:
        """The standing as plain JSON-able data."""
        return {
            "archer_id": self.archer_id,
            "name": self.name,
            "round": self.round,
            "round_name": self.round_name,
            "profile": {
                "bowstyle": self.profile.bowstyle,
                "age_group": self.profile.age_group,
                "gender": self.profile.gender,
            },
            "arrows_shot": self.arrows_shot,
            "total": self.total,
            "hits": self.hits,
            "golds": self.golds,
            "xs": self.xs,
            "ends_completed": self.ends_completed,
            "end_totals": list(self.end_totals),
            "total_arrows": self.total_arrows,
            "max_score": self.max_score,
            "finished": self.finished,
            "position": self.position,
            "behind": self.behind,
            "handicap": self.handicap,
            "predicted_score": self.predicted_score,
            "classification": self.classification,
            "classification_status": self.classification_status,
            "overall_position": self.overall_position,
        }


_STANDING_FIELDS: Final = tuple(f.name for f in fields(Standing))
_get_fields: Final = attrgetter(*_STANDING_FIELDS)


@dataclass(frozen=True, slots=True)
class RoundGroup:
    """The archers shooting one round, in ranking order."""

    round: str
    round_name: str
    standings: tuple[Standing, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "round_name": self.round_name,
            "standings": [s.to_dict() for s in self.standings],
        }


@dataclass(frozen=True, slots=True)
class Leaderboard:
    """The whole shoot's leaderboard: per-round groups and the cross-round ranking."""

    groups: tuple[RoundGroup, ...] = ()
    """Largest group first, then by round name."""
    overall: tuple[Standing, ...] = ()
    """Every archer, by handicap (lower first); those without one last, by name."""
    _by_id: dict[str, Standing] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def standing(self, archer_id: str) -> Standing | None:
        """The archer's standing, or ``None`` if they are not on the board."""
        if not self._by_id and self.overall:
            # Built on first use: the relay makes a board per write and rarely asks.
            self._by_id.update((s.archer_id, s) for s in self.overall)
        return self._by_id.get(archer_id)

    def group(self, round_codename: str) -> RoundGroup | None:
        """The group shooting a round, or ``None`` if nobody is."""
        for group in self.groups:
            if group.round == round_codename:
                return group
        return None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data for the HTTP API and the CLI."""
        return {
            "groups": [g.to_dict() for g in self.groups],
            "overall": [s.to_dict() for s in self.overall],
        }


@dataclass(frozen=True, slots=True)
class Entry:
    archer_id: str
    state: ArcherState
    info: RoundInfo
    summary: ScoreSummary


def build_leaderboard(
    registers: Iterable[Register], project: Projector = projection
) -> Leaderboard:
    """Rank every archer still in the shoot.

    Args:
        registers: The shoot's registers, in any order. Archers who left are left out.
            A register whose state breaks the round's rules is skipped (the relay
            validates before writing; this only keeps one bad value from hiding the
            whole board). Two registers for one archer are merged as the register does.
        project: Where projections come from (see :data:`Projector`).

    Returns:
        The same board for the same registers, whatever their order.
    """
    winners: dict[str, tuple[Register, RoundInfo, ScoreSummary]] = {}
    for register in registers:
        valid = checked(register.state)
        if valid is None:
            continue
        current = winners.get(register.archer_id)
        if current is None or merge(current[0], register) is register:
            winners[register.archer_id] = (register, *valid)

    by_round: dict[str, list[Entry]] = {}
    for register, info, summary in winners.values():
        state = register.state
        if state.left:
            continue
        entry = Entry(register.archer_id, state, info, summary)
        by_round.setdefault(info.codename, []).append(entry)

    ranked = [
        [placed(base_standing(e, project), p, b, None) for e, p, b in rank(entries)]
        for entries in by_round.values()
    ]
    overall_positions = _overall_positions([s for group in ranked for s in group])

    groups = tuple(
        RoundGroup(
            round=group[0].round,
            round_name=group[0].round_name,
            standings=tuple(_with_overall(s, overall_positions) for s in group),
        )
        for group in sorted(ranked, key=lambda g: (-len(g), g[0].round_name, g[0].round))
    )
    everyone = [s for group in groups for s in group.standings]
    overall = tuple(sorted(everyone, key=overall_key))
    return Leaderboard(groups=groups, overall=overall)


def ranking_key(entry: Entry) -> tuple[int, int, int]:
    """Higher is better: the score, then the round's two tie-breaks."""
    s = entry.summary
    if entry.info.tie_break == "hits":
        return (s.total, s.hits, s.golds)
    return (s.total, s.golds, s.xs)


def _competition_positions(items: Sequence[_T], key: Callable[[_T], object]) -> list[int]:
    """Positions 1, 2, 2, 4...: items with equal keys share the better position.

    ``items`` must already be sorted so that equal keys are adjacent.
    """
    positions: list[int] = []
    for index, item in enumerate(items):
        if index and key(item) == key(items[index - 1]):
            positions.append(positions[-1])
        else:
            positions.append(index + 1)
    return positions


def order_key(e: Entry) -> OrderKey:
    """Display order within a group: by the ranking, then name, then id."""
    total, first, second = ranking_key(e)
    return (-total, -first, -second, e.state.name, e.archer_id)


def rank(entries: list[Entry]) -> list[tuple[Entry, int, int | None]]:
    """A group's entries in order, each with its position and points behind the one above.

    Each entry's key is made once: the live board re-ranks the writer's round on every
    write.
    """
    keyed = sorted([(order_key(entry), entry) for entry in entries], key=itemgetter(0))
    ranked: list[tuple[Entry, int, int | None]] = []
    position, score, total = 0, None, 0
    for index, (key, entry) in enumerate(keyed):
        if key[:3] != score:  # competition ranking: a tie shares the better position
            position, score = index + 1, key[:3]
        ranked.append((entry, position, None if index == 0 else total - entry.summary.total))
        total = entry.summary.total
    return ranked


def base_standing(entry: Entry, project: Projector) -> Standing:
    """The archer's line before it is placed: position 0, no overall position."""
    state, info, summary = entry.state, entry.info, entry.summary
    proj = project(state, summary, info)
    if isinstance(proj, Need):
        proj = None  # not in the tables yet: shown without, until it is filled
    return Standing(
        archer_id=entry.archer_id,
        name=state.name,
        round=info.codename,
        round_name=info.name,
        profile=state.profile,
        arrows_shot=summary.arrows_shot,
        total=summary.total,
        hits=summary.hits,
        golds=summary.golds,
        xs=summary.xs,
        ends_completed=summary.ends_completed,
        end_totals=summary.end_totals,
        total_arrows=info.total_arrows,
        max_score=info.max_score,
        finished=state.finished,
        position=0,
        behind=None,
        handicap=None if proj is None else proj.handicap,
        predicted_score=None if proj is None else proj.predicted_score,
        classification=None if proj is None else proj.classification,
        classification_status=None if proj is None else proj.status,
        overall_position=None,
    )


def placed(
    base: Standing, position: int, behind: int | None, overall_position: int | None
) -> Standing:
    """``base`` at its place: ``dataclasses.replace`` without its checks, which cost more
    than everything else a write does to the board."""
    line = object.__new__(Standing)
    put = object.__setattr__
    for name, value in zip(_STANDING_FIELDS, _get_fields(base), strict=True):
        put(line, name, value)
    put(line, "position", position)
    put(line, "behind", behind)
    put(line, "overall_position", overall_position)
    return line


def overall_key(s: Standing) -> tuple[bool, float, str, str]:
    return (s.handicap is None, s.handicap or 0.0, s.name, s.archer_id)


def _overall_positions(standings: list[Standing]) -> dict[str, int]:
    """Cross-round positions by handicap; equal handicaps share a position."""
    rated = sorted((s for s in standings if s.handicap is not None), key=overall_key)
    return overall_positions([(s.handicap, s.archer_id) for s in rated])


def overall_positions(rated: Sequence[tuple[float | None, str]]) -> dict[str, int]:
    """Positions 1, 2, 2, 4... by handicap, for ``(handicap, archer id)`` pairs already in
    overall order."""
    positions = _competition_positions(rated, lambda pair: pair[0])
    return {aid: p for (_, aid), p in zip(rated, positions, strict=True)}


def _with_overall(s: Standing, positions: dict[str, int]) -> Standing:
    position = positions.get(s.archer_id)
    if position is None:
        return s
    return placed(s, s.position, s.behind, position)
