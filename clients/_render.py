"""The leaderboard as terminal text, for ``fast-shoot watch`` and ``score``."""

from __future__ import annotations

from collections.abc import Iterable

from sync.leaderboard import Leaderboard, Standing
from sync.protocol import Notice

__all__ = ["CLEAR_SCREEN", "RecentNotices", "render_leaderboard"]

#: Cursor home, then clear the screen: the whole board is redrawn in place.
CLEAR_SCREEN = "\x1b[H\x1b[2J"


def _line(s: Standing) -> str:
    handicap = "" if s.handicap is None else f"{s.handicap:.0f}"
    classification = s.classification or ""
    if classification and s.classification_status == "on_track":
        classification += " (on track)"
    done = " finished" if s.finished else ""
    return (
        f"{s.position:>3}  {s.name[:24]:<24} {s.total:>5}  "
        f"{s.ends_completed:>3} ends  {s.hits:>4} hits  {s.golds:>3} golds  "
        f"HC {handicap:>3}  {classification}{done}"
    ).rstrip()


def render_leaderboard(board: Leaderboard, title: str = "", notices: Iterable[str] = ()) -> str:
    """Plain text: one block per round, archers in ranking order, then ``notices`` in the
    order given (:meth:`RecentNotices.texts` gives the ones still true, newest first)."""
    lines = [title] if title else []
    if not board.groups:
        lines.append("No archers yet.")
    for group in board.groups:
        lines.append("")
        lines.append(f"{group.round_name} ({len(group.standings)})")
        lines.extend(_line(s) for s in group.standings)
    recent = list(notices)
    if recent:
        lines.append("")
        lines.extend(f"* {text}" for text in recent)
    return "\n".join(lines) + "\n"


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
