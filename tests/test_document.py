"""The shoot document: one writer, replicas that catch up by state vector."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.clock import Stamp
from sync.document import EMPTY_STATE_VECTOR, ShootDocument, decode_state_vector
from sync.errors import ProtocolError
from sync.models import ArcherState, Profile, Shoot
from sync.register import Applied, Duplicate, Register, Superseded

SHOOT = Shoot("1234", "s1", "Club night", "Sam", 0, 1, "Europe/London")


def reg(ms: int, arrows: tuple[object, ...], archer: str = "a1", **kw: object) -> Register:
    state = ArcherState("Chris", "national", arrows=arrows, **kw)  # type: ignore[arg-type]
    return Register(archer, Stamp(ms, 0, "phone"), state)


def test_write_outcomes() -> None:
    doc = ShootDocument()
    first, newer = reg(1, (9,)), reg(2, (9, 7))
    assert isinstance(doc.write(first)[0], Applied)
    assert isinstance(doc.write(newer)[0], Applied)
    outcome, update = doc.write(first)
    assert isinstance(outcome, Superseded)
    assert outcome.winner == newer
    assert update == b""
    outcome, update = doc.write(newer)
    assert isinstance(outcome, Duplicate)
    assert update == b""
    assert doc.register("a1") == newer


def test_replica_follows_updates_including_undo() -> None:
    writer, replica = ShootDocument(client_id=1), ShootDocument()
    for ms, arrows in [(1, (9, 7)), (2, (9, 7, 5)), (3, (9,)), (4, (9, "M", 1))]:
        _, update = writer.write(reg(ms, arrows))
        replica.apply_update(update)
        assert replica.registers() == writer.registers()
    assert replica.register("a1") == reg(4, (9, "M", 1))


def test_one_arrow_update_is_small_however_long_the_round() -> None:
    writer = ShootDocument(client_id=1)
    arrows: tuple[object, ...] = (9,) * 60
    writer.write(reg(1, arrows))
    _, update = writer.write(reg(2, (*arrows, 7)))
    assert len(update) < 80


def test_diff_sends_only_what_the_replica_lacks() -> None:
    writer, replica = ShootDocument(client_id=1), ShootDocument()
    writer.write(reg(1, (9,) * 30))
    replica.apply_update(writer.diff())
    writer.write(reg(2, (9,) * 31))
    diff = writer.diff(replica.state_vector())
    assert len(diff) < len(writer.diff()) / 4
    replica.apply_update(diff)
    assert replica.registers() == writer.registers()


def test_a_diff_asked_again_reflects_every_change_since() -> None:
    """Diffs are kept per state vector while the document is unchanged (a reconnect
    storm asks for the same one thousands of times); any change must drop them, or a
    replica would be welcomed without the latest write."""
    writer, other = ShootDocument(client_id=1), ShootDocument(client_id=2)
    replica = ShootDocument()
    writer.write(reg(1, (9,)))
    replica.apply_update(writer.diff())
    state_vector = replica.state_vector()
    assert writer.diff(state_vector) == writer.diff(state_vector)
    assert writer.knows(state_vector)
    for change in (
        lambda: writer.write(reg(2, (9, 7))),  # a write here
        lambda: writer.apply_update(other.write(reg(3, (1,), archer="b2"))[1]),  # from elsewhere
        lambda: writer.set_meta(SHOOT),  # the shoot's own fields
    ):
        change()
        caught_up = ShootDocument()
        caught_up.apply_update(replica.diff())
        caught_up.apply_update(writer.diff(state_vector))
        assert caught_up.registers() == writer.registers()
        assert caught_up.meta == writer.meta
    assert not ShootDocument(client_id=3).knows(writer.state_vector())


def test_knows_detects_items_the_writer_never_had() -> None:
    lost = ShootDocument(client_id=1)
    lost.write(reg(1, (9,)))
    replica = ShootDocument()
    replica.apply_update(lost.diff())
    # The writer restarts without that write (it never reached Redis).
    restarted = ShootDocument(client_id=2)
    assert not restarted.knows(replica.state_vector())
    assert restarted.knows(EMPTY_STATE_VECTOR)
    restarted.write(reg(2, (9, 9)))
    assert restarted.knows(ShootDocument.load([restarted.diff()]).state_vector())


def test_load_from_snapshot_and_log() -> None:
    writer = ShootDocument(client_id=1)
    shoot = Shoot("1234", "s1", "Club night", "Sam", 0, 1, "Europe/London")
    log = [writer.set_meta(shoot)]
    snapshot = writer.diff()
    for ms in range(2, 6):
        log.append(writer.write(reg(ms, (9,) * ms, archer=f"a{ms % 2}"))[1])
    loaded = ShootDocument.load([snapshot, *log[1:]])
    assert loaded.registers() == writer.registers()
    assert loaded.meta == shoot
    assert ShootDocument.load(log).registers() == writer.registers()


def test_malformed_input_is_a_protocol_error() -> None:
    doc = ShootDocument()
    with pytest.raises(ProtocolError) as info:
        doc.apply_update(b"\xff\xff\xff")
    assert info.value.code == "invalid_update"
    with pytest.raises(ProtocolError):
        doc.diff(b"\x05\x01")
    with pytest.raises(ProtocolError):
        decode_state_vector(b"\x01\x80")
    assert decode_state_vector(b"\x01\x07\x12") == {7: 18}


def test_the_notices_memory_is_stored_and_reaches_replicas() -> None:
    writer, replica = ShootDocument(client_id=1), ShootDocument()
    replica.apply_update(writer.write(reg(1, (9,)))[1])
    update = writer.remember_notices({"national": {"leader": "a1", "lead_ends": {"a1": 1}}})
    replica.apply_update(update)
    expected = {"national": {"leader": "a1", "lead_ends": {"a1": 1.0}}}
    assert replica.notices_memory() == expected
    assert ShootDocument.load([writer.diff()]).notices_memory() == expected
    assert replica.registers() == writer.registers()  # the registers are not touched

    # An unchanged value is not written again; None removes a round.
    assert writer.remember_notices({"national": {"leader": "a1", "lead_ends": {"a1": 1}}}) == b""
    assert writer.remember_notices({}) == b""
    assert writer.remember_notices({"york": None}) == b""  # nothing to remove
    replica.apply_update(writer.remember_notices({"national": None, "york": {"leader": None}}))
    assert replica.notices_memory() == {"york": {"leader": None}}
    assert replica.state_vector() == writer.state_vector()


_text = st.text(max_size=12)
_registers = st.builds(
    Register,
    archer_id=st.sampled_from(["a1", "a2", 'ä "3"']),
    stamp=st.builds(
        Stamp, st.integers(0, 2**52), st.integers(0, 2**31), st.text(min_size=1, max_size=8)
    ),
    state=st.builds(
        ArcherState,
        name=_text,
        round=_text,
        profile=st.builds(Profile, _text, _text, _text),
        arrows=st.lists(st.sampled_from([*range(11), "X", "M"]), max_size=15).map(tuple),
        finished=st.booleans(),
        left=st.booleans(),
    ),
)


@given(st.lists(_registers, min_size=1, max_size=12))
def test_a_replica_reads_exactly_what_the_writer_wrote(writes: list[Register]) -> None:
    """Any text (quotes, escapes, control characters, emoji) and any stamp survives the
    replica's reading of the document, after every update."""
    writer, replica = ShootDocument(client_id=1), ShootDocument()
    for write in writes:
        _, update = writer.write(write)
        if update:
            replica.apply_update(update)
        assert replica.registers() == writer.registers()
    assert ShootDocument.load([writer.diff()]).registers() == writer.registers()
