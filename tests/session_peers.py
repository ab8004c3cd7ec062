"""An in-memory relay peer for client session machines: the real relay-side state machine
(:class:`sync.relay_state.ShootState`, what the actor drives) with Redis as a list.

No sockets and no actor: the tests route its answers to :class:`~sync.client_session.
ClientSession` objects, in whatever order they like (h11's tests do the same with two
connections talking to each other). A crash drops what was not flushed to "Redis" and
starts a new incarnation from what was, under a new Yjs client id.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sync.document import ShootDocument
from sync.errors import ClockSkewError
from sync.models import Shoot
from sync.protocol import Ack, Error, Hello, ServerMessage, Superseded, Update, Welcome, Write
from sync.register import Applied, Duplicate, Register
from sync.register import Superseded as Lost
from sync.relay_state import ShootState

SHOOT = Shoot("1234", "shoot-1", "Club night", "Ann", 0, 2**40, "Europe/London")


@dataclass(frozen=True)
class Answer:
    """A frame for one endpoint."""

    to: str
    message: ServerMessage


class MemoryRelay:
    def __init__(self, shoot: Shoot = SHOOT) -> None:
        self.shoot = shoot
        self.persisted: list[bytes] = []
        # Descending ids: after a crash the lost incarnation's id is the larger one, the
        # order in which Yjs would let its unpersisted items win on a stale replica.
        self.client_ids = itertools.count(10**6, -1)
        self.state: ShootState[Answer] = ShootState(ShootDocument(client_id=next(self.client_ids)))
        self.unflushed: list[bytes] = []
        self.accepted: list[Register] = []
        """Every write the relay took a decision on (a won, duplicate or losing write)."""
        self.acked: list[Register] = []
        self.durable: list[Register] = []
        """Writes that won and reached "Redis" (a crash cannot lose them)."""
        self.since_crash: list[Register] = []
        """The writes of :attr:`accepted` taken since the last crash (the live document's)."""
        self._volatile: list[Register] = []

    @property
    def doc(self) -> ShootDocument:
        return self.state.doc

    def crash(self) -> None:
        doc = ShootDocument.load(self.persisted, client_id=next(self.client_ids))
        self.state, self.unflushed, self._volatile = ShootState(doc), [], []
        self.since_crash = []

    def flush(self) -> list[Answer]:
        """Redis now has every update: the answers that were held for it."""
        self.persisted.extend(self.unflushed)
        self.durable.extend(self._volatile)
        self.unflushed, self._volatile = [], []
        return self._release(self.state.made_durable(self.state.applied))

    def hello(self, to: str, hello: Hello, now_ms: int) -> Answer:
        catchup = self.state.welcome(hello.sv)
        welcome = Welcome(
            self.shoot, catchup.reset, catchup.update, now_ms, hello.role, hello.archer
        )
        return Answer(to, welcome)

    def write(self, to: str, write: Write, now_ms: int, fanout: list[str]) -> list[Answer]:
        register = write.register
        try:
            written = self.state.write(register, now_ms)
        except ClockSkewError as exc:
            return [Answer(to, Error("clock_skew", exc.message, id=write.id, server_ms=now_ms))]
        self.accepted.append(register)
        self.since_crash.append(register)
        match written.outcome:
            case Applied() | Duplicate():
                answer = Answer(to, Ack(write.id, register.archer_id, register.stamp))
            case Lost(winner):
                answer = Answer(to, Superseded(write.id, winner))
        fanned: list[Answer] = []
        if written.update is not None:
            self.unflushed.append(written.update)
            self._volatile.append(register)
            fanned = [Answer(name, Update(written.update)) for name in fanout]
        return [*fanned, *self._release(self.state.hold(written.needs, answer))]

    def _release(self, answers: list[Answer]) -> list[Answer]:
        for answer in answers:
            if isinstance(answer.message, Ack):
                ack = answer.message
                found = [
                    r for r in self.accepted if r.archer_id == ack.archer and r.stamp == ack.stamp
                ]
                self.acked.extend(found[-1:])
        return answers
