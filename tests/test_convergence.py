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
from dataclasses import dataclass, field, replace
from typing import Any

import cbor2
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from sync import client_actions as A
from sync.client_session import ClientSession
from sync.clock import MAX_CLOCK_SKEW_MS, Stamp
from sync.document import ShootDocument
from sync.models import ArcherState
from sync.protocol import (
    ClientMessage,
    Error,
    Hello,
    Ping,
    Pong,
    ServerMessage,
    Superseded,
    Update,
    Write,
)
from sync.register import Register
from tests.session_peers import MemoryRelay

START_MS = 1_780_000_000_000
#: Histories per run: 10,000 in CI (``CI`` set, the derandomized profile), fewer on a
#: developer's machine; ``FAST_SHOOT_HISTORIES`` overrides (the mutation check uses it).
HISTORIES = int(os.environ.get("FAST_SHOOT_HISTORIES", 10_000 if os.environ.get("CI") else 1500))
TIMINGS = A.SessionTimings(
    ping_interval_s=20.0, pong_timeout_s=10.0, resend_after_s=5.0, connect_timeout_s=10.0
)


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


@dataclass
class Frame:
    to: str  # "relay" or an endpoint name
    sender: str
    conn: int  # the connection it travels on
    message: ClientMessage | ServerMessage


@dataclass
class Endpoint:
    name: str
    machine: ClientSession
    skew_ms: int = 0
    conn: int = 0
    """The current connection's number; 0 while disconnected."""
    stream: list[Frame] = field(default_factory=list)
    partitioned: bool = False
    vanished: bool = False
    """Gone for good (a phone that died): never reconnects, never resends."""
    edits: list[tuple[ArcherState, ArcherState]] = field(default_factory=list)
    """Each local edit: the state it was built on, and the state it wrote."""
    replaced: list[A.Replaced] = field(default_factory=list)
    accepted: list[Stamp] = field(default_factory=list)
    """Stamps this device knows the relay accepted (acks, and winners it was shown)."""


#: The operations of a history. Each step is generated as one integer that :func:`decode`
#: splits into an op and two arguments and names (drawing a tuple per step, or nested
#: tagged tuples, cost hypothesis more time than running the step); a failure prints the
#: named steps (``note``), and explicit examples are written named.
OPS = (
    "score", "deliver", "deliver", "duplicate", "drop", "tick", "timer", "flush", "crash",
    "partition", "reconnect", "stream", "disconnect", "jump", "vanish",
)  # fmt: skip
VALUES = (9, 7, 5, "M", "undo")
TICKS = (1_000, 6_000, 30_000, 120_000)
#: The arguments' ranges: ``a`` picks among frames in flight or devices (by modulo), ``b``
#: among values, ticks and endpoints.
A_VALUES = 10**6 + 1
B_VALUES = 5
ops = st.lists(st.integers(0, len(OPS) * A_VALUES * B_VALUES - 1), min_size=10, max_size=100)


def decode(step: int | tuple[Any, ...]) -> tuple[Any, ...]:
    """A named step (``("score", 0, 9)``) from a generated integer; named ones pass."""
    if isinstance(step, tuple):
        return step
    rest, index = divmod(step, len(OPS))
    a, b = divmod(rest, B_VALUES)
    op = OPS[index]
    match op:
        case "score":
            return (op, a % 3, VALUES[b])
        case "deliver" | "duplicate" | "drop":
            return (op, a)
        case "tick":
            return (op, TICKS[b % len(TICKS)])
        case "timer" | "reconnect" | "stream" | "disconnect":
            return (op, b)
        case "partition" | "vanish":
            return (op, a % 3)
        case "jump":
            return (op, a % 3, b)
    return (op,)


#: Device clocks from an hour behind to three times the accepted bound ahead, so the
#: ``clock_skew`` path runs; near the bound on either side more often than chance would.
skew = st.integers(-3_600_000, 3 * MAX_CLOCK_SKEW_MS) | st.sampled_from(
    [0, MAX_CLOCK_SKEW_MS - 60_000, MAX_CLOCK_SKEW_MS, MAX_CLOCK_SKEW_MS + 60_000]
)
skews = st.lists(skew, min_size=3, max_size=3)
#: What a clock can jump to (``jump`` picks one): a phone's clock set by hand.
JUMPS = (0, 60_000, MAX_CLOCK_SKEW_MS - 30_000, MAX_CLOCK_SKEW_MS + 30_000, 3_600_000)
INITIAL = {"chris": ArcherState("chris", "national"), "sam": ArcherState("sam", "national")}


