"""The client session machine driven by events, against the real relay-side machine.

Like h11's tests: two in-memory peers, a :class:`~sync.client_session.ClientSession` and a
:class:`tests.session_peers.MemoryRelay` (the real :class:`~sync.relay_state.ShootState`),
with the test moving the frames between them and passing the time in.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from sync.client_actions import (
    Acked,
    Action,
    Changed,
    Close,
    Phase,
    Reconnect,
    Refused,
    Replaced,
    SaveOutbox,
    Send,
    SessionTimings,
    Timer,
    Welcomed,
    WriteUnavailable,
    includes,
)
from sync.client_session import ClientSession
from sync.clock import MAX_CLOCK_SKEW_MS, Stamp
from sync.codec import encode
from sync.limits import WRITES_BURST
from sync.models import ArcherState
from sync.outbox import OutboxState
from sync.protocol import Error, Hello, Ping, Pong, Update, Write
from sync.register import Register
from tests.session_peers import SHOOT, MemoryRelay

WALL = 1_780_000_000_000
TIMINGS = SessionTimings(ping_interval_s=15, pong_timeout_s=10, resend_after_s=10)
JOINED = ArcherState("Chris", "national")


def device(name: str, archer: str | None = "chris", **kw: Any) -> ClientSession:
    return ClientSession(
        "1234",
        name,
        archer_id=archer,
        token="t" if archer else None,
        initial=JOINED,
        timings=TIMINGS,
        **kw,
    )


def sends(actions: list[Action]) -> list[Any]:
    return [a.message for a in actions if isinstance(a, Send)]


def add(*arrows: Any) -> Any:
    return lambda s: replace(s, arrows=(*s.arrows, *arrows))


class Net:
    """Moves frames between clients and the relay; everything is delivered at once unless
    the test holds it."""

    def __init__(self, *clients: tuple[str, ClientSession]) -> None:
        self.relay = MemoryRelay()
        self.clients = dict(clients)
        self.now = 0.0
        self.log: dict[str, list[Action]] = {name: [] for name in self.clients}

    def wall(self, name: str) -> int:
        return WALL + int(self.now * 1000)

    def live(self) -> list[str]:
        return [n for n, c in self.clients.items() if c.phase in (Phase.LIVE, Phase.HELLO_SENT)]

    def carry(self, name: str, actions: list[Action]) -> None:
        self.log[name].extend(actions)
        for message in sends(actions):
            if isinstance(message, Hello):
                answer = self.relay.hello(name, message, self.wall("relay"))
                self.deliver([answer])
            elif isinstance(message, Write):
                fan = [n for n in self.live() if self.clients[n].phase is Phase.LIVE]
                self.deliver(self.relay.write(name, message, self.wall("relay"), fan))
            elif isinstance(message, Ping):
                self.deliver_to(name, Pong(message.nonce, self.wall("relay")))

    def deliver(self, answers: list[Any]) -> None:
        for answer in answers:
            self.deliver_to(answer.to, answer.message)

    def deliver_to(self, name: str, message: Any) -> None:
        client = self.clients[name]
        self.carry(name, client.received(message, self.now, self.wall(name)))

    def connect(self, name: str) -> None:
        self.carry(name, self.clients[name].connected(self.now))

    def fire(self, name: str) -> None:
        self.carry(name, self.clients[name].timer_fired(self.now, self.wall(name)))

    def write(self, name: str, change: Any) -> Register:
        register, actions = self.clients[name].write(change, self.now, self.wall(name))
        self.carry(name, actions)
        return register

    def flush(self) -> None:
        self.deliver(self.relay.flush())

    def taken(self, name: str, kind: type) -> list[Any]:
        found = [a for a in self.log[name] if isinstance(a, kind)]
        self.log[name] = [a for a in self.log[name] if not isinstance(a, kind)]
        return found


def test_hello_comes_first_and_nothing_else_until_the_welcome() -> None:
    phone = device("phone")
    register, actions = phone.write(add(9), 0.0, WALL)  # offline: saved, shown, not sent
    assert isinstance(actions[0], SaveOutbox)
    assert Changed(frozenset({"chris"}), "local") in actions
    assert sends(actions) == []
    assert phone.registers()["chris"] == register
    opened = phone.connected(0.0)
    assert [type(m) for m in sends(opened)] == [Hello]
    assert opened[-1] == Timer(TIMINGS.connect_timeout_s)  # the welcome's deadline
    assert sends(phone.timer_fired(1.0, WALL)) == []  # no write before the welcome
    closed = phone.timer_fired(TIMINGS.connect_timeout_s, WALL)
    assert Close("timeout", "The relay did not answer hello in time.") in closed
    assert phone.phase is Phase.OFFLINE


def test_a_write_goes_out_after_the_welcome_and_leaves_the_outbox_on_a_durable_ack() -> None:
    net = Net(("phone", device("phone")))
    written = net.write("phone", add(9, 9))
    net.connect("phone")
    assert net.taken("phone", Welcomed)
    assert net.clients["phone"].phase is Phase.LIVE
    net.fire("phone")  # the Timer the welcome asked for: the write is due
    assert net.relay.doc.register("chris") == written
    assert net.taken("phone", Acked) == []  # not durable yet: no answer
    net.flush()
    assert net.taken("phone", Acked) == [Acked(written)]
    assert net.clients["phone"].synced
    assert net.clients["phone"].outbox.seen("chris") == written


def test_the_last_action_is_always_the_timer() -> None:
    net = Net(("phone", device("phone")))
    net.connect("phone")
    _, actions = net.clients["phone"].write(add(9), 0.0, WALL)
    assert isinstance(actions[-1], Timer)
    assert actions[-1].at == -math.inf or actions[-1].at <= 0.0  # due now


def test_an_error_answering_hello_ends_the_session_for_good_only_when_fatal() -> None:
    phone = device("phone")
    phone.connected(0.0)
    actions = phone.received(Error("unauthorized", "No."), 0.0, WALL)
    assert Close("unauthorized", "No.", fatal=True) in actions
    assert phone.phase is Phase.CLOSED
    assert isinstance(phone.connected(1.0)[0], Close)
    other = device("tablet")
    other.connected(0.0)
    assert Close("rate_limited", "Slow.", fatal=False) in other.received(
        Error("rate_limited", "Slow."), 0.0, WALL
    )
    assert other.phase is Phase.OFFLINE
    closing = device("x")
    closing.disconnected(0.0, 0.5, close_code=4404)
    assert closing.phase is Phase.CLOSED


def test_a_frame_that_is_not_a_message_closes_the_session() -> None:
    phone = device("phone")
    phone.connected(0.0)
    assert isinstance(phone.frame_received(b"\xff\x00", 0.0, WALL)[0], Close)
    phone.connected(0.0)
    assert isinstance(phone.frame_received("text", 0.0, WALL)[0], Close)


def test_an_update_the_replica_cannot_apply_ends_the_connection_not_the_machine() -> None:
    """Live or in the welcome, the machine closes with ``invalid_update`` itself (the
    drivers once decided it from an exception) and the next connection catches up."""
    net = Net(("phone", device("phone")))
    net.connect("phone")
    before = net.clients["phone"].replica.state_vector()
    actions = net.clients["phone"].received(Update(b"\xff\xff\xff"), 1.0, WALL)
    assert [a.code for a in actions if isinstance(a, Close)] == ["invalid_update"]
    assert isinstance(actions[-1], Timer)
    assert net.clients["phone"].phase is Phase.OFFLINE
    assert net.clients["phone"].replica.state_vector() == before  # nothing applied
    net.connect("phone")  # the relay's welcome is fine: live again
    assert net.clients["phone"].phase is Phase.LIVE
    phone = device("tablet")
    hello = sends(phone.connected(0.0))[0]
    welcome = replace(net.relay.hello("tablet", hello, WALL).message, update=b"\xff")
    closed = phone.received(welcome, 0.0, WALL)
    assert [a.code for a in closed if isinstance(a, Close)] == ["invalid_update"]
    assert not any(isinstance(a, Welcomed) for a in closed)
    assert phone.phase is Phase.OFFLINE


def test_the_heartbeat_pings_when_quiet_and_gives_up_when_nothing_comes_back() -> None:
    phone = device("phone", archer=None)
    relay = MemoryRelay()
    hello = sends(phone.connected(0.0))[0]
    welcomed = phone.received(relay.hello("phone", hello, WALL).message, 0.0, WALL)
    assert welcomed[-1] == Timer(TIMINGS.ping_interval_s)
    assert sends(phone.timer_fired(14.9, WALL)) == []
    (ping,) = sends(phone.timer_fired(15.0, WALL))
    assert isinstance(ping, Ping)
    assert phone.next_timer == 25.0
    phone.received(Pong(ping.nonce, WALL), 20.0, WALL)  # answered: alive
    assert [a for a in phone.timer_fired(25.0, WALL) if isinstance(a, Close)] == []
    (ping,) = sends(phone.timer_fired(35.0, WALL))  # 15 s quiet after the pong
    closed = phone.timer_fired(45.0, WALL)
    assert closed[0] == Close("heartbeat_timeout", "The relay stopped answering; reconnecting.")
    assert phone.phase is Phase.OFFLINE


def test_an_unanswered_write_is_resent_after_the_timeout_and_at_once_after_a_reconnect() -> None:
    phone = device("phone")
    relay = MemoryRelay()
    phone.received(relay.hello("phone", sends(phone.connected(0.0))[0], WALL).message, 0, WALL)
    register, _actions = phone.write(add(9), 1.0, WALL)
    (first,) = sends(phone.timer_fired(1.0, WALL))
    assert first.register == register
    assert sends(phone.timer_fired(10.9, WALL)) == []
    (again,) = sends(phone.timer_fired(11.0, WALL))
    assert again.register == register
    assert again.id != first.id
    phone.disconnected(11.5, 0.5)
    phone.received(relay.hello("phone", sends(phone.connected(12.0))[0], WALL).message, 12, WALL)
    (resent,) = sends(phone.timer_fired(12.0, WALL))
    assert resent.register == register


def test_a_long_outbox_is_paced_like_the_relays_bucket() -> None:
    outbox = OutboxState()
    for n in range(WRITES_BURST + 5):
        outbox.put(Register(f"a{n:02}", Stamp(1000 + n, 0, "p"), JOINED))
    phone = device("phone", outbox=outbox)
    relay = MemoryRelay()
    phone.received(relay.hello("phone", sends(phone.connected(0.0))[0], WALL).message, 0, WALL)
    burst = sends(phone.timer_fired(0.0, WALL))
    assert [w.register.archer_id for w in burst] == [f"a{n:02}" for n in range(WRITES_BURST)]
    assert phone.next_timer > 0.0
    assert len(sends(phone.timer_fired(phone.next_timer, WALL))) == 1


def test_rate_limited_empties_the_bucket_and_makes_the_write_due_again() -> None:
    phone = device("phone")
    relay = MemoryRelay()
    phone.received(relay.hello("phone", sends(phone.connected(0.0))[0], WALL).message, 0, WALL)
    register, _ = phone.write(add(9), 0.0, WALL)
    (sent,) = sends(phone.timer_fired(0.0, WALL))
    assert phone.received(Error("rate_limited", "Slow.", id=sent.id), 0.0, WALL)[-1].at > 0.0
    assert sends(phone.timer_fired(0.0, WALL)) == []
    (again,) = sends(phone.timer_fired(phone.next_timer, WALL))
    assert again.register == register
    assert list(phone.outbox.pending()) == [register]


def test_a_refused_write_leaves_the_outbox_and_says_why() -> None:
    phone = device("phone")
    relay = MemoryRelay()
    phone.received(relay.hello("phone", sends(phone.connected(0.0))[0], WALL).message, 0, WALL)
    register, _ = phone.write(add(9), 0.0, WALL)
    (sent,) = sends(phone.timer_fired(0.0, WALL))
    actions = phone.received(Error("invalid_arrow", "No.", id=sent.id), 0.0, WALL)
    assert Refused(register, "invalid_arrow", "No.") in actions
    assert len(phone.outbox) == 0


def test_clock_skew_corrects_the_clock_and_restamps_the_same_state() -> None:
    net = Net(("phone", device("phone")))
    ahead = 3_600_000
    net.wall = lambda name: WALL + (ahead if name == "phone" else 0)  # type: ignore[method-assign]
    net.connect("phone")
    first = net.write("phone", add(9))
    net.fire("phone")  # refused: an hour ahead; corrected and re-stamped
    (pending,) = net.clients["phone"].outbox.pending()
    assert pending.state == first.state
    assert pending.stamp != first.stamp
    assert pending.stamp.wall_ms <= WALL + MAX_CLOCK_SKEW_MS
    net.fire("phone")
    net.flush()
    assert net.taken("phone", Acked) == [Acked(pending)]


def test_a_reset_welcome_replaces_the_replica_and_resends_the_outbox() -> None:
    net = Net(("phone", device("phone")), ("viewer", device("viewer", archer=None)))
    net.connect("viewer")
    net.connect("phone")
    written = net.write("phone", add(9))
    net.fire("phone")  # applied and fanned out, never flushed
    assert net.clients["viewer"].replica.register("chris") == written
    assert net.clients["viewer"].registers() == {"chris": written}
    net.relay.crash()
    for name in ("phone", "viewer"):
        net.clients[name].disconnected(net.now, 0.5)
        net.connect(name)
    assert net.taken("viewer", Welcomed)[-1].reset
    assert net.clients["viewer"].resets == 1
    assert net.clients["viewer"].replica.registers() == {}
    # What the session shows is read from the new replica, not kept from the old one.
    assert net.clients["viewer"].registers() == {}
    net.fire("phone")  # the pending write goes again
    net.flush()
    assert net.taken("phone", Acked) == [Acked(written)]
    assert net.relay.doc.registers() == {"chris": written}


def two_devices() -> Net:
    net = Net(("phone", device("phone")), ("tablet", device("tablet")))
    for name in ("phone", "tablet"):
        net.connect(name)
    return net


def test_a_superseded_write_is_reported_with_the_winner_unless_the_winner_holds_it() -> None:
    net = two_devices()
    net.clients["phone"].disconnected(net.now, 0.5)
    lost = net.write("phone", add(9, 9))  # offline
    net.now = 1.0
    winner = net.write("tablet", add(5, 5))
    net.fire("tablet")
    net.flush()
    net.connect("phone")
    net.fire("phone")
    net.flush()
    assert net.taken("phone", Replaced) == [Replaced(lost, winner)]
    assert len(net.clients["phone"].outbox) == 0


def test_a_new_write_over_a_pending_one_that_had_already_lost_reports_the_loss() -> None:
    net = two_devices()
    net.clients["phone"].disconnected(net.now, 0.5)
    lost = net.write("phone", add(9, 9))  # offline, never sent
    net.now = 1.0
    winner = net.write("tablet", add(5, 5))
    net.fire("tablet")
    net.flush()
    # The phone learns the tablet's state (e.g. the welcome) but its write is not sent yet.
    net.clients["phone"].connected(net.now)
    hello = Hello("1234", "archer", net.clients["phone"].replica.state_vector(), "chris", "t")
    net.deliver([net.relay.hello("phone", hello, WALL)])
    net.write("phone", add(7))  # built on the tablet's state; the 9 9 would vanish
    assert net.taken("phone", Replaced) == [Replaced(lost, winner)]


def test_an_acknowledged_write_replaced_by_another_devices_state_is_reported() -> None:
    net = two_devices()
    net.clients["tablet"].disconnected(net.now, 0.5)
    other = net.write("tablet", add(5))  # offline; its clock will be ahead
    net.now = 0.5
    mine = net.write("phone", add(9, 9))
    net.fire("phone")
    net.flush()
    assert net.taken("phone", Acked) == [Acked(mine)]
    # The tablet's later stamp (its clock ran ahead) beats the phone's acked write.
    late = Register("chris", Stamp(WALL + 60_000, 0, "tablet"), other.state)
    net.clients["tablet"].outbox.replace(late)
    net.connect("tablet")
    net.fire("tablet")
    net.flush()
    assert net.taken("phone", Replaced) == [Replaced(mine, late, acknowledged=True)]


def test_no_loss_is_reported_when_the_other_device_built_on_this_ones_write() -> None:
    net = two_devices()
    net.write("phone", add(9))
    net.fire("phone")
    net.flush()
    net.now = 1.0
    net.write("tablet", add(7))  # the tablet saw the 9
    net.fire("tablet")
    net.flush()
    assert net.taken("phone", Replaced) == []
    assert net.clients["phone"].registers()["chris"].state.arrows == (9, 7)


def test_includes_is_by_round_arrows_and_flags() -> None:
    base = Register("c", Stamp(1, 0, "a"), ArcherState("C", "national", arrows=(9, 7)))
    more = Register("c", Stamp(2, 0, "b"), ArcherState("C", "national", arrows=(9, 7, 5)))
    other = Register("c", Stamp(2, 0, "b"), ArcherState("C", "york", arrows=(9, 7, 5)))
    assert includes(more, base)
    assert not includes(base, more)
    assert not includes(other, base)


def test_viewers_cannot_write_and_nothing_changes() -> None:
    viewer = device("viewer", archer=None)
    with pytest.raises(WriteUnavailable):
        viewer.write(add(9), 0.0, WALL)
    assert len(viewer.outbox) == 0


def test_frames_round_trip_through_the_codec() -> None:
    phone = device("phone")
    relay = MemoryRelay()
    hello = sends(phone.connected(0.0))[0]
    frame = encode(relay.hello("phone", hello, WALL).message)
    welcomed = phone.frame_received(frame, 0.0, WALL)
    assert [type(a) for a in welcomed[:2]] == [SaveOutbox, Welcomed]  # the shoot id is kept
    assert phone.received(Update(b"\x00\x00"), 0.0, WALL)[-1].__class__ is Timer


def test_a_write_whose_ack_comes_after_another_devices_newer_state_is_reported() -> None:
    net = two_devices()
    net.clients["tablet"].disconnected(net.now, 0.5)
    other = net.write("tablet", add(5))  # offline, built without the phone's end
    late = Register("chris", Stamp(WALL + 60_000, 0, "tablet"), other.state)
    net.clients["tablet"].outbox.replace(late)
    net.now = 0.5
    mine = net.write("phone", add(9, 9))
    net.fire("phone")  # applied, not yet durable: no ack
    net.connect("tablet")
    net.fire("tablet")  # the tablet's later state wins and reaches the phone first
    assert net.clients["phone"].replica.register("chris") == late
    assert net.taken("phone", Replaced) == []  # still pending: its answer will tell
    net.flush()
    assert net.taken("phone", Acked) == [Acked(mine)]
    assert net.taken("phone", Replaced) == [Replaced(mine, late, acknowledged=True)]


def reconnects(actions: list[Action]) -> list[float]:
    return [a.at for a in actions if isinstance(a, Reconnect)]


def test_reconnect_backs_off_with_full_jitter_and_starts_afresh_after_a_welcome() -> None:
    net = Net(("phone", device("phone")))
    net.connect("phone")
    phone = net.clients["phone"]
    # Welcomed, then dropped: the first retry within the base (0.5 s), then doubling
    # ceilings, capped at 30 s; the jitter scales each ceiling.
    assert reconnects(phone.disconnected(10.0, 0.5)) == [10.25]
    ats = [reconnects(phone.disconnected(10.0, 1.0))[0] - 10.0 for _ in range(8)]
    assert ats == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert reconnects(phone.disconnected(10.0, 0.0)) == [10.0]
    # A jitter outside [0, 1) cannot dial in the past or wait beyond the cap.
    assert reconnects(phone.disconnected(10.0, -3.0)) == [10.0]
    assert reconnects(phone.disconnected(10.0, 7.0)) == [40.0]
    net.connect("phone")  # welcomed: afresh
    assert reconnects(phone.disconnected(20.0, 1.0)) == [20.5]


def test_network_back_dials_at_once_and_starts_afresh_only_while_offline() -> None:
    net = Net(("phone", device("phone")))
    net.connect("phone")
    phone = net.clients["phone"]
    assert reconnects(phone.online(1.0)) == []  # live: nothing to do
    for _ in range(5):
        phone.disconnected(2.0, 1.0)
    assert reconnects(phone.online(3.0)) == [3.0]
    assert reconnects(phone.disconnected(3.5, 1.0)) == [4.0]  # the schedule afresh
    phone.disconnected(4.0, 1.0, close_code=4410)
    assert phone.phase is Phase.CLOSED
    assert reconnects(phone.online(5.0)) == []
    assert reconnects(phone.disconnected(5.0, 1.0)) == []


def test_a_welcome_for_another_shoot_empties_the_outbox_first() -> None:
    net = Net(("phone", device("phone")))
    net.connect("phone")
    phone = net.clients["phone"]
    assert phone.outbox.shoot_id == SHOOT.shoot_id
    phone.disconnected(1.0, 0.5)
    net.write("phone", add(9))  # offline, for the old shoot
    assert len(phone.outbox) == 1
    net.relay = MemoryRelay(replace(SHOOT, shoot_id="shoot-2"))  # the code, reused
    net.connect("phone")
    assert len(phone.outbox) == 0
    assert phone.outbox.shoot_id == "shoot-2"
    assert sends(phone.timer_fired(net.now + 1, WALL)) == []
