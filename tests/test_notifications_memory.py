"""The notifier's memory: stored with the document, read back after a restart or an idle
unload, and nothing announced twice because of it."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.clock import Stamp
from sync.leaderboard import build_leaderboard
from sync.models import ArcherState
from sync.notifications import NotifierState, RoundMemory, assume_announced, next_notices
from sync.register import Register
from sync.rounds import Arrow, get_round
from tests.test_notifications import ARCHERS, END_OF_5, END_OF_7, END_OF_9, Shoot, texts

# -- restarts --------------------------------------------------------------------------------


def test_a_restart_announces_no_lead_again() -> None:
    # Regression: the memory lived only in the actor; a restart or an idle unload started
    # afresh and the next write announced the current leader again.
    shoot = Shoot()
    shoot.set("chris")
    shoot.set("alex")
    assert texts(shoot.shoot("chris", *END_OF_9)) == ["Chris has taken the lead!"]
    shoot.restart()
    assert shoot.shoot("alex", *END_OF_5) == ()  # Chris still leads: nothing new
    shoot.restart()
    assert shoot.shoot("chris", *END_OF_9) == ()  # ends 1 for Alex: no digest either
    notices = shoot.shoot("alex", *END_OF_5)  # 2 ends each
    assert [n.kind for n in notices] == ["digest", "digest"]
    shoot.restart()
    # The digest for ends 2 is not repeated when the progress comes back to 2.
    shoot.set("alex", arrows=shoot.states["alex"].arrows[:-1])
    shoot.restart()
    assert shoot.shoot("alex", 5) == ()


def test_a_restart_keeps_the_lead_throttle_and_the_digest_changes() -> None:
    shoot = Shoot()
    shoot.set("ann")
    shoot.set("bob")
    assert texts(shoot.shoot("ann", *END_OF_7)) == ["Ann has taken the lead!"]  # her end 1
    assert texts(shoot.shoot("bob", *END_OF_9)) == ["Bob has taken the lead!"]
    shoot.restart()
    # Ann's 2nd end puts her in front: 1 end since her notice, so held back (a fresh
    # memory would have announced it).
    assert shoot.shoot("ann", *END_OF_9) == ()
    shoot.restart()
    digest = shoot.shoot("bob", *END_OF_5)
    assert texts(digest) == ["Ann is 1st of 2 after 2 ends.", "Bob is 2nd of 2 after 2 ends."]
    shoot.restart()
    assert texts(shoot.shoot("ann", *END_OF_7)) == ["Ann has taken the lead!"]  # her end 3
    shoot.restart()
    assert texts(shoot.shoot("bob", *END_OF_9, *END_OF_9)) == ["Bob has taken the lead!"]
    shoot.restart()
    notices = shoot.shoot("ann", *END_OF_5)  # the 4-end digest knows the 2-end one
    assert texts(notices) == [
        "Bob is 1st of 2 after 4 ends (up 1).",
        "Ann is 2nd of 2 after 4 ends (down 1).",
    ]


def test_a_shoot_loaded_without_a_memory_takes_its_board_as_told() -> None:
    registers = [
        Register("ann", Stamp(1, 0, "a"), ArcherState("Ann", "national", arrows=END_OF_9 * 3)),
        Register("bob", Stamp(1, 0, "b"), ArcherState("Bob", "national", arrows=END_OF_7 * 2)),
        Register("cat", Stamp(1, 0, "c"), ArcherState("Cat", "york", arrows=END_OF_9)),
    ]
    board = build_leaderboard(registers)
    state = assume_announced(NotifierState(), board)
    assert state.rounds["national"] == RoundMemory(
        digest_ends=2, digest_positions={"ann": 1, "bob": 2}, leader="ann", lead_ends={"ann": 3}
    )
    assert "york" not in state.rounds  # alone: nothing was told
    # A round it remembers keeps its memory.
    kept = NotifierState(rounds={"national": RoundMemory(leader="bob")})
    assert assume_announced(kept, board).rounds["national"] == RoundMemory(leader="bob")
    # Bob's next end: no lead for Ann again, no digest for ends 2 again.
    bob = registers[1]
    after = build_leaderboard(
        [registers[0], replace(bob, state=replace(bob.state, arrows=END_OF_7 * 3))]
    )
    assert next_notices(state, board, after)[1] == ()


def test_the_memory_survives_malformed_stored_data_as_a_fresh_one() -> None:
    stored = {
        "national": {
            "digest_ends": 4.0,
            "digest_positions": {"ann": 1.0, "bob": "2", "cat": -1, "dan": 1.5},
            "leader": 7,
            "lead_ends": {"ann": 3.0, "bob": float("nan"), "cat": True, "dan": float("inf")},
        },
        "york": "garbage",
        "worcester": {},
    }
    state = NotifierState.from_doc(stored)
    assert state.rounds["national"] == RoundMemory(
        digest_ends=4, digest_positions={"ann": 1}, leader=None, lead_ends={"ann": 3}
    )
    assert state.rounds["york"] == RoundMemory()
    assert state.rounds["worcester"] == RoundMemory()


def test_only_changed_and_forgotten_rounds_are_stored_again() -> None:
    old = NotifierState(rounds={"national": RoundMemory(leader="a"), "york": RoundMemory()})
    new = NotifierState(
        rounds={"national": RoundMemory(leader="a"), "worcester": RoundMemory(leader="b")}
    )
    assert new.doc_changes(old) == {
        "worcester": {
            "digest_ends": 0,
            "digest_positions": {},
            "leader": "b",
            "lead_ends": {},
        },
        "york": None,
    }
    assert new.doc_changes(new) == {}
    # A round appearing with nothing told yet is not worth a document update.
    assert NotifierState(rounds={"york": RoundMemory()}).doc_changes(NotifierState()) == {}


#: Mostly scoring (whole ends, so leads change hands and digests come), with corrections,
#: archers leaving, coming back and changing round, and restarts anywhere.
ACTIONS = st.tuples(
    st.sampled_from(ARCHERS),
    st.sampled_from(["end"] * 6 + ["arrow", "undo", "leave", "york"] + ["restart"] * 3),
    st.sampled_from([10, 9, 7, 5, 1, "M"]),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(ACTIONS, max_size=120))
def test_restarts_change_nothing_that_is_announced(
    actions: list[tuple[str, str, Arrow]],
) -> None:
    """A shoot restarted anywhere (memory through plain data) tells exactly what an
    uninterrupted one tells; and no notice is ever about a round of one archer."""
    steady, restarted = Shoot(), Shoot()
    for aid in ARCHERS:
        steady.set(aid)
        restarted.set(aid)
    for aid, action, arrow in actions:
        if action == "restart":
            restarted.restart()
            continue
        state = steady.states[aid]
        info = get_round(state.round)
        changes: dict[str, object]
        if action == "undo":
            changes = {"arrows": state.arrows[:-1]}
        elif action == "leave":
            changes = {"left": not state.left}
        elif action == "york":
            changes = {"round": "york" if state.round == "national" else "national", "arrows": ()}
        else:
            count = 1 if action == "arrow" else info.end_size
            arrows = (*state.arrows, *(arrow,) * count)[: info.total_arrows]
            changes = {"arrows": arrows}
        told = steady.set(aid, **changes)
        assert restarted.set(aid, **changes) == told
        for notice in told:
            group = steady.board.group(notice.round)
            assert group is not None
            assert len(group.standings) >= 2
            assert notice.of == len(group.standings)
