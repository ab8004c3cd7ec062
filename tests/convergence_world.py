"""The world of the convergence property test (``tests/test_convergence.py``): the devices,
the network between them and the relay, and the history's steps.

The devices are real :class:`~sync.client_session.ClientSession` machines and the relay a
:class:`tests.session_peers.MemoryRelay`; nothing here decides a protocol rule. The world
only moves the frames the machines send (reordered, duplicated, dropped, partitioned, as a
step says), fires their timers, skews and jumps their clocks, and crashes the relay. What
it records (the edits each device made, what it was told was replaced or accepted) is what
the test's assertions read.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import strategies as st

from sync import client_actions as A
from sync.client_session import ClientSession
from sync.clock import MAX_CLOCK_SKEW_MS, Stamp
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
from tests.session_peers import MemoryRelay

__all__ = ["World", "decode", "ops", "skews"]

START_MS = 1_780_000_000_000
TIMINGS = A.SessionTimings(
    ping_interval_s=20.0, pong_timeout_s=10.0, resend_after_s=5.0, connect_timeout_s=10.0
)


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
