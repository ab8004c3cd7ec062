"""The terminal leaderboard: headers, plurals, wide characters, narrow terminals, and only
the notices that are still true."""

from __future__ import annotations

import re

import pytest

from clients._cells import clusters, fit, pad, width
from clients._render import RecentNotices, render_leaderboard
from sync.clock import Stamp
from sync.leaderboard import Leaderboard, build_leaderboard
from sync.models import ArcherState
from sync.protocol import Notice
from sync.register import Register
from sync.rounds import Arrow


def reg(archer_id: str, name: str, arrows: tuple[Arrow, ...] = (), **kw: bool) -> Register:
    state = ArcherState(name=name, round="national", arrows=arrows, **kw)
    return Register(archer_id, Stamp(1_000, 0, f"d-{archer_id}"), state)


def board(*registers: Register) -> Leaderboard:
    return build_leaderboard(registers)


def test_cells_measure_wide_and_combining_characters() -> None:
    assert width("Chris") == 5
    assert width("李小龙") == 6
    assert width("Zoë") == 3  # e + combining diaeresis: one cell
    assert width("🏹") == 2
    assert width("❤️") == 2  # a narrow heart made an emoji by VS16
    assert width("🇬🇧") == 2  # a flag: two regional indicators, one cluster
    assert list(clusters("Zoë🇬🇧")) == ["Z", "o", "ë", "🇬🇧"]


def test_fit_cuts_between_characters_and_pads_by_cells() -> None:
    assert fit("李小龙李小龙", 7) == "李小龙…"  # never half a wide character
    assert fit("Zoëëëëë", 4) == "Zoë…"  # never an accent without its letter
    assert fit("Chris", 5) == "Chris"
    assert pad("李", 4) == "李  "
    assert pad("7", 3, right=True) == "  7"


def test_headers_plurals_and_dashes() -> None:
    text = render_leaderboard(board(reg("a", "Chris", (9, 9, 7, 7, 5, 5))), "Club night")
    lines = text.splitlines()
    assert lines[0] == "Club night"
    assert "National (1 archer)" in lines
    header = next(line for line in lines if line.startswith("Pos"))
    assert header.split() == [
        "Pos",
        "Archer",
        "Score",
        "Ends",
        "Hits",
        "Golds",
        "HC",
        "Class",
        "Sheet",
    ]
    row = lines[lines.index(header) + 1]
    assert row.split()[:6] == ["1", "Chris", "42", "1/12", "6", "2"]
    assert "open" in row
    # No handicap yet on a partial end? There is one after an end; no label is ever empty.
    assert "HC " not in row
    two = render_leaderboard(board(reg("a", "Chris"), reg("b", "Alex")))
    assert "National (2 archers)" in two
    assert "–" in two  # no handicap or classification before any arrow: a dash, not blank


def test_wide_names_keep_the_columns_aligned() -> None:
    names = ["Chris", "李小龙", "Zoë", "🏹 Robin", "王" * 30]
    registers = [reg(str(i), name, (9,) * 6) for i, name in enumerate(names)]
    lines = render_leaderboard(board(*registers), term_width=100).splitlines()
    header = next(line for line in lines if line.startswith("Pos"))
    rows = lines[lines.index(header) + 1 :]
    assert len(rows) == len(names)
    score_at = width(header[: header.index("Score") + len("Score")])
    for row in rows:
        # The score column ends at the same cell on every row, whatever the name holds.
        match = re.search(r"54\b", row)
        assert match is not None, row
        assert width(row[: match.end()]) == score_at, row
    assert any("王王王…" in row for row in rows)  # a long name is cut with an ellipsis


@pytest.mark.parametrize("term_width", [12, 20, 30, 40, 50, 60, 70, 80, 120])
def test_narrow_terminals_never_wrap_inside_a_number(term_width: int) -> None:
    registers = [
        reg("a", "Christopher Longname", (9,) * 48, finished=True),
        reg("b", "李小龙", (7,) * 12),
    ]
    text = render_leaderboard(
        board(*registers), "A long shoot title " * 5, ["Chris leads"], term_width=term_width
    )
    for line in text.splitlines():
        assert width(line) <= term_width, (term_width, line)
    if term_width >= 20:  # the essentials always fit from 20 cells: position, name, score
        assert re.search(r"\b432\b", text), text
        assert re.search(r"\b84\b", text), text


def test_outage_status_line_sits_under_the_title() -> None:
    text = render_leaderboard(
        board(reg("a", "Chris")),
        "Club night",
        status="Offline: reconnecting; last update 42 s ago.",
    )
    assert text.splitlines()[:2] == ["Club night", "Offline: reconnecting; last update 42 s ago."]


def test_no_archers_yet() -> None:
    assert "No archers yet." in render_leaderboard(board(), "Club night")


def totals_board(**totals: int) -> Leaderboard:
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
    assert recent.texts(totals_board(chris=9, alex=7)) == ["Chris has taken the lead!"]
    assert recent.texts(totals_board(chris=7, alex=9)) == []  # overtaken, no notice (yet)
    assert recent.texts(totals_board(chris=9, alex=9)) == []  # a shared lead is nobody's
    recent.add(lead("alex"))
    assert recent.texts(totals_board(chris=7, alex=9)) == ["Alex has taken the lead!"]
    assert recent.texts(totals_board(chris=9, alex=7)) == []  # the older one was replaced


def test_the_same_notice_twice_is_shown_once() -> None:
    recent = RecentNotices(5)
    for _ in range(2):
        recent.add(lead("chris"))
        recent.add(digest("chris", 1, 2))
    assert recent.texts(totals_board(chris=9, alex=7)) == [
        "Chris is 1 after 2 ends.",
        "Chris has taken the lead!",
    ]


def test_a_new_digest_replaces_the_last_one_and_the_newest_comes_first() -> None:
    recent = RecentNotices(5)
    recent.add(digest("chris", 1, 2))
    recent.add(digest("alex", 2, 2))
    recent.add(lead("alex"))
    now = totals_board(chris=7, alex=9)
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
    now = totals_board(chris=7, alex=9)
    text = render_leaderboard(now, "Club night", recent.texts(now))
    assert text.endswith("\n\n* Alex has taken the lead!\n")
