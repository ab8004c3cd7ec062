"""What the terminal shows: the board, and only the notices that are still true."""

from __future__ import annotations

from clients._render import RecentNotices, render_leaderboard
from sync.clock import Stamp
from sync.leaderboard import Leaderboard, build_leaderboard
from sync.models import ArcherState
from sync.protocol import Notice
from sync.register import Register


def board(**totals: int) -> Leaderboard:
    """A National board where each archer has shot one arrow of the given value."""
    return build_leaderboard(
        Register(aid, Stamp(1, 0, aid), ArcherState(aid.title(), "national", arrows=(value,)))
        for aid, value in totals.items()
    )


def lead(archer: str, ends: int = 0, round: str = "national") -> Notice:
    return Notice("lead", round, archer, f"{archer.title()} has taken the lead!", 1, 2, None, ends)


def digest(archer: str, position: int, ends: int) -> Notice:
    text = f"{archer.title()} is {position} after {ends} ends."
    return Notice("digest", "national", archer, text, position, 2, None, ends)


def test_a_lead_notice_is_shown_only_while_its_archer_leads() -> None:
    # Regression: after Alex overtook Chris, the screen still said Chris had the lead.
    recent = RecentNotices(5)
    recent.add(lead("chris"))
    assert recent.texts(board(chris=9, alex=7)) == ["Chris has taken the lead!"]
    assert recent.texts(board(chris=7, alex=9)) == []  # overtaken, no notice (yet)
    assert recent.texts(board(chris=9, alex=9)) == []  # a shared lead is nobody's
    recent.add(lead("alex"))
    assert recent.texts(board(chris=7, alex=9)) == ["Alex has taken the lead!"]
    assert recent.texts(board(chris=9, alex=7)) == []  # the older one was replaced


def test_the_same_notice_twice_is_shown_once() -> None:
    recent = RecentNotices(5)
    for _ in range(2):
        recent.add(lead("chris"))
        recent.add(digest("chris", 1, 2))
    assert recent.texts(board(chris=9, alex=7)) == [
        "Chris is 1 after 2 ends.",
        "Chris has taken the lead!",
    ]


def test_a_new_digest_replaces_the_last_one_and_the_newest_comes_first() -> None:
    recent = RecentNotices(5)
    recent.add(digest("chris", 1, 2))
    recent.add(digest("alex", 2, 2))
    recent.add(lead("alex"))
    now = board(chris=7, alex=9)
    assert recent.texts(now) == [
        "Alex has taken the lead!",
        "Chris is 1 after 2 ends.",
        "Alex is 2 after 2 ends.",
    ]
    recent.add(digest("alex", 1, 4))
    recent.add(digest("chris", 2, 4))
    assert recent.texts(now) == [
        "Alex is 1 after 4 ends.",
        "Chris is 2 after 4 ends.",
        "Alex has taken the lead!",
    ]
    assert RecentNotices(2).texts(now) == []
    short = RecentNotices(2)
    for notice in (lead("alex"), digest("alex", 1, 4), digest("chris", 2, 4)):
        short.add(notice)
    assert short.texts(now) == ["Alex is 1 after 4 ends.", "Chris is 2 after 4 ends."]


def test_rendered_notices_follow_the_board() -> None:
    recent = RecentNotices(5)
    recent.add(lead("alex"))
    now = board(chris=7, alex=9)
    text = render_leaderboard(now, "Club night", recent.texts(now))
    assert text.endswith("\n\n* Alex has taken the lead!\n")
