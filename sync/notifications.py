"""Notices for phones: who has taken the lead, and where everyone stands.

Theory of operation
-------------------
:func:`next_notices` compares two successive leaderboards and returns what is worth
telling the archers, plus the memory it needs next time (:class:`NotifierState`). It is
pure, so the relay can call it after every applied write and tests can replay a shoot.

The memory must outlive the relay's actor: kept only in the actor, a relay restart, an
idle unload or a new owner started from a fresh memory and announced every lead again.
So :meth:`NotifierState.doc_changes` turns what changed into plain data that the actor
stores in the shoot's document right after the write that changed it (see
:meth:`sync.document.ShootDocument.remember_notices`; the relay sends the notices only
once that is durable), and :meth:`NotifierState.from_doc` reads it back when the shoot
is loaded. A shoot saved before the memory was kept is handled by
:func:`assume_announced`, which takes the loaded board as already told.

The rules are per round group, because positions only mean something within a round:

* **Never for one archer alone.** A group of one gets neither lead notices nor digests
  (nobody to be ahead of; "Pat is 1st of 1" is noise).
* **Digest.** A group's progress is the number of ends *everyone* in it has completed.
  Archers shoot an end, then walk to the target together; counting by the slowest archer
  means a digest describes a moment the whole group has reached. Every 2 ends of that
  progress, one line per archer (position, of how many, and the change since the last
  digest), so every archer hears where they stand, not only the one who moved. If a late
  joiner or a corrected score pulls the progress back, the next digest waits until the
  group passes the last one again: ends already covered are never repeated.
* **Lead.** Announced when a different archer becomes the sole leader (a shared first
  place is not a lead change) with a score above 0, by scoring: an archer who was alone
  in the round and is then joined by others has not *taken* the lead, and is remembered
  as the leader without a notice. An overtake is announced at once, but one archer is
  announced as leader at most once per 2 of their own completed ends, so two archers
  trading the lead arrow by arrow cannot flood phones. A lead held back that way is
  announced on a later board if the archer still leads once the 2 ends have passed, so
  the last announced leader is never wrong for long (the clients hide a lead notice
  whose archer no longer leads).
* **Once per real event.** A group whose standings did not change between the two boards
  produces nothing (a write in one round never re-announces another, and replaying a
  board is silent), and the leader last announced is never announced again until
  someone else has been.
* An archer who changes round or leaves drops out of the group; a round nobody shoots
  any more is forgotten, so a group re-formed later starts afresh.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

from .leaderboard import Leaderboard, RoundGroup, Standing

__all__ = [
    "DIGEST_EVERY_ENDS",
    "LEAD_EVERY_ENDS",
    "Notice",
    "NotifierState",
    "RoundMemory",
    "assume_announced",
    "next_notices",
    "ordinal",
]

#: Ends of group progress between two digests.
DIGEST_EVERY_ENDS: Final = 2
#: Minimum ends, of the archer's own, between two lead notices about one archer.
LEAD_EVERY_ENDS: Final = 2
#: Fewest archers in a round for any notice about it.
MIN_GROUP: Final = 2


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
    """The archer last announced (or silently remembered) as leader."""
    lead_ends: Mapping[str, int] = field(default_factory=_frozen_map)
    """Per archer in the group: their own completed ends when last announced as leader."""

    def to_doc(self) -> dict[str, Any]:
        """Plain data for the document (JSON-like: Yjs stores it as one value)."""
        return {
            "digest_ends": self.digest_ends,
            "digest_positions": dict(self.digest_positions),
            "leader": self.leader,
            "lead_ends": dict(self.lead_ends),
        }

    @classmethod
    def from_doc(cls, raw: object) -> RoundMemory:
        """Read :meth:`to_doc`'s data back; anything malformed reads as "nothing told".

        Yjs returns numbers as floats, hence the conversions. The relay is the only
        writer of this data, so a malformed entry means a bug or a newer relay's format;
        forgetting it costs at most one repeated notice, failing the shoot would cost more.
        """
        if not isinstance(raw, Mapping):
            return cls()
        leader = raw.get("leader")
        return cls(
            digest_ends=_count(raw.get("digest_ends")) or 0,
            digest_positions=_counts(raw.get("digest_positions")),
            leader=leader if isinstance(leader, str) else None,
            lead_ends=_counts(raw.get("lead_ends")),
        )


def _count(value: object) -> int | None:
    """A non-negative whole number from stored data, or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0 or value != int(value):
        return None
    return int(value)


def _counts(raw: object) -> Mapping[str, int]:
    if not isinstance(raw, Mapping):
        return _frozen_map()
    counts = {key: _count(value) for key, value in raw.items() if isinstance(key, str)}
    return _frozen_map({key: value for key, value in counts.items() if value is not None})


@dataclass(frozen=True, slots=True)
class NotifierState:
    """Memory between calls to :func:`next_notices`, per round code name."""

    rounds: Mapping[str, RoundMemory] = field(default_factory=lambda: MappingProxyType({}))

    def to_doc(self) -> dict[str, dict[str, Any]]:
        """Plain data by round code name, to store in the shoot's document."""
        return {name: memory.to_doc() for name, memory in self.rounds.items()}

    def doc_changes(self, previous: NotifierState) -> dict[str, dict[str, Any] | None]:
        """What to store to go from ``previous`` to this state: changed rounds, and
        ``None`` for each round forgotten since. Empty when nothing changed.

        A round with nothing told yet is not stored (nothing stored reads as that), so a
        write that only moves archers around costs no extra document update."""
        changes: dict[str, dict[str, Any] | None] = {
            name: memory.to_doc()
            for name, memory in self.rounds.items()
            if previous.rounds.get(name, RoundMemory()) != memory
        }
        changes.update((name, None) for name in previous.rounds if name not in self.rounds)
        return changes

    @classmethod
    def from_doc(cls, raw: Mapping[str, object]) -> NotifierState:
        """The state :meth:`to_doc` stored (malformed rounds read as fresh)."""
        return cls(
            rounds=MappingProxyType(
                {name: RoundMemory.from_doc(value) for name, value in raw.items()}
            )
        )


