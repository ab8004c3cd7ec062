"""Convergence under a hostile network, on the real client and relay state machines.

The devices are :class:`~sync.client_session.ClientSession` machines (two archers, one with
a phone *and* a tablet, and two viewers), exactly what the Python SDK drives; the relay is
:class:`~sync.relay_state.ShootState` (what the actor drives) with "Redis" a list it
flushes to (:class:`tests.session_peers.MemoryRelay`). Nothing here decides a protocol
rule: the world only moves the frames the machines send and fires their timers.

- Devices score offline and online with wall clocks skewed behind, within and beyond the
  accepted bound, and clocks jump; a write stamped too far ahead is refused with the
  relay's time (``clock_skew``) and the machine corrects its clock and re-stamps it.
- The network reorders, duplicates and drops writes and answers, and partitions devices;
  a connection's stream of welcome, updates and pongs is in order (one WebSocket) until it
  breaks. Frames of a connection that has ended never reach the machine.
- The relay can crash, losing what was not flushed, and restart from what was, under a
  new Yjs client id; every connection breaks then, and replicas that hold the lost items
  get a ``reset`` welcome when they reconnect.
- Timers fire when the world says so (``timer``), after time passed (``tick``): resends,
  pacing, pings and the heartbeat's give-up run as they would.

After the network heals, everyone must agree, with each archer's register equal to the
largest write the relay accepted for them and still holds (durable, or taken since its
last crash) by an oracle written independently of :mod:`sync.register` (the documented
order, in a few lines); every acknowledged write is
kept; every outbox is empty; a re-stamped write is newer than every stamp its device knew
the relay held; and no edit vanished silently: each device's last edit is in the final
state, or some device of that archer reported (``Replaced``) a lost state holding it.
"""

from __future__ import annotations

import os
from typing import Any

import cbor2
from hypothesis import HealthCheck, example, given, note, settings

from sync.clock import MAX_CLOCK_SKEW_MS
from sync.document import ShootDocument
from sync.models import ArcherState
from sync.register import Register
from tests.convergence_world import World, decode, ops, skews

#: Histories per run: 10,000 in CI (``CI`` set, the derandomized profile), fewer on a
#: developer's machine; ``FAST_SHOOT_HISTORIES`` overrides (the mutation check uses it).
HISTORIES = int(os.environ.get("FAST_SHOOT_HISTORIES", 10_000 if os.environ.get("CI") else 1500))


def oracle_key(write: Register) -> tuple[int, int, str, bytes]:
    """The documented merge order (docs/protocol.md, "Stamps and the merge"), written
    without :mod:`sync.register`: wall time, counter, device id, then the state's core
    deterministic CBOR bytes."""
    state = write.state
    wire = {
        "name": state.name,
        "round": state.round,
        "profile": {
            "bowstyle": state.profile.bowstyle,
            "age_group": state.profile.age_group,
            "gender": state.profile.gender,
        },
        "arrows": list(state.arrows),
        "finished": state.finished,
        "left": state.left,
    }
    stamp = write.stamp
    return (stamp.wall_ms, stamp.counter, stamp.device_id, cbor2.dumps(wire, canonical=True))


def holds(winner: ArcherState, lost: ArcherState) -> bool:
    """The test's own "nothing of ``lost`` is missing from ``winner``": its arrows first."""
    return winner.round == lost.round and winner.arrows[: len(lost.arrows)] == lost.arrows


