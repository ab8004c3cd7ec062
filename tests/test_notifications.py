"""Notification rules: leads at once but at most every 2 ends per archer, digests for
everyone every 2 ends, nothing for an archer alone (restarts: test_notifications_memory)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.clock import Stamp
from sync.leaderboard import Leaderboard, build_leaderboard
from sync.models import ArcherState
from sync.notifications import (
    Notice,
    NotifierState,
    RoundMemory,
    assume_announced,
    next_notices,
    ordinal,
)
from sync.register import Register
from sync.rounds import Arrow, get_round


class Shoot:
    """A shoot replayed write by write, feeding each new board to the notifier."""

    def __init__(self) -> None:
        self.states: dict[str, ArcherState] = {}
        self.board = build_leaderboard([])
        self.notifier = NotifierState()
        self.stored: dict[str, object] = {}
        """The memory as the relay stores it in the document (what survives a restart)."""
        self.tick = 0

    def set(self, archer_id: str, **changes: object) -> tuple[Notice, ...]:
        state = self.states.get(archer_id) or ArcherState(archer_id.title(), "national")
        self.states[archer_id] = replace(state, **changes)  # type: ignore[arg-type]
        return self.publish()

    def shoot(self, archer_id: str, *arrows: Arrow, round: str = "national") -> tuple[Notice, ...]:
        state = self.states.get(archer_id) or ArcherState(archer_id.title(), round)
        return self.set(archer_id, arrows=(*state.arrows, *arrows))

    def publish(self) -> tuple[Notice, ...]:
        self.tick += 1
        board = build_leaderboard(
            Register(aid, Stamp(self.tick, 0, aid), s) for aid, s in self.states.items()
        )
        notifier, notices = next_notices(self.notifier, self.board, board)
        for name, value in notifier.doc_changes(self.notifier).items():
            if value is None:
                self.stored.pop(name, None)
            else:  # through JSON with numbers as floats, as Yjs gives them back
                self.stored[name] = json.loads(json.dumps(value), parse_int=float)
        self.notifier, self.board = notifier, board
        return notices

    def restart(self) -> None:
        """What a relay restart or an idle unload does: the memory comes back from what
        was stored, the board is rebuilt from the loaded registers."""
        self.notifier = assume_announced(NotifierState.from_doc(self.stored), self.board)
        self.board = build_leaderboard(
            Register(aid, Stamp(self.tick, 0, aid), s) for aid, s in self.states.items()
        )


def texts(notices: Sequence[Notice]) -> list[str]:
    return [n.text for n in notices]


END_OF_7: tuple[Arrow, ...] = (7,) * 6
END_OF_9: tuple[Arrow, ...] = (9,) * 6
END_OF_5: tuple[Arrow, ...] = (5,) * 6


# -- lead notices --------------------------------------------------------------------------


def test_first_lead_is_announced_at_once() -> None:
    shoot = Shoot()
    shoot.set("ann")
    assert shoot.shoot("bob", 7) == (
        Notice(
            kind="lead",
            round="national",
            archer_id="bob",
            text="Bob has taken the lead!",
            position=1,
            of=2,
            change=None,
            ends=0,
        ),
    )


def test_an_overtake_is_announced_at_once() -> None:
    # Regression: one throttle per round held the overtake back (the last lead notice
    # was less than 2 ends before), and the screen went on showing the old leader's.
    shoot = Shoot()
    shoot.set("ann")
    shoot.set("bob")
    assert texts(shoot.shoot("ann", *END_OF_7)) == ["Ann has taken the lead!"]
    assert texts(shoot.shoot("bob", *END_OF_9)) == ["Bob has taken the lead!"]
    assert shoot.notifier.rounds["national"].leader == "bob"


def test_one_archer_is_announced_as_leader_at_most_every_two_of_their_ends() -> None:
    shoot = Shoot()
    shoot.set("ann")
    shoot.set("bob")
    assert texts(shoot.shoot("ann", *END_OF_7)) == ["Ann has taken the lead!"]  # Ann: 1 end
    assert texts(shoot.shoot("bob", *END_OF_9)) == ["Bob has taken the lead!"]  # Bob: 1 end
    # Ann retakes it after 2 ends of hers: 1 end since her notice, held back.
    assert shoot.shoot("ann", *END_OF_9) == ()
    assert shoot.board.standing("ann").position == 1  # type: ignore[union-attr]
    # Bob completes 2 ends: the digest, still no lead notice for Ann.
    assert [n.kind for n in shoot.shoot("bob", *END_OF_5)] == ["digest", "digest"]
    # Ann's third end: 2 ends since her last lead notice and she still leads.
    notices = shoot.shoot("ann", *END_OF_5)
    assert texts(notices) == ["Ann has taken the lead!"]
    assert notices[0].ends == 2  # the group's progress
    assert dict(shoot.notifier.rounds["national"].lead_ends) == {"ann": 3, "bob": 1}
    # Bob overtakes in his 4th end, 3 ends after his own last lead notice.
    assert texts(shoot.shoot("bob", *END_OF_9, *END_OF_5)) == ["Bob has taken the lead!"]
    # Ann back in front at once (1 end later for her): held back again; only the digest.
    notices = shoot.shoot("ann", *END_OF_9)
    assert shoot.board.standing("ann").position == 1  # type: ignore[union-attr]
    assert [n.kind for n in notices] == ["digest", "digest"]


def test_a_lead_held_back_is_not_announced_once_it_is_lost_again() -> None:
    shoot = Shoot()
    shoot.set("ann")
    shoot.set("bob")
    shoot.shoot("ann", *END_OF_7)
    shoot.shoot("bob", *END_OF_9)  # Bob announced
    assert shoot.shoot("ann", *END_OF_9) == ()  # Ann leads, held back
    # Bob leads again before Ann's 2 ends are up: he was the last announced, so nothing.
    assert [n.kind for n in shoot.shoot("bob", *END_OF_9)] == ["digest", "digest"]
    assert shoot.shoot("ann", "M", "M", "M", "M", "M", "M") == ()  # Ann's 3rd end: behind
    assert shoot.shoot("bob", *END_OF_5) == ()
    assert shoot.notifier.rounds["national"].leader == "bob"


def test_the_lead_announced_with_the_digest_comes_first() -> None:
    shoot = Shoot()
    shoot.set("ann")
    shoot.set("bob")
    assert texts(shoot.shoot("ann", *END_OF_7, *END_OF_7)) == ["Ann has taken the lead!"]
    notices = shoot.shoot("bob", *END_OF_9, *END_OF_9)
    assert [n.kind for n in notices] == ["lead", "digest", "digest"]
    assert notices[0].archer_id == "bob"


def test_the_same_leader_is_not_announced_twice() -> None:
    shoot = Shoot()
    shoot.set("ann")
    assert len(shoot.shoot("bob", 9)) == 1
    for _ in range(5):
        shoot.shoot("bob", *END_OF_9)
        notices = shoot.shoot("ann", *END_OF_5)
        assert all(n.kind == "digest" for n in notices)


def test_no_lead_notice_for_a_shared_lead_or_a_lone_archer() -> None:
    shoot = Shoot()
    assert shoot.shoot("ann", 9) == ()  # alone in the round
    assert shoot.shoot("bob", 9) == ()  # tied on score, hits and golds
    assert [n.archer_id for n in shoot.shoot("bob", 1)] == ["bob"]


def test_a_lone_archer_gets_no_notices() -> None:
    # Regression: "Pat is 1st of 1 after 4 ends (no change)."
    shoot = Shoot()
    for _ in range(4):
        assert shoot.shoot("pat", *END_OF_9) == ()
    assert (
        "national" not in shoot.notifier.rounds
        or shoot.notifier.rounds["national"] == RoundMemory()
    )


def test_an_archer_joined_by_others_has_not_taken_the_lead() -> None:
    shoot = Shoot()
    shoot.shoot("pat", *END_OF_9, *END_OF_9)
    assert shoot.set("sam") == ()  # Pat led alone; Sam joining takes nothing from anyone
    assert shoot.notifier.rounds["national"].leader == "pat"
    assert shoot.shoot("sam", *END_OF_5) == ()
    # Sam reaches 2 ends: the first digest, for two.
    assert texts(shoot.shoot("sam", *END_OF_5)) == [
        "Pat is 1st of 2 after 2 ends.",
        "Sam is 2nd of 2 after 2 ends.",
    ]
    assert texts(shoot.shoot("sam", *END_OF_9 * 4)) == ["Sam has taken the lead!"]


def test_an_archer_arriving_in_front_has_taken_the_lead() -> None:
    shoot = Shoot()
    shoot.shoot("pat", *END_OF_5)
    # Sam's first register already has arrows (scored offline before joining): a real lead.
    assert texts(shoot.shoot("sam", *END_OF_9)) == ["Sam has taken the lead!"]


def test_no_lead_notice_for_a_leader_who_has_scored_nothing() -> None:
    board = build_leaderboard(
        [
            Register("ann", Stamp(1, 0, "a"), ArcherState("Ann", "national", arrows=(9,))),
            Register("bob", Stamp(1, 0, "b"), ArcherState("Bob", "national")),
        ]
    )
    group = board.groups[0]
    # A board whose sole leader has 0 points (not reachable through the ranking today).
    zero = replace(group, standings=(replace(group.standings[0], total=0), group.standings[1]))
    state, notices = next_notices(NotifierState(), Leaderboard(), Leaderboard(groups=(zero,)))
    assert notices == ()
    assert state.rounds["national"].leader is None
    _, notices = next_notices(NotifierState(), Leaderboard(), board)
    assert texts(notices) == ["Ann has taken the lead!"]


# -- digests -------------------------------------------------------------------------------


def test_digest_every_two_ends_of_the_slowest_archer() -> None:
    shoot = Shoot()
    for aid in ("ann", "bob", "cat"):
        shoot.set(aid)
    assert texts(shoot.shoot("ann", *END_OF_9, *END_OF_9, *END_OF_9)) == [  # 3 ends
        "Ann has taken the lead!"
    ]
    shoot.shoot("bob", *END_OF_7, *END_OF_7)  # 2 ends
    assert [n.kind for n in shoot.shoot("cat", *END_OF_5)] == []  # Cat: 1 end holds it back
    notices = shoot.shoot("cat", *END_OF_5)  # everyone has 2 ends now
    assert texts(notices) == [
        "Ann is 1st of 3 after 2 ends.",
        "Bob is 2nd of 3 after 2 ends.",
        "Cat is 3rd of 3 after 2 ends.",
    ]
    assert [(n.archer_id, n.position, n.of, n.change, n.ends) for n in notices] == [
        ("ann", 1, 3, None, 2),
        ("bob", 2, 3, None, 2),
        ("cat", 3, 3, None, 2),
    ]
    # 3 ends: no digest (but Cat's lead, 3 ends after Ann's).
    shoot.shoot("bob", *END_OF_9)
    assert texts(shoot.shoot("cat", *END_OF_9, *END_OF_9, *END_OF_9)) == ["Cat has taken the lead!"]
    # 4 ends: a digest with the changes since the last one.
    shoot.shoot("ann", *END_OF_5)
    notices = shoot.shoot("bob", *END_OF_7)
    assert texts(notices) == [
        "Cat is 1st of 3 after 4 ends (up 2).",
        "Ann is 2nd of 3 after 4 ends (down 1).",
        "Bob is 3rd of 3 after 4 ends (down 1).",
    ]
    assert [n.change for n in notices] == [2, -1, -1]
    assert all(n.ends == 4 for n in notices)


def test_digest_shows_unchanged_and_shared_places() -> None:
    shoot = Shoot()
    for aid in ("ann", "bob", "cat"):
        shoot.set(aid)
    shoot.shoot("ann", *END_OF_9, *END_OF_9)
    shoot.shoot("bob", *END_OF_7, *END_OF_7)
    assert len(shoot.shoot("cat", *END_OF_7, *END_OF_7)) == 3
    shoot.shoot("ann", *END_OF_9, *END_OF_9)
    shoot.shoot("bob", *END_OF_7, *END_OF_7)
    notices = shoot.shoot("cat", *END_OF_7, *END_OF_7)
    assert texts(notices) == [
        "Ann is 1st of 3 after 4 ends (no change).",
        "Bob is joint 2nd of 3 after 4 ends (no change).",
        "Cat is joint 2nd of 3 after 4 ends (no change).",
    ]
    assert [n.change for n in notices] == [0, 0, 0]


def test_a_late_joiner_holds_the_digest_back_and_has_no_change() -> None:
    shoot = Shoot()
    shoot.set("ann")
    shoot.set("bob")
    shoot.shoot("ann", *END_OF_9, *END_OF_9)
    assert len(shoot.shoot("bob", *END_OF_7, *END_OF_7)) == 2  # a digest line each
    assert shoot.shoot("cat", 9) == ()  # the group is back to 0 complete ends
    shoot.shoot("ann", *END_OF_9, *END_OF_9)
    shoot.shoot("bob", *END_OF_7, *END_OF_7)
    # Cat catches up to 3 ends: still no digest for ends 2-3, already announced.
    assert shoot.shoot("cat", *(9,) * 17) == ()
    notices = shoot.shoot("cat", *END_OF_9)
    assert [(n.archer_id, n.change) for n in notices if n.kind == "digest"] == [
        ("ann", 0),
        ("cat", None),
        ("bob", -1),
    ]


def test_an_archer_who_leaves_drops_out_of_the_group() -> None:
    shoot = Shoot()
    for aid in ("ann", "bob", "cat"):
        shoot.shoot(aid, *END_OF_9)
    shoot.set("cat", left=True)
    shoot.shoot("ann", *END_OF_9)
    notices = shoot.shoot("bob", *END_OF_7)
    assert {n.archer_id for n in notices} == {"ann", "bob"}
    assert {n.of for n in notices} == {2}


def test_an_archer_who_changes_round_moves_to_the_other_group() -> None:
    shoot = Shoot()
    for aid in ("ann", "bob", "cat"):
        shoot.set(aid)
    shoot.shoot("ann", *END_OF_9, *END_OF_9)
    shoot.shoot("bob", *END_OF_7, *END_OF_7)
    assert len(shoot.shoot("cat", *END_OF_5, *END_OF_5)) == 3
    assert shoot.set("cat", round="york") == ()  # alone on the York: nothing to tell
    assert [g.round for g in shoot.board.groups] == ["national", "york"]
    shoot.shoot("ann", *END_OF_9, *END_OF_9)
    notices = shoot.shoot("bob", *END_OF_7, *END_OF_7)
    assert texts(notices) == [
        "Ann is 1st of 2 after 4 ends (no change).",
        "Bob is 2nd of 2 after 4 ends (no change).",
    ]


# -- when nothing is said ------------------------------------------------------------------


def test_no_notices_when_the_board_did_not_change() -> None:
    board = build_leaderboard(
        [
            Register("ann", Stamp(1, 0, "a"), ArcherState("Ann", "national", arrows=END_OF_9 * 2)),
            Register("bob", Stamp(1, 0, "b"), ArcherState("Bob", "national", arrows=END_OF_7 * 2)),
        ]
    )
    # From a fresh notifier, this board would call for a lead and a digest...
    _, notices = next_notices(NotifierState(), Leaderboard(), board)
    assert len(notices) == 3
    # ...but not when it is also the board before.
    state, notices = next_notices(NotifierState(), board, board)
    assert notices == ()
    assert state.rounds["national"] == RoundMemory()


def test_a_change_in_one_round_says_nothing_about_another() -> None:
    national = [
        Register("ann", Stamp(1, 0, "a"), ArcherState("Ann", "national", arrows=END_OF_9 * 2)),
        Register("bob", Stamp(1, 0, "b"), ArcherState("Bob", "national", arrows=END_OF_7 * 2)),
    ]
    york = Register("cat", Stamp(1, 0, "c"), ArcherState("Cat", "york", arrows=(9,) * 5))
    before = build_leaderboard([*national, york])
    after = build_leaderboard(
        [*national, replace(york, state=replace(york.state, arrows=END_OF_9))]
    )
    # Cat completes an end: she gets a handicap and the overall positions change...
    assert before.group("national") != after.group("national")
    # ...but the National's ranking is the same, and a fresh York group of one is silent.
    _, notices = next_notices(NotifierState(), before, after)
    assert notices == ()


def test_rounds_nobody_shoots_any_more_are_forgotten() -> None:
    shoot = Shoot()
    shoot.shoot("ann", *END_OF_9, *END_OF_9)
    shoot.shoot("bob", *END_OF_7, *END_OF_7)
    assert "national" in shoot.notifier.rounds
    shoot.set("ann", round="york", arrows=())
    shoot.set("bob", round="york", arrows=())
    assert set(shoot.notifier.rounds) == {"york"}


def test_ordinals() -> None:
    cases = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th", 13: "13th"}
    cases |= {21: "21st", 22: "22nd", 101: "101st", 111: "111th", 200: "200th"}
    assert {n: ordinal(n) for n in cases} == cases


# -- properties ----------------------------------------------------------------------------

ARCHERS = ("ann", "bob", "cat")


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(ARCHERS),
            st.sampled_from([9, 7, 5, 3, 1, "M"]),
            st.sampled_from([False] * 5 + [True]),  # now and then, a corrected arrow
        ),
        max_size=150,
    )
)
def test_throttles_hold_for_any_shoot(writes: list[tuple[str, Arrow, bool]]) -> None:
    info = get_round("national")
    shoot = Shoot()
    for aid in ARCHERS:
        shoot.set(aid)
    leads: list[tuple[Notice, int]] = []  # with the leader's own ends at the time
    digest_ends: list[int] = []
    for aid, arrow, undo in writes:
        arrows = shoot.states[aid].arrows
        if undo and arrows:
            notices = shoot.set(aid, arrows=arrows[:-1])
        elif len(arrows) < info.total_arrows:
            notices = shoot.shoot(aid, arrow)
        else:
            continue
        group = shoot.board.groups[0]
        ends = min(s.ends_completed for s in group.standings)
        assert all(n.ends == ends for n in notices)
        lead = [n for n in notices if n.kind == "lead"]
        digest = [n for n in notices if n.kind == "digest"]
        assert len(lead) <= 1
        for n in lead:
            standing = shoot.board.standing(n.archer_id)
            assert standing is not None
            assert standing.position == 1
            leads.append((n, standing.ends_completed))
        if digest:
            assert sorted(n.archer_id for n in digest) == sorted(ARCHERS)
            assert [n.position for n in digest] == [s.position for s in group.standings]
            digest_ends.append(ends)
    # Never the same leader twice in a row; one archer at most once per 2 of their ends.
    for (earlier, _), (later, _) in itertools.pairwise(leads):
        assert later.archer_id != earlier.archer_id
    for archer in ARCHERS:
        own = [ends for n, ends in leads if n.archer_id == archer]
        assert all(b >= a + 2 for a, b in itertools.pairwise(own))
    # Each digest is for a later pair of ends than the one before.
    halves = [e // 2 for e in digest_ends]
    assert halves == sorted(set(halves))
    assert all(e >= 2 for e in digest_ends)


def test_notifier_state_is_immutable() -> None:
    shoot = Shoot()
    shoot.set("ann")
    shoot.set("bob")
    shoot.shoot("ann", *END_OF_9, *END_OF_9)
    shoot.shoot("bob", *END_OF_7, *END_OF_7)
    memory = shoot.notifier.rounds["national"]
    assert dict(memory.digest_positions) == {"ann": 1, "bob": 2}
    with pytest.raises(TypeError):
        memory.digest_positions["ann"] = 5  # type: ignore[index]
    with pytest.raises(TypeError):
        shoot.notifier.rounds["york"] = RoundMemory()  # type: ignore[index]
