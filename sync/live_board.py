"""The leaderboard kept up to date one write at a time.

Theory of operation
-------------------
:func:`sync.leaderboard.build_leaderboard` ranks every archer from every register. The
relay's actor cannot afford that on every write of a big shoot (it also turned every
register of the document back into Python objects each time), so it keeps a
:class:`LiveBoard` instead and tells it about the one register a write changed
(:meth:`LiveBoard.put`). The board then redoes only what that register can move:

- the writer's own line (validation, summary, projection);
- in the round group it left and the one it joined, the places between where the writer
  was and where it is now. Each group is a sorted list of display-order keys
  (:func:`~sync.leaderboard.order_key`) that the writer's key leaves and re-enters by
  bisection, beside the list of lines in that order; positions and points behind are
  redone from the first place that moved. When the writer stayed in its round, the
  places after the last that moved kept their indices, so the redoing stops at the
  first of them whose position and gap come out as before (every place after it then
  does too); one who joined or left a group moved every later place, and those are
  redone to the end. A usual write moves its writer up a place or two, so it redoes two
  or three lines whatever the size of the group, where re-ranking the whole group cost a
  50-archer shoot a third of the actor's CPU per write;
- the cross-round ranking by handicap: a sorted list the writer's key leaves and
  re-enters by bisection, and the lines of other archers only where their overall
  position moved, which happens only when the writer's handicap did.

It answers with the rounds whose groups changed, which is all :func:`next_notices`
needs to look at.

Projections come from the tables only (:func:`sync.classification.peek_projection` by
default): a line whose projection is not there yet shows none, and :attr:`needs` lists
what to fill. Once the driver has filled them (off the event loop), :meth:`refresh`
redoes those lines. The board is then exactly what :func:`build_leaderboard` builds from
the same registers, which a property test checks after random sequences of writes.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from operator import itemgetter
from typing import cast

from .classification import Need, peek_projection
from .leaderboard import (
    Entry,
    Leaderboard,
    OrderKey,
    Projector,
    RoundGroup,
    Standing,
    base_standing,
    order_key,
    overall_key,
    overall_positions,
    placed,
)
from .models import checked
from .register import Register

__all__ = ["LiveBoard"]

_OverallKey = tuple[bool, float, str, str]


class _Group:
    """One round's archers in display order: their keys, sorted, and their lines.

    ``lines[k]`` is the line of the archer whose key is ``keys[k]``; between a move and
    :meth:`LiveBoard._replace` it may be ``None`` (a place not made yet). ``moved_from``
    and ``moved_to`` bound the places a move touched since the group's lines were last
    made (``moved_from > moved_to``: none).
    """

    __slots__ = ("keys", "lines", "moved_from", "moved_to", "size")

    def __init__(self) -> None:
        self.keys: list[OrderKey] = []
        self.lines: list[Standing | None] = []
        self.moved_from = 0
        self.moved_to = -1
        self.size = 0
        """Places when the lines were last made."""

    def touch(self, index: int) -> None:
        """Mark the place at ``index`` (as the list is now) as one to redo."""
        if self.moved_from > self.moved_to:
            self.moved_from = self.moved_to = index
        else:
            self.moved_from = min(self.moved_from, index)
            self.moved_to = max(self.moved_to, index)

    def leave(self, key: OrderKey) -> None:
        index = bisect_left(self.keys, key)
        del self.keys[index]
        del self.lines[index]
        if self.moved_to > index:
            self.moved_to -= 1  # the places marked after it moved up one
        if self.keys:
            # The place it left now holds the next archer, whose neighbour changed.
            self.touch(min(index, len(self.keys) - 1))

    def enter(self, key: OrderKey) -> None:
        index = bisect_left(self.keys, key)
        self.keys.insert(index, key)
        self.lines.insert(index, None)
        if self.moved_to >= index and self.moved_from <= self.moved_to:
            self.moved_to += 1  # the places marked from here on moved down one
        self.touch(index)


class LiveBoard:
    """One shoot's leaderboard, updated per register.

    Args:
        registers: The shoot's registers as loaded (one per archer).
        project: Where projections come from; the default never calls archeryutils.
    """

    def __init__(self, registers: Iterable[Register] = (), project: Projector = peek_projection):
        self._project = project
        self._registers: dict[str, Register] = {}
        self._entries: dict[str, Entry] = {}
        self._bases: dict[str, Standing] = {}
        self._rounds: dict[str, _Group] = {}
        """Each round's archers in display order, with their lines."""
        self._order_keys: dict[str, OrderKey] = {}
        """Every archer's key in their round's order."""
        self._lines: dict[str, Standing] = {}
        """Every archer's line as on the board."""
        self._line_bases: dict[str, Standing] = {}
        """Per archer, the base line their line on the board was made from."""
        self._groups: dict[str, RoundGroup] = {}
        self._order: list[tuple[_OverallKey, str]] = []
        self._keys: dict[str, _OverallKey] = {}
        self._overall: dict[str, int] = {}
        self._overall_dirty = False
        self.needs: dict[str, Need] = {}
        """Per archer whose line lacks its projection: what to fill."""
        self.board = Leaderboard()
        for register in registers:
            self._place(register)
        self._refresh_rounds(set(self._rounds))

    def put(self, register: Register) -> set[str]:
        """Take the archer's new register into account (the current winner: the caller
        has merged it). Returns the rounds whose groups changed."""
        return self._refresh_rounds(self._place(register))

    def refresh(self, archer_ids: Iterable[str]) -> set[str]:
        """Redo the lines of archers whose projections were missing and have since been
        filled. Returns the rounds whose groups changed."""
        rounds: set[str] = set()
        for archer_id in archer_ids:
            register = self._registers.get(archer_id)
            if register is not None:
                rounds |= self._place(register)
        return self._refresh_rounds(rounds)

    def _refresh_rounds(self, rounds: set[str]) -> set[str]:
        """Redo the places that moved in ``rounds`` (and the lines whose overall position
        moved, if a key did); a new board."""
        if not rounds:
            return rounds
        moved = self._rerank_overall() if self._overall_dirty else set()
        self._overall_dirty = False
        changed = self._regroup(rounds, moved)
        self.board = Leaderboard(
            groups=tuple(
                sorted(
                    self._groups.values(),
                    key=lambda g: (-len(g.standings), g.round_name, g.round),
                )
            ),
            # In one pass in C: a generator over every archer cost each write of a big shoot.
            overall=tuple(map(self._lines.__getitem__, map(itemgetter(1), self._order))),
        )
        return changed

    # -- internals -----------------------------------------------------------------------

    def _place(self, register: Register) -> set[str]:
        """Update the archer's entry, base line and places; the rounds to redo."""
        archer_id = register.archer_id
        self._registers[archer_id] = register
        rounds: set[str] = set()
        old_key = self._keys.get(archer_id)
        old = self._entries.pop(archer_id, None)
        if old is not None:
            rounds.add(old.info.codename)
            self._rounds[old.info.codename].leave(self._order_keys.pop(archer_id))
            self._bases.pop(archer_id, None)
            self._lines.pop(archer_id, None)
            self._line_bases.pop(archer_id, None)
            self._order.pop(bisect_left(self._order, (self._keys.pop(archer_id), archer_id)))
        self.needs.pop(archer_id, None)
        valid = checked(register.state)
        if valid is None or register.state.left:
            self._overall_dirty |= old_key is not None
            return rounds
        info, summary = valid
        entry = Entry(archer_id, register.state, info, summary)
        self._entries[archer_id] = entry
        proj = self._project(entry.state, summary, info)
        if isinstance(proj, Need):
            self.needs[archer_id] = proj
        base = base_standing(entry, lambda *_: proj)
        self._bases[archer_id] = base
        order = order_key(entry)
        self._order_keys[archer_id] = order
        self._rounds.setdefault(info.codename, _Group()).enter(order)
        rounds.add(info.codename)
        key = overall_key(base)
        self._keys[archer_id] = key
        insort(self._order, (key, archer_id))
        # Overall positions only move when someone's handicap (or name) did.
        self._overall_dirty |= key != old_key
        return rounds

    def _rerank_overall(self) -> set[str]:
        """New overall positions; the rounds of archers whose overall position moved,
        whose lines are marked to be redone."""
        rated = [(key[1], aid) for key, aid in self._order if not key[0]]
        positions = overall_positions(rated)
        moved = {
            aid
            for aid in positions.keys() | self._overall.keys()
            if positions.get(aid) != self._overall.get(aid)
        }
        self._overall = positions
        rounds: set[str] = set()
        for aid in moved:
            order = self._order_keys.get(aid)
            if order is None:
                continue  # left the board
            codename = self._entries[aid].info.codename
            group = self._rounds[codename]
            group.touch(bisect_left(group.keys, order))
            rounds.add(codename)
        return rounds

    def _regroup(self, redone: set[str], moved: set[str]) -> set[str]:
        """Redo the places that moved in ``redone`` and ``moved`` rounds; their groups
        anew. Returns those rounds (an emptied round included)."""
        changed = redone | moved
        for codename in changed:
            group = self._rounds.get(codename)
            if group is None or not group.keys:
                self._rounds.pop(codename, None)
                self._groups.pop(codename, None)
                continue
            self._replace(group)
            lines = cast("tuple[Standing, ...]", tuple(group.lines))  # every place made
            first = lines[0]
            self._groups[codename] = RoundGroup(first.round, first.round_name, lines)
        return changed

    def _replace(self, group: _Group) -> None:
        """Make the lines of the places a move touched, and of the places after them
        until one comes out as it was (see the module docstring)."""
        keys, lines = group.keys, group.lines
        start, last = group.moved_from, group.moved_to
        # A place after the last marked one is at its old index only if the group kept
        # its size; if not, every later place moved, and positions count places.
        settled = last if len(keys) == group.size else len(keys)
        group.moved_from, group.moved_to, group.size = 0, -1, len(keys)
        if start > last:
            return
        position, score, total = 0, None, 0
        if start:
            above = lines[start - 1]
            assert above is not None  # only marked places can be unmade
            position, score, total = above.position, keys[start - 1][:3], -keys[start - 1][0]
        for index in range(start, len(keys)):
            key = keys[index]
            if key[:3] != score:  # competition ranking: a tie shares the better position
                position, score = index + 1, key[:3]
            behind = None if index == 0 else total + key[0]  # key[0] is -total
            line = lines[index]
            if (
                index > settled
                and line is not None
                and line.position == position
                and line.behind == behind
            ):
                return  # as it was, and so is every place after it
            lines[index] = self._line(key[4], position, behind)
            total = -key[0]

    def _line(self, archer_id: str, position: int, behind: int | None) -> Standing:
        """The archer's line at this place, the same object as before if nothing moved."""
        base = self._bases[archer_id]
        overall = self._overall.get(archer_id)
        last = self._lines.get(archer_id)
        if (
            last is None
            or self._line_bases.get(archer_id) is not base
            or (last.position, last.behind, last.overall_position) != (position, behind, overall)
        ):
            last = self._lines[archer_id] = placed(base, position, behind, overall)
            self._line_bases[archer_id] = base
        return last