def next_notices(
    state: NotifierState,
    before: Leaderboard,
    after: Leaderboard,
    rounds: Collection[str] | None = None,
) -> tuple[NotifierState, tuple[Notice, ...]]:
    """The notices that going from ``before`` to ``after`` calls for.

    Args:
        state: What was announced so far (``NotifierState()`` for a new shoot).
        before: The board the previous call was given as ``after`` (or, after a load,
            the board as loaded).
        after: The board now.
        rounds: The rounds whose groups may differ between the two boards, when the
            caller knows (:meth:`sync.live_board.LiveBoard.put` says): the others are
            not compared. ``None`` compares every group. The answer is the same either
            way, as long as no other group changed.

    Returns:
        The state to pass next time, and the notices in board order (per group: the lead
        notice first, then the digest lines by position).
    """
    memories: dict[str, RoundMemory] = {}
    notices: list[Notice] = []
    for group in after.groups:
        memory = state.rounds.get(group.round, RoundMemory())
        if rounds is None or group.round in rounds:
            previous = before.group(group.round)
            if not _same_signature(previous, group):
                memory = _notices_for_group(previous, group, memory, notices)
        memories[group.round] = memory
    return NotifierState(rounds=MappingProxyType(memories)), tuple(notices)


def assume_announced(state: NotifierState, board: Leaderboard) -> NotifierState:
    """Take ``board`` as already told, for every round ``state`` has no memory of.

    For a shoot loaded without a stored memory (saved before the relay kept one): its
    archers heard about this board from the relay that saved it, so the current sole
    leader and the digest for the ends already completed must not be announced again.
    Rounds with a memory keep it.
    """
    rounds = dict(state.rounds)
    for group in board.groups:
        if group.round in rounds or len(group.standings) < MIN_GROUP:
            continue
        ends = _progress(group)
        digested = ends >= DIGEST_EVERY_ENDS
        leader = _sole_leader(group)
        rounds[group.round] = RoundMemory(
            digest_ends=ends if digested else 0,
            digest_positions=_positions(group) if digested else _frozen_map(),
            leader=leader.archer_id if leader else None,
            lead_ends=_frozen_map({leader.archer_id: leader.ends_completed} if leader else {}),
        )
    return NotifierState(rounds=MappingProxyType(rounds))


def _same_signature(previous: RoundGroup | None, group: RoundGroup) -> bool:
    """Whether the two groups agree on what notices depend on (archers, names, positions,
    totals, ends), other fields (overall position...) aside. The live board keeps the
    lines a write did not move as the same objects, so most pairs are settled by
    identity, and the first that differs ends the comparison."""
    if previous is None or len(previous.standings) != len(group.standings):
        return False
    return all(
        a is b or _signature(a) == _signature(b)
        for a, b in zip(previous.standings, group.standings, strict=True)
    )


def _signature(s: Standing) -> tuple[str, str, int, int, int]:
    return (s.archer_id, s.name, s.position, s.total, s.ends_completed)


def _progress(group: RoundGroup) -> int:
    return min((s.ends_completed for s in group.standings), default=0)


def _positions(group: RoundGroup) -> Mapping[str, int]:
    return _frozen_map({s.archer_id: s.position for s in group.standings})


def _sole_leader(group: RoundGroup) -> Standing | None:
    """The one archer in first place with a score above 0, if there is exactly one."""
    leaders = [s for s in group.standings if s.position == 1]
    if len(leaders) != 1 or leaders[0].total <= 0:
        return None
    return leaders[0]


def _notices_for_group(
    previous: RoundGroup | None, group: RoundGroup, memory: RoundMemory, out: list[Notice]
) -> RoundMemory:
    standings = group.standings
    of = len(standings)
    if of < MIN_GROUP:
        return memory
    ends = _progress(group)
    members = {s.archer_id for s in standings}
    # Throttles of archers who left the group are dropped, so the memory stays bounded.
    lead_ends = {aid: n for aid, n in memory.lead_ends.items() if aid in members}
    leader_id = memory.leader

    leader = _sole_leader(group)
    if leader is not None and leader.archer_id != leader_id:
        was_alone = previous is not None and [s.archer_id for s in previous.standings] == [
            leader.archer_id
        ]
        last = lead_ends.get(leader.archer_id)
        if was_alone:
            leader_id = leader.archer_id  # joined by others: not a lead taken
        elif last is None or leader.ends_completed >= last + LEAD_EVERY_ENDS:
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
            leader_id = leader.archer_id
            lead_ends[leader.archer_id] = leader.ends_completed

    digest_ends, digest_positions = memory.digest_ends, memory.digest_positions
    if ends >= DIGEST_EVERY_ENDS and (
        ends // DIGEST_EVERY_ENDS > memory.digest_ends // DIGEST_EVERY_ENDS
    ):
        for s in standings:
            # No entry: the first digest of the round, or the archer joined since.
            before = memory.digest_positions.get(s.archer_id)
            change = None if before is None else before - s.position
            out.append(_digest_line(group, s, of, change, ends))
        digest_ends, digest_positions = ends, _positions(group)
    return RoundMemory(
        digest_ends=digest_ends,
        digest_positions=digest_positions,
        leader=leader_id,
        lead_ends=_frozen_map(lead_ends),
    )


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