class World:
    def __init__(self, skew: list[int]) -> None:
        self.now = START_MS
        self.relay = MemoryRelay()
        self.conns = 0
        devices = [("chris-phone", "chris"), ("chris-tablet", "chris"), ("sam-phone", "sam")]
        self.endpoints: dict[str, Endpoint] = {}
        for (name, archer), s in zip(devices, skew, strict=True):
            machine = ClientSession(
                "1234", name, archer_id=archer, token="t", initial=INITIAL[archer], timings=TIMINGS
            )
            self.endpoints[name] = Endpoint(name, machine, s)
        for name in ("viewer-1", "viewer-2"):
            self.endpoints[name] = Endpoint(name, ClientSession("1234", name, timings=TIMINGS))
        self.names = list(self.endpoints)
        self.network: list[Frame] = []
        for end in self.endpoints.values():  # everyone starts online
            self.connect(end)

    # -- time --------------------------------------------------------------------------------

    def mono(self) -> float:
        return (self.now - START_MS) / 1000

    def wall(self, end: Endpoint) -> int:
        return self.now + end.skew_ms

    # -- carrying out a machine's actions ------------------------------------------------------

    def carry(self, end: Endpoint, actions: list[A.Action]) -> None:
        for action in actions:
            match action:
                case A.Send(message=message):
                    self.network.append(Frame("relay", end.name, end.conn, message))
                case A.Close():
                    self.disconnect(end)
                case A.Replaced():
                    end.replaced.append(action)
                case A.Acked(register=register):
                    end.accepted.append(register.stamp)
                case A.Timer(at=at) if at <= self.mono() and end.conn:
                    # Due now: a driver's timer task fires at once (later ones wait for
                    # the world's ``timer`` op).
                    self.carry(end, end.machine.timer_fired(self.mono(), self.wall(end)))

    def to_relay(self, frame: Frame) -> None:
        end = self.endpoints[frame.sender]
        message = frame.message
        if isinstance(message, Hello):
            if frame.conn == end.conn:  # the relay subscribes only a live connection
                welcome = self.relay.hello(end.name, message, self.now)
                end.stream.append(Frame(end.name, "relay", end.conn, welcome.message))
        elif isinstance(message, Ping):
            if frame.conn == end.conn:
                end.stream.append(Frame(end.name, "relay", end.conn, Pong(message.nonce, self.now)))
        elif isinstance(message, Write):
            # The relay's answers and updates are addressed to a connection, "name#conn".
            sender = f"{end.name}#{frame.conn}"
            subscribers = [f"{e.name}#{e.conn}" for e in self.endpoints.values() if e.conn]
            for answer in self.relay.write(sender, message, self.now, subscribers):
                self.post(answer.to, answer.message)

    def post(self, address: str, message: ServerMessage) -> None:
        name, conn = address.split("#")
        end = self.endpoints[name]
        if int(conn) != end.conn:
            return  # sent to a connection that has ended: never arrives
        if isinstance(message, Update):
            end.stream.append(Frame(name, "relay", end.conn, message))
        else:
            self.network.append(Frame(name, "relay", end.conn, message))

    def to_endpoint(self, frame: Frame) -> None:
        end = self.endpoints[frame.to]
        if frame.conn != end.conn:
            return  # that connection is gone: its bytes never reach the machine
        message = frame.message
        if isinstance(message, Error) and message.code == "clock_skew":
            self.check_restamp(end, message)
        self.carry(end, end.machine.received(message, self.mono(), self.wall(end)))
        if isinstance(message, Superseded):
            end.accepted.append(message.winner.stamp)

    def check_restamp(self, end: Endpoint, refusal: Error) -> None:
        """After the correction, the next stamp beats every stamp the relay may hold that
        this device knew of (forgetting one makes its newest end lose to an older write)."""
        assert refusal.server_ms is not None
        machine = end.machine
        clock = replace_clock(machine)
        clock.correct(self.wall(end), refusal.server_ms)
        stamp = clock.now(self.wall(end))
        held = [s for s in end.accepted if s.wall_ms <= refusal.server_ms + MAX_CLOCK_SKEW_MS]
        assert all(stamp > s for s in held), (stamp, max(held))

    # -- what the world does ---------------------------------------------------------------

    def score(self, end: Endpoint, value: Any) -> None:
        bases: list[ArcherState] = []

        def change(state: ArcherState) -> ArcherState:
            bases.append(state)
            if value == "undo":
                return replace(state, arrows=state.arrows[:-1])
            if len(state.arrows) >= 72:
                return state
            return replace(state, arrows=(*state.arrows, value))

        register, actions = end.machine.write(change, self.mono(), self.wall(end))
        end.edits.append((bases[0], register.state))
        self.carry(end, actions)

    def connect(self, end: Endpoint) -> None:
        if end.partitioned or end.vanished:
            return
        self.conns += 1
        end.conn, end.stream = self.conns, []
        self.carry(end, end.machine.connected(self.mono()))
        # The hello goes at once (a new connection's first frame is never reordered).
        hello = next(f for f in self.network if f.sender == end.name and f.conn == end.conn)
        self.network.remove(hello)
        self.to_relay(hello)
        if end.stream:  # and the welcome arrives (updates behind it wait for ``stream``)
            self.to_endpoint(end.stream.pop(0))

    def disconnect(self, end: Endpoint) -> None:
        if end.conn:
            end.conn, end.stream = 0, []
            self.carry(end, end.machine.disconnected(self.mono(), 0.5))

    def reconnect(self, end: Endpoint) -> None:
        """What the old connection still carried arrives first, then a new one opens."""
        while end.stream:
            self.to_endpoint(end.stream.pop(0))
        self.disconnect(end)
        self.connect(end)

    def fire(self, end: Endpoint) -> None:
        if end.machine.next_timer <= self.mono():
            self.carry(end, end.machine.timer_fired(self.mono(), self.wall(end)))

    def reachable(self, frame: Frame) -> bool:
        ends = {frame.to, frame.sender} - {"relay"}
        return not any(self.endpoints[e].partitioned for e in ends)

    def run(self, steps: list[tuple[Any, ...]]) -> None:
        devices = [self.endpoints[n] for n in self.names[:3]]
        everyone = [self.endpoints[n] for n in self.names]
        for op, *args in steps:
            deliverable = [f for f in self.network if self.reachable(f)]
            if op == "score":
                self.score(devices[args[0]], args[1])
            elif op in ("deliver", "duplicate", "drop") and deliverable:
                frame = deliverable[args[0] % len(deliverable)]
                if op == "duplicate":
                    self.network.append(frame)
                    continue
                self.network.remove(frame)
                if op == "deliver":
                    self.deliver(frame)
            elif op == "tick":
                self.now += args[0]
            elif op == "timer":
                self.fire(everyone[args[0]])
            elif op == "flush":
                for answer in self.relay.flush():
                    self.post(answer.to, answer.message)
            elif op == "crash":
                self.relay.crash()
                # Bytes the dead process already sent may still arrive, in order.
                for end in everyone:
                    while end.stream and not end.partitioned:
                        self.to_endpoint(end.stream.pop(0))
                    self.disconnect(end)
            elif op == "stream":
                end = everyone[args[0]]
                if end.stream and not end.partitioned:
                    self.to_endpoint(end.stream.pop(0))
            elif op == "disconnect":
                self.disconnect(everyone[args[0]])
            elif op == "jump":
                devices[args[0]].skew_ms = JUMPS[args[1]]
            elif op == "partition":
                device = devices[args[0]]
                device.partitioned = not device.partitioned
                if device.partitioned:
                    self.disconnect(device)
            elif op == "reconnect":
                self.reconnect(everyone[args[0]])
            elif op == "vanish":
                device = devices[args[0]]
                device.vanished = device.partitioned = True
                self.disconnect(device)

    def deliver(self, frame: Frame) -> None:
        if frame.to == "relay":
            self.to_relay(frame)
        else:
            self.to_endpoint(frame)

    def quiesce(self) -> None:
        """Deliver everything in flight, streams included, until nothing moves."""
        while True:
            while self.network:
                self.deliver(self.network.pop(0))
            for end in self.endpoints.values():
                while end.stream:
                    self.to_endpoint(end.stream.pop(0))
            for answer in self.relay.flush():
                self.post(answer.to, answer.message)
            if not self.network and not any(e.stream for e in self.endpoints.values()):
                return

    def heal(self) -> None:
        everyone = [e for e in self.endpoints.values() if not e.vanished]
        for end in everyone:
            end.partitioned = False
            if not end.conn:
                self.connect(end)
        for _ in range(40):
            self.quiesce()
            if all(not len(e.machine.outbox) and e.conn for e in everyone):
                break
            self.now += 6_000  # past the resend timer and the bucket's refill
            for end in everyone:
                if not end.conn:
                    self.connect(end)
                self.fire(end)
        # Every endpoint is connected now, with its live stream drained: no final
        # reconnect, so the updates streamed live must have converged on their own.
        self.quiesce()


def replace_clock(machine: ClientSession) -> Any:
    """A copy of the machine's clock to try a correction on, leaving the machine's alone."""
    import copy

    return copy.deepcopy(machine.clock)


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
