"""Notices for phones: who has taken the lead, and where everyone stands.

Theory of operation
-------------------
:func:`next_notices` compares two successive leaderboards and returns what is worth
telling the archers, plus the memory it needs next time (:class:`NotifierState`). It is
pure, so the relay can call it after every applied write and tests can replay a shoot.

The rules are per round group, because positions only mean something within a round
(the first leaderboard compared archers across rounds and told only the mover):

* A group's progress is the number of ends *everyone* in it has completed. Archers shoot
  an end, then walk to the target together; counting by the slowest archer means a
  notice describes a moment the whole group has reached, and a fast scorer cannot
  trigger one per arrow.
* Digest: every 2 ends of that progress, one line per archer (position, of how many,
  and the change since the last digest), so every archer hears where they stand, not
  only the one who moved. Two ends is the product's "at most every 2 ends"; per arrow
  would be noise on a phone. If a late joiner pulls the progress back, the next digest
  waits until the group passes the last one again rather than repeating ends.
* Lead: announced when a different archer becomes the sole leader (a shared first place
  is not a lead change) with a score above 0, and at most once per 2 ends of progress in
  that round, so two archers trading the lead arrow by arrow cannot flood phones. The
  very first lead in a round is announced at once.
* A group whose standings did not change between the two boards produces nothing: a
  write in one round never re-announces another, and replaying the same board is silent.
* An archer who changes round or leaves simply drops out of the group; a round nobody
  shoots any more is forgotten, so a group re-formed later starts afresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from .leaderboard import Leaderboard, RoundGroup, Standing

__all__ = [
    "DIGEST_EVERY_ENDS",
    "LEAD_EVERY_ENDS",
    "Notice",
    "NotifierState",
    "RoundMemory",
    "next_notices",
    "ordinal",
]

#: Ends of group progress between two digests.
DIGEST_EVERY_ENDS: Final = 2
#: Minimum ends of group progress between two lead notices in one round.
LEAD_EVERY_ENDS: Final = 2


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification, addressed by round; the relay decides who receives it."""

    kind: Literal["lead", "digest"]
    round: str
    """archeryutils code name of the round group it is about."""
    archer_id: str
    """The subject: the new leader, or the archer this digest line is for."""
    text: str
    """A sentence to show as is, e.g. ``"Chris has taken the lead!"``."""
    position: int | None
    of: int | None
    """How many archers are in the group."""
    change: int | None
    """Places gained since the last digest (negative: lost); ``None`` if there was none."""
    ends: int
    """Ends everyone in the round had completed when the notice was made."""


def _frozen_map(items: Mapping[str, int] | None = None) -> Mapping[str, int]:
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True, slots=True)
class RoundMemory:
    """What was last announced for one round."""

    digest_ends: int = 0
    """Group progress (ends) at the last digest; 0 before the first."""
    digest_positions: Mapping[str, int] = field(default_factory=_frozen_map)
    """Each archer's position at the last digest, by archer id."""
    leader: str | None = None
    """The archer last announced as leader."""
    lead_ends: int | None = None
    """Group progress when that lead was announced; ``None`` before the first."""


@dataclass(frozen=True, slots=True)
class NotifierState:
    """Memory between calls to :func:`next_notices`, per round code name."""

    rounds: Mapping[str, RoundMemory] = field(default_factory=lambda: MappingProxyType({}))


def next_notices(
    state: NotifierState, before: Leaderboard, after: Leaderboard
) -> tuple[NotifierState, tuple[Notice, ...]]:
    """The notices that going from ``before`` to ``after`` calls for.

    Args:
        state: What was announced so far (``NotifierState()`` for a new shoot).
        before: The board the previous call was given as ``after``.
        after: The board now.

    Returns:
        The state to pass next time, and the notices in board order (per group: the lead
        notice first, then the digest lines by position).
    """
    memories: dict[str, RoundMemory] = {}
    notices: list[Notice] = []
    for group in after.groups:
        memory = state.rounds.get(group.round, RoundMemory())
        if _signature(before.group(group.round)) != _signature(group):
            memory = _notices_for_group(group, memory, notices)
        memories[group.round] = memory
    return NotifierState(rounds=MappingProxyType(memories)), tuple(notices)


def _signature(group: RoundGroup | None) -> tuple[tuple[str, str, int, int, int], ...] | None:
    """What a group's notices depend on; other fields (overall position...) do not count."""
    if group is None:
        return None
    return tuple(
        (s.archer_id, s.name, s.position, s.total, s.ends_completed) for s in group.standings
    )


def _notices_for_group(group: RoundGroup, memory: RoundMemory, out: list[Notice]) -> RoundMemory:
    standings = group.standings
    if not standings:
        return memory
    ends = min(s.ends_completed for s in standings)
    of = len(standings)

    leaders = [s for s in standings if s.position == 1]
    if (
        of >= 2
        and len(leaders) == 1
        and leaders[0].archer_id != memory.leader
        and leaders[0].total > 0
        and (memory.lead_ends is None or ends >= memory.lead_ends + LEAD_EVERY_ENDS)
    ):
        leader = leaders[0]
        out.append(
            Notice(
                kind="lead",
                round=group.round,
                archer_id=leader.archer_id,
                text=f"{leader.name} has taken the lead!",
                position=1,
                of=of,
                change=None,
                ends=ends,
            )
        )
        memory = RoundMemory(
            digest_ends=memory.digest_ends,
            digest_positions=memory.digest_positions,
            leader=leader.archer_id,
            lead_ends=ends,
        )

    if ends >= DIGEST_EVERY_ENDS and (
        ends // DIGEST_EVERY_ENDS > memory.digest_ends // DIGEST_EVERY_ENDS
    ):
        for s in standings:
            # No entry: the first digest of the round, or the archer joined since.
            previous = memory.digest_positions.get(s.archer_id)
            change = None if previous is None else previous - s.position
            out.append(_digest_line(group, s, of, change, ends))
        memory = RoundMemory(
            digest_ends=ends,
            digest_positions=_frozen_map({s.archer_id: s.position for s in standings}),
            leader=memory.leader,
            lead_ends=memory.lead_ends,
        )
    return memory


def _digest_line(group: RoundGroup, s: Standing, of: int, change: int | None, ends: int) -> Notice:
    shared = sum(1 for other in group.standings if other.position == s.position) > 1
    place = ("joint " if shared else "") + ordinal(s.position)
    if change is None:
        moved = ""
    elif change > 0:
        moved = f" (up {change})"
    elif change < 0:
        moved = f" (down {-change})"
    else:
        moved = " (no change)"
    return Notice(
        kind="digest",
        round=group.round,
        archer_id=s.archer_id,
        text=f"{s.name} is {place} of {of} after {ends} ends{moved}.",
        position=s.position,
        of=of,
        change=change,
        ends=ends,
    )


def ordinal(n: int) -> str:
    """``1`` -> ``"1st"``, ``2`` -> ``"2nd"``, ``11`` -> ``"11th"``, ``22`` -> ``"22nd"``."""
    teen = n % 100 in (11, 12, 13)
    suffix = "th" if teen else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
