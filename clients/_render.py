"""The leaderboard as terminal text, for ``fast-shoot watch``.

A table per round with column headers, measured in terminal cells (:mod:`clients._cells`)
so CJK names and emoji line up, and fitted to the terminal's width: a line that is too
long would wrap in the middle of a number, so the archer column shrinks first, then the
least useful columns go (hits, golds, the sheet's state, the classification...), and what
still does not fit is cut at the edge. Empty values are a dash, never a blank label.

``rich`` would draw such tables too; it was left out because the board is one plain table
whose only hard part, cell widths, is :mod:`clients._cells`, and the redraw is one escape
sequence: a dependency for every install (the relay's too) was not worth that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from sync.leaderboard import Leaderboard, Standing
from sync.protocol import Notice
from sync.rounds import get_round

from ._cells import fit, pad, plural, width

__all__ = ["CLEAR_SCREEN", "DEFAULT_WIDTH", "RecentNotices", "render_leaderboard"]

#: Cursor home, then clear the screen: the whole board is redrawn in place.
CLEAR_SCREEN: Final = "\x1b[H\x1b[2J"
#: Width assumed when the output is not a terminal (a file, a pipe).
DEFAULT_WIDTH: Final = 100
#: The archer column never grows past this, and shrinks to this before columns go.
NAME_MAX: Final = 24
NAME_COMFORT: Final = 12
NAME_MIN: Final = 6
GAP: Final = "  "
DASH: Final = "–"


def _classification(s: Standing) -> str:
    if not s.classification:
        return DASH
    if s.classification_status == "on_track":
        return f"{s.classification} on track"
    return s.classification


@dataclass(frozen=True, slots=True)
class _Column:
    header: str
    cell: Callable[[Standing], str]
    right: bool
    drop_rank: int
    """0: always shown; higher numbers are dropped first when the terminal is narrow."""


_COLUMNS: Final = (
    _Column("Pos", lambda s: str(s.position), True, 0),
    _Column("Archer", lambda s: s.name, False, 0),
    _Column("Score", lambda s: str(s.total), True, 0),
    _Column("Ends", lambda s: f"{s.ends_completed}/{get_round(s.round).total_ends}", True, 4),
    _Column("Hits", lambda s: str(s.hits), True, 8),
    _Column("Golds", lambda s: str(s.golds), True, 7),
    _Column("HC", lambda s: DASH if s.handicap is None else f"{s.handicap:.0f}", True, 3),
    _Column("Class", _classification, False, 5),
    _Column("Sheet", lambda s: "final" if s.finished else "open", False, 6),
)


def _layout(rows: list[list[str]], term_width: int) -> tuple[list[int], list[int]]:
    """Which columns to show and how wide, so a line fits ``term_width`` cells."""
    shown = list(range(len(_COLUMNS)))
    widths = [max(width(r[i]) for r in rows) for i in shown]
    name = 1
    widths[name] = min(widths[name], NAME_MAX)

    def total() -> int:
        return sum(widths[i] for i in shown) + len(GAP) * (len(shown) - 1)

    while total() > term_width:
        if widths[name] > NAME_COMFORT:
            widths[name] -= min(widths[name] - NAME_COMFORT, total() - term_width)
            continue
        droppable = [i for i in shown if _COLUMNS[i].drop_rank]
        if droppable:
            shown.remove(max(droppable, key=lambda i: _COLUMNS[i].drop_rank))
            continue
        if widths[name] > NAME_MIN:
            widths[name] -= min(widths[name] - NAME_MIN, total() - term_width)
            continue
        break  # the essentials alone are wider: lines are cut at the edge
    return shown, widths


def _table(standings: Iterable[Standing], term_width: int) -> list[str]:
    rows = [[c.header for c in _COLUMNS]]
    rows.extend([c.cell(s) for c in _COLUMNS] for s in standings)
    shown, widths = _layout(rows, term_width)
    lines = []
    for row in rows:
        cells = [pad(row[i], widths[i], right=_COLUMNS[i].right) for i in shown]
        lines.append(GAP.join(cells).rstrip())
    return lines


def render_leaderboard(
    board: Leaderboard,
    title: str = "",
    notices: Iterable[str] = (),
    *,
    status: str = "",
    term_width: int = DEFAULT_WIDTH,
) -> str:
    """The board as text at most ``term_width`` cells wide.

    Args:
        title: The first line (the shoot's title and code).
        notices: Notice lines, shown under the tables in the order given
            (:meth:`RecentNotices.texts` gives the ones still true, newest first).
        status: A line under the title, e.g. that the relay is unreachable and since when.
    """
    term_width = max(1, term_width)
    lines = [title] if title else []
    if status:
        lines.append(status)
    if not board.groups:
        lines.append("")
        lines.append("No archers yet.")
    for group in board.groups:
        lines.append("")
        lines.append(f"{group.round_name} ({plural(len(group.standings), 'archer')})")
        lines.extend(_table(group.standings, term_width))
    recent = list(notices)
    if recent:
        lines.append("")
        lines.extend(f"* {text}" for text in recent)
    return "\n".join(fit(line, term_width) for line in lines) + "\n"


class RecentNotices:
    """The notices worth showing under a live board: what is still true, newest first.

    A plain list of the last few notices kept showing "Chris has taken the lead!" after
    Alex had overtaken him (the relay holds a lead notice back when the same archer was
    announced less than 2 ends ago), and showed a notice twice when the relay sent it
    twice. So this keeps one lead notice per round, shown only while its archer is still
    the round's sole leader on the board being drawn; one digest per round, a newer one
    replacing the older one's lines; and ignores a notice identical to one it holds.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._arrivals = 0
        self._leads: dict[str, tuple[int, Notice]] = {}
        self._digests: dict[str, tuple[int, list[Notice]]] = {}

    def add(self, notice: Notice) -> None:
        self._arrivals += 1
        if notice.kind == "lead":
            held = self._leads.get(notice.round)
            if held is None or held[1] != notice:
                self._leads[notice.round] = (self._arrivals, notice)
            return
        digest = self._digests.get(notice.round)
        if digest is None or digest[1][0].ends != notice.ends:
            self._digests[notice.round] = (self._arrivals, [notice])
        elif notice not in digest[1]:
            digest[1].append(notice)

    def texts(self, board: Leaderboard) -> list[str]:
        """At most ``limit`` lines, newest first (a digest's lines in board order)."""
        lines: list[tuple[int, int, str]] = []
        for arrival, notice in self._leads.values():
            group = board.group(notice.round)
            leaders = [s for s in group.standings if s.position == 1] if group else []
            if [s.archer_id for s in leaders] == [notice.archer]:
                lines.append((arrival, 0, notice.text))
        for arrival, digest in self._digests.values():
            lines.extend((arrival, index, n.text) for index, n in enumerate(digest, 1))
        lines.sort(key=lambda line: (-line[0], line[1]))
        return [text for _, _, text in lines[: self._limit]]
