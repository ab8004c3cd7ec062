"""The fan-out's runs: updates held while a run is handled go out as one, in order."""

from __future__ import annotations

from relay.fanout import HeldUpdates
from sync.codec import decode_server
from sync.document import ShootDocument
from sync.protocol import Update
from tests.wire import register


def _updates(count: int) -> tuple[ShootDocument, list[bytes]]:
    writer = ShootDocument()
    return writer, [writer.write(register(f"a{n}", (9,) * (n + 1)))[1] for n in range(count)]


def test_a_run_goes_out_as_one_update_that_applies_like_its_parts() -> None:
    writer, updates = _updates(5)
    sent: list[bytes] = []
    arrivals: list[float] = []
    held = HeldUpdates(sent.append, arrivals.append)

    held.offer(updates[0], 1.0)  # outside a run: at once
    assert len(sent) == 1
    assert arrivals == [1.0]
    held.hold()
    held.offer(updates[1], 2.0)
    held.offer(updates[2], 3.0)
    assert len(sent) == 1  # held
    held.flush()  # e.g. before a notice about them
    held.offer(updates[3], 4.0)
    held.offer(updates[4])
    held.release()
    held.release()  # nothing left: sends nothing
    assert len(sent) == 3
    assert arrivals == [1.0, 2.0, 4.0]  # each frame's first write

    replica = ShootDocument()
    for frame in sent:
        message = decode_server(frame)
        assert isinstance(message, Update)
        replica.apply_update(message.update)
    assert replica.registers() == writer.registers()


def test_a_run_with_nothing_in_it_sends_nothing() -> None:
    sent: list[bytes] = []
    held = HeldUpdates(sent.append)
    held.hold()
    held.flush()
    held.release()
    assert sent == []
