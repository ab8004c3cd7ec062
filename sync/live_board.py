"""The leaderboard kept up to date one write at a time.

Theory of operation
-------------------
:func:`sync.leaderboard.build_leaderboard` ranks every archer from every register. The
relay's actor cannot afford that on every write of a big shoot (it also turned every
register of the document back into Python objects each time), so it keeps a
:class:`LiveBoard` instead and tells it about the one register a write changed
(:meth:`LiveBoard.put`). The board then redoes only what that register can move:

- the writer's own line (validation, summary, projection);
- the order and positions of the round group it left and the one it joined (a re-sort of
  those groups' entries; lines whose position and gap did not change are kept as they
  were);
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

from .classification import Need, peek_projection
from .leaderboard import (
    Entry,
    Leaderboard,
    Projector,
    RoundGroup,
    Standing,
    base_standing,
    overall_key,
    overall_positions,
    placed,
    rank,
)
from .models import checked
from .register import Register

__all__ = ["LiveBoard"]

_OverallKey = tuple[bool, float, str, str]


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
        self._members: dict[str, set[str]] = {}
        """Archer ids by round."""
        self._ranked: dict[str, list[tuple[str, int, int | None]]] = {}
        """Per round, in order: each archer's id, position and points behind."""
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
        self._refresh_rounds(set(self._members))

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
        """Re-rank ``rounds`` (and move overall positions if a key moved); a new board."""
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
            overall=tuple(self._lines[aid] for _, aid in self._order),
        )
        return changed

    # -- internals -----------------------------------------------------------------------

    def _place(self, register: Register) -> set[str]:
        """Update the archer's entry and base line; the rounds to re-rank."""
        archer_id = register.archer_id
        self._registers[archer_id] = register
        rounds: set[str] = set()
        old_key = self._keys.get(archer_id)
        old = self._entries.pop(archer_id, None)
        if old is not None:
            rounds.add(old.info.codename)
            self._members[old.info.codename].discard(archer_id)
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
        self._members.setdefault(info.codename, set()).add(archer_id)
        rounds.add(info.codename)
        key = overall_key(base)
        self._keys[archer_id] = key
        insort(self._order, (key, archer_id))
        # Overall positions only move when someone's handicap (or name) did.
        self._overall_dirty |= key != old_key
        return rounds

    def _rerank_overall(self) -> set[str]:
        """New overall positions; the rounds of archers whose overall position moved."""
        rated = [(key[1], aid) for key, aid in self._order if not key[0]]
        positions = overall_positions(rated)
        moved = {
            aid
            for aid in positions.keys() | self._overall.keys()
            if positions.get(aid) != self._overall.get(aid)
        }
        self._overall = positions
        return {self._entries[aid].info.codename for aid in moved if aid in self._entries}

    def _regroup(self, reranked: set[str], moved: set[str]) -> set[str]:
        """Re-rank ``reranked`` rounds; rebuild the groups of those and of ``moved``."""
        for codename in reranked:
            members = self._members.get(codename)
            if not members:
                self._members.pop(codename, None)
                self._ranked.pop(codename, None)
                self._groups.pop(codename, None)
                continue
            self._ranked[codename] = [
                (entry.archer_id, position, behind)
                for entry, position, behind in rank([self._entries[aid] for aid in members])
            ]
        changed = (reranked | moved) & self._ranked.keys()
        for codename in changed:
            standings = tuple(self._line(*place) for place in self._ranked[codename])
            first = standings[0]
            self._groups[codename] = RoundGroup(first.round, first.round_name, standings)
        return changed | (reranked - self._ranked.keys())

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
