"""The relay's protocol state machine (:mod:`sync.relay_state`) driven by events alone:
writes, durability, welcomes and crashes, with a device's replica as the other peer."""

from __future__ import annotations

import pytest

from sync.clock import MAX_CLOCK_SKEW_MS, Stamp
from sync.document import EMPTY_STATE_VECTOR, ShootDocument
from sync.errors import ClockSkewError, InvalidState, LimitExceeded
from sync.models import ArcherState
from sync.protocol import Ack, Error
from sync.protocol import Superseded as SupersededAnswer
from sync.register import Applied, Duplicate, Register, Superseded
from sync.relay_state import ShootState, write_answer, write_refusal

NOW = 1_780_000_000_000


def write(device: str, wall_ms: int, *arrows: int) -> Register:
    return Register(
        "chris", Stamp(wall_ms, 0, device), ArcherState("Chris", "national", arrows=arrows)
    )


def fresh() -> ShootState[str]:
    return ShootState(ShootDocument(client_id=1))


def test_an_ack_waits_for_its_own_update() -> None:
    state = fresh()
    written = state.write(write("phone", NOW, 9), NOW)
    assert isinstance(written.outcome, Applied)
    assert written.update is not None
    assert written.needs == 1
    assert state.hold(written.needs, "ack") == []
    assert state.made_durable(1) == ["ack"]
    assert state.made_durable(1) == []  # released once


def test_superseded_waits_for_the_winner_to_be_durable() -> None:
    """The bug the review reintroduced: answering ``superseded`` at once. The winner is
    not in Redis yet; a crash would lose it while the loser's device dropped its write."""
    state = fresh()
    newer = state.write(write("tablet", NOW, 9, 9), NOW)
    state.hold(newer.needs, "ack tablet")
    older = state.write(write("phone", NOW - 1, 1), NOW)
    assert isinstance(older.outcome, Superseded)
    assert older.update is None
    assert older.needs == newer.needs
    assert state.hold(older.needs, "superseded phone") == []
    assert state.made_durable(1) == ["ack tablet", "superseded phone"]


def test_a_duplicate_waits_like_the_original() -> None:
    state = fresh()
    first = state.write(write("phone", NOW, 9), NOW)
    again = state.write(write("phone", NOW, 9), NOW)
    assert isinstance(again.outcome, Duplicate)
    assert again.needs == first.needs == 1
    assert state.hold(again.needs, "dup") == []
    assert state.made_durable(1) == ["dup"]


def test_an_answer_about_a_loaded_value_goes_at_once() -> None:
    """Values loaded from Redis are durable (update number 0)."""
    peer = fresh()
    peer.write(write("tablet", NOW, 9), NOW)
    state: ShootState[str] = ShootState(ShootDocument.load([peer.doc.diff()], client_id=2))
    older = state.write(write("phone", NOW - 5, 1), NOW)
    assert isinstance(older.outcome, Superseded)
    assert older.needs == 0
    assert state.hold(older.needs, "superseded") == ["superseded"]


def test_a_write_is_answered_with_its_own_stamp_or_the_winner() -> None:
    state = fresh()
    mine = write("phone", NOW, 9)
    won = state.write(mine, NOW)
    assert write_answer(7, mine, won.outcome) == Ack(7, "chris", mine.stamp)
    again = state.write(mine, NOW)  # a resend: a duplicate is acknowledged again
    assert write_answer(8, mine, again.outcome) == Ack(8, "chris", mine.stamp)
    older = write("tablet", NOW - 1, 1)
    lost = state.write(older, NOW)
    assert write_answer(9, older, lost.outcome) == SupersededAnswer(9, mine)


def test_a_refused_write_is_told_why_and_a_skewed_one_gets_the_relays_clock() -> None:
    state = fresh()
    try:
        state.write(write("phone", NOW + MAX_CLOCK_SKEW_MS + 1, 9), NOW)
    except ClockSkewError as exc:
        assert write_refusal(3, exc) == Error("clock_skew", exc.message, id=3, server_ms=NOW)
    else:
        pytest.fail("a write stamped too far ahead was accepted")
    refused = write_refusal(4, InvalidState("invalid_arrow", "No such arrow."))
    assert refused == Error("invalid_arrow", "No such arrow.", id=4)
    assert not refused.fatal
    assert refused.server_ms is None


def test_refusals_change_nothing() -> None:
    state = fresh()
    vector = state.doc.state_vector()
    with pytest.raises(ClockSkewError) as skew:
        state.write(write("phone", NOW + MAX_CLOCK_SKEW_MS + 1, 9), NOW)
    assert skew.value.server_ms == NOW
    with pytest.raises(InvalidState):
        state.write(write("phone", NOW, 99), NOW)
    with pytest.raises(LimitExceeded):
        state.write(write("phone", NOW, 9), NOW, has_room=lambda: False)
    assert state.doc.state_vector() == vector
    assert state.applied == 0


def test_numbering_covers_every_update_in_order() -> None:
    state = fresh()
    assert state.record() == 1  # e.g. the shoot's metadata
    written = state.write(write("phone", NOW, 9), NOW)
    assert written.needs == 2
    state.hold(written.needs, "ack")
    assert state.made_durable(1) == []
    assert state.made_durable(2) == ["ack"]


def test_abandon_returns_what_never_became_durable() -> None:
    state = fresh()
    state.hold(state.write(write("phone", NOW, 9), NOW).needs, "ack")
    assert state.abandon() == ["ack"]
    assert state.made_durable(1) == []


def test_two_peers_catch_up_and_a_replica_ahead_of_a_crash_is_reset() -> None:
    """A replica and the relay in memory: the catch-up is a diff while the relay knows
    everything the replica has, and a reset once the replica holds an update a crashed
    incarnation never persisted."""
    persisted: list[bytes] = []
    relay = fresh()
    replica = ShootDocument()
    first = relay.write(write("phone", NOW, 9), NOW)
    assert first.update is not None
    persisted.append(first.update)
    catchup = relay.welcome(replica.state_vector())
    assert not catchup.reset
    replica.apply_update(catchup.update)
    lost = relay.write(write("phone", NOW + 1, 9, 7), NOW)
    assert lost.update is not None
    replica.apply_update(lost.update)  # fanned out, never flushed

    restarted: ShootState[str] = ShootState(ShootDocument.load(persisted, client_id=3))
    catchup = restarted.welcome(replica.state_vector())
    assert catchup.reset
    fresh_replica = ShootDocument()
    fresh_replica.apply_update(catchup.update)
    assert fresh_replica.registers() == restarted.doc.registers()
    assert restarted.welcome(EMPTY_STATE_VECTOR).reset is False
