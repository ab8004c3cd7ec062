"""The relay's side of a shoot as a state machine: what to do with a write, and when its
answer may go out.

Theory of operation
-------------------
Like h11's ``_state.py``, this module decides and does no I/O: no sockets, no clock, no
Redis. The actor (:mod:`relay.actor`) is its driver: it feeds in events and carries out
what comes back.

Events in, decisions out:

- :meth:`ShootState.write` (a device's write, with the relay's current time): refuse it
  (a :class:`~sync.errors.SyncError` raised before anything changed: invalid state, a
  stamp too far ahead, no room), or decide it with the register merge and apply it to the
  document. The result, :class:`Written`, says what the register did, the Yjs update to
  fan out and persist (only when the write won), and ``needs``: the number of the update
  that set the value the answer names.
- :meth:`ShootState.record` numbers every update the driver must persist (a won write's,
  the shoot's metadata, the notifier's memory), in the order it must reach Redis.
- :meth:`ShootState.hold` (an answer and the update number it needs) and
  :meth:`ShootState.made_durable` (Redis now has every update up to ``n``) return the
  answers that may go out now. An answer never leaves before the value it names is
  durable: an ``ack`` waits for its own update; ``superseded`` and a duplicate's ``ack``
  wait for the update that set the current winner, which may itself not be durable yet.
  Answering those early is the bug this rule exists for: a relay crash then loses the
  winner, and a device that dropped its own newer write because of that answer has
  lost it for good.
- :func:`write_answer` and :func:`write_refusal` say what a write's sender is told: an
  ``ack`` naming the write's own stamp when it won or was already there, ``superseded``
  with the winner when it lost, an ``error`` (with the relay's clock for ``clock_skew``)
  when it was refused.
- :meth:`ShootState.welcome` (a subscriber's state vector) decides the catch-up: a diff
  when the document knows everything the subscriber has, else a ``reset`` and the full
  state (the subscriber holds items a crashed incarnation never persisted; it must
  discard its replica, and resend its outbox, which it still has).

A crash is the driver's business: a new incarnation starts a new :class:`ShootState`
from what Redis had, and the held answers of the old one are never sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .clock import check_skew
from .document import EMPTY_STATE_VECTOR, ShootDocument
from .errors import LimitExceeded, SyncError
from .models import checked, validate_state
from .protocol import Ack, Error
from .protocol import Superseded as SupersededAnswer
from .register import Applied, Duplicate, Outcome, Register, decide

__all__ = ["Catchup", "ShootState", "Written", "write_answer", "write_refusal"]

A = TypeVar("A")


@dataclass(frozen=True, slots=True)
class Written:
    """What a write did."""

    outcome: Outcome
    update: bytes | None
    """The document update to fan out and persist; ``None`` unless the write won."""
    needs: int
    """The update number that must be durable before the write's answer goes out."""


@dataclass(frozen=True, slots=True)
class Catchup:
    """A subscriber's welcome: ``reset`` means discard the replica and apply ``update``."""

    reset: bool
    update: bytes


@dataclass(slots=True)
class ShootState(Generic[A]):
    """One shoot's relay-side protocol state; ``A`` is whatever the driver holds as an
    answer (frames, replies): the machine only decides when it may go."""

    doc: ShootDocument
    applied: int = 0
    """Updates numbered so far (:meth:`record`)."""
    durable: int = 0
    """The highest update number Redis has."""
    _setter: dict[str, int] = field(default_factory=dict)
    """Per archer, the number of the update that set the register's current value."""
    _held: list[tuple[int, A]] = field(default_factory=list)

    def record(self) -> int:
        """Number the next update to persist."""
        self.applied += 1
        return self.applied

    def write(
        self, register: Register, now_ms: int, has_room: Callable[[], bool] = lambda: True
    ) -> Written:
        """Decide and apply a write; raises a :class:`~sync.errors.SyncError`, having
        changed nothing, for a write the relay refuses."""
        current = self.doc.register(register.archer_id)
        # Cached for the board and the derived values; from the current state's check
        # when the write only adds arrows.
        if checked(register.state, None if current is None else current.state) is None:
            validate_state(register.state)  # raises, saying why
        check_skew(register.stamp, now_ms)
        if isinstance(decide(current, register), Applied) and not has_room():
            raise LimitExceeded(
                "document_full",
                "This shoot has reached its size limit; the write was not applied.",
            )
        outcome, update = self.doc.write(register)
        if isinstance(outcome, Applied):
            needs = self._setter[register.archer_id] = self.record()
            return Written(outcome, update, needs)
        # Duplicate or superseded: the answer names the current value, which is only as
        # durable as the update that set it (0: it came from Redis when the shoot loaded).
        return Written(outcome, None, self._setter.get(register.archer_id, 0))

    def hold(self, needs: int, answer: A) -> list[A]:
        """The answers that may go out now: ``answer`` itself if update ``needs`` is
        durable, else none (it is kept until :meth:`made_durable` releases it)."""
        if needs <= self.durable:
            return [answer]
        self._held.append((needs, answer))
        return []

    def made_durable(self, through: int) -> list[A]:
        """Redis has every update up to ``through``: the answers released, in order."""
        self.durable = max(self.durable, through)
        ready = [answer for needs, answer in self._held if needs <= self.durable]
        self._held = [(needs, a) for needs, a in self._held if needs > self.durable]
        return ready

    def abandon(self) -> list[A]:
        """The incarnation is ending: the answers that will never be sent."""
        held, self._held = [answer for _, answer in self._held], []
        return held

    def welcome(self, state_vector: bytes) -> Catchup:
        """The catch-up for a subscriber with ``state_vector`` (raises
        :class:`~sync.errors.ProtocolError` for a malformed one)."""
        if self.doc.knows(state_vector):
            return Catchup(False, self.doc.diff(state_vector))
        return Catchup(True, self.doc.diff(EMPTY_STATE_VECTOR))


def write_answer(request_id: int, register: Register, outcome: Outcome) -> Ack | SupersededAnswer:
    """What the sender of ``register`` (request ``request_id``) is told once the value the
    answer names is durable (:meth:`ShootState.hold`): ``ack`` with the write's own stamp
    when it won or was already there, else ``superseded`` with the winner."""
    if isinstance(outcome, Applied | Duplicate):
        return Ack(request_id, register.archer_id, register.stamp)
    return SupersededAnswer(request_id, outcome.winner)


def write_refusal(request_id: int, exc: SyncError) -> Error:
    """What the sender of a refused write is told (at once: nothing changed). It is not
    fatal; a ``clock_skew`` refusal carries the relay's clock, so the device can correct
    its own and send the write again."""
    server_ms: int | None = getattr(exc, "server_ms", None)
    return Error(exc.code, exc.message, id=request_id, server_ms=server_ms)
