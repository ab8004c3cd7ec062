"""The leaderboard as terminal text, for ``fast-shoot watch`` and ``score``."""

from __future__ import annotations

from collections.abc import Iterable

from sync.leaderboard import Leaderboard, Standing

__all__ = ["CLEAR_SCREEN", "render_leaderboard"]

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
    """Plain text: one block per round, archers in ranking order, then recent notices."""
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
        lines.extend(f"* {text}" for text in reversed(recent))
    return "\n".join(lines) + "\n"