@settings(
    max_examples=HISTORIES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(skew=skews, steps=ops)
@example(
    # The correction path, every run: a write stamped 4 minutes ahead is acknowledged, the
    # clock jumps an hour ahead, the next write is refused (clock_skew), and the corrected
    # clock must still stamp past the acknowledged one (check_restamp asserts it).
    skew=[MAX_CLOCK_SKEW_MS - 60_000, 0, 0],
    steps=[
        ("reconnect", 0),
        ("stream", 0),
        ("score", 0, 9),
        ("timer", 0),
        ("deliver", 0),
        ("flush",),
        ("deliver", 0),
        ("jump", 0, 4),
        ("score", 0, 7),
        ("tick", 1_000),
        ("timer", 0),
        ("deliver", 0),
        ("deliver", 0),
    ],
)
@example(
    # A crash loses an applied write: the viewer holding it must get a reset.
    skew=[0, 0, 0],
    steps=[
        ("reconnect", 0),
        ("reconnect", 3),
        ("stream", 0),
        ("stream", 3),
        ("score", 0, 9),
        ("timer", 0),
        ("deliver", 0),
        ("stream", 3),
        ("crash",),
        ("reconnect", 3),
        ("stream", 3),
    ],
)
@example(
    # A superseded answer sent before its winner is durable: the phone drops its write,
    # the relay crashes and loses the tablet's winner, and the tablet is never seen again.
    skew=[0, 0, 0],
    steps=[
        ("score", 0, 9),
        ("tick", 1_000),
        ("score", 1, 7),
        ("deliver", 1),  # the tablet's newer write wins at the relay, not yet durable
        ("deliver", 0),  # the phone's older one: superseded, answer held until durable
        ("deliver", 0),
        ("crash",),
        ("vanish", 1),
    ],
)
@example(
    # The phone's offline end lost to the tablet's newer one before the phone scores again
    # on top of the tablet's: the replaced pending end must be reported.
    skew=[0, 0, 0],
    steps=[
        ("partition", 0),
        ("score", 0, 9),
        ("tick", 1_000),
        ("score", 1, 7),
        ("deliver", 0),
        ("flush",),
        ("partition", 0),
        ("reconnect", 0),
        ("score", 0, 5),
    ],
)
@example(
    # The phone's end is acknowledged; then the tablet, a minute ahead and offline, comes
    # back with a newer state that never held it: the phone must report its lost end.
    skew=[0, 60_000, 0],
    steps=[
        ("partition", 1),
        ("score", 1, 7),
        ("score", 0, 9),
        ("deliver", 0),
        ("flush",),
        ("deliver", 0),
        ("partition", 1),
        ("reconnect", 1),
        ("deliver", 0),
    ],
)
@example(
    # A write refused for clock_skew corrects the clock while newer, still uncorrected
    # writes are pending: the next edit's stamp is smaller than theirs, and must still
    # replace them (merging it into the outbox dropped it).
    skew=[MAX_CLOCK_SKEW_MS + 1, 0, 0],
    steps=[
        ("score", 0, 9),
        ("deliver", 0),
        ("score", 0, 9),
        ("score", 0, 9),
        ("deliver", 0),
        ("score", 0, 9),
    ],
)
@example(
    # The tablet's equal end wins over the phone's (it holds it, nothing is lost yet), then
    # the tablet's undo replaces it: the phone's last arrow is gone, and must be reported.
    skew=[0, 0, 0],
    steps=[
        *[("score", 0, 9)] * 3,
        *[("score", 1, 9)] * 4,
        ("score", 0, 9),
        ("score", 1, "undo"),
        ("deliver", 0),
    ],
)
@example(
    # Both devices far ahead: every write is refused and re-stamped; the phone's long
    # state loses to the tablet's short one, and the carried edit must be the re-stamped one.
    skew=[MAX_CLOCK_SKEW_MS + 1, MAX_CLOCK_SKEW_MS + 1, 0],
    steps=[*[("score", 0, 9)] * 9, ("score", 1, 9)],
)
@example(
    # The phone's second end, stamped a millisecond past the bound before its clock was
    # corrected, is carried late, after its newer, corrected (and acknowledged) ends: it
    # wins on its stamp, and the phone must write its newest state again above it.
    skew=[MAX_CLOCK_SKEW_MS + 1, 0, 0],
    steps=[
        ("score", 0, 9),
        ("score", 0, 9),
        ("deliver", 0),
        ("tick", 30_000),
        ("deliver", 15),
        ("score", 0, 9),
        ("score", 0, 9),
        ("tick", 120_000),
        ("duplicate", 9396),
        ("deliver", 10),
    ],
)
@example(
    # That late second end is taken, then lost in a crash before Redis has it; the phone
    # has written newer ends since (with smaller, corrected stamps) and sends those: the
    # lost one is nobody's any more, and the newest end is what must win.
    skew=[MAX_CLOCK_SKEW_MS + 1, 0, 0],
    steps=[
        ("score", 0, 9),
        ("score", 0, 9),
        ("deliver", 0),
        ("deliver", 3),
        ("tick", 30_000),
        ("score", 0, 9),
        ("score", 0, 9),
        ("score", 0, 9),
        ("deliver", 0),
        ("crash",),
    ],
)
def test_every_replica_converges_to_the_lww_oracle(skew: list[int], steps: list[Any]) -> None:
    named = [decode(step) for step in steps]
    note(f"steps={named!r}")
    world = World(skew)
    world.run(named)
    world.heal()

    # The oracle's candidates: every write the relay took a decision on and still holds:
    # the durable ones, and those since its last crash. A write a crash lost counts only
    # if its device sent it again (it is taken again then): a device that has edited since
    # sends its newest state instead, and one that vanished sends nothing.
    candidates = [
        write
        for write in world.relay.accepted
        if write in world.relay.durable or write in world.relay.since_crash
    ]
    oracle: dict[str, Register] = {}
    for write in candidates:
        best = oracle.get(write.archer_id)
        if best is None or oracle_key(write) > oracle_key(best):
            oracle[write.archer_id] = write

    final = world.relay.doc.registers()
    assert final == oracle
    assert ShootDocument.load(world.relay.persisted).registers() == oracle
    live = [end for end in world.endpoints.values() if not end.vanished]
    for end in live:
        assert end.machine.replica.registers() == oracle, end.name
        assert end.machine.registers() == oracle, end.name
        assert not len(end.machine.outbox), end.name
    for acked in world.relay.acked:
        assert oracle_key(acked) <= oracle_key(final[acked.archer_id])
    # Nothing vanished silently: each edit a device made is held by what the device built
    # its next edit on (or, for its last, by the final state), or a device of that archer
    # reported a lost state that held it.
    for end in live[:3]:
        archer = end.machine.archer_id
        if archer is None or not end.edits:
            continue
        reported = [
            r.lost.state
            for other in world.endpoints.values()
            if other.machine.archer_id == archer
            for r in other.replaced
        ]
        followers = [base for base, _ in end.edits[1:]] + [final[archer].state]
        for (_, edit), follower in zip(end.edits, followers, strict=True):
            assert holds(follower, edit) or any(holds(lost, edit) for lost in reported), (
                end.name,
                edit.arrows,
                follower.arrows,
                [s.arrows for s in reported],
            )
