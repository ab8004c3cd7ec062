"""What travels through a shoot actor's inbox, and how the actor answers.

Every message that expects an answer carries a :class:`Reply`. The actor guarantees that
each one is answered exactly once, with a value or a failure, whatever happens to the
actor: a message it refuses gets the refusal, a message it never gets to (buffered when
the actor stopped or crashed) gets :class:`ShootUnavailable`. So no waiter hangs on an
actor that is gone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

import trio

from sync.access import Access
from sync.errors import SyncError
from sync.leaderboard import Leaderboard
from sync.models import Shoot
from sync.register import Outcome, Register

from .store import ArcherRecord
from .subscriber import Subscriber

__all__ = [
    "Access",
    "AddArcher",
    "CheckAccess",
    "ForgetArcher",
    "Message",
    "Read",
    "Reply",
    "ShootUnavailable",
    "ShootView",
    "Submit",
    "Subscribe",
    "Unsubscribe",
    "WriteResult",
    "abandon",
]

T = TypeVar("T")


class ShootUnavailable(Exception):
    """The shoot's actor stopped (crashed, expired, or the relay is closing) before it
    answered, or did not answer in time. The request may be sent again."""


class Reply(Generic[T]):
    """A one-shot answer from the actor to a task waiting for it: a value or a failure.

    The first answer wins; later ones are ignored, so the actor's paths that answer a
    message (normally, on refusal, on the way out) never have to know about each other.
    """

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value: T | None = None
        self._error: Exception | None = None

    @property
    def answered(self) -> bool:
        return self._event.is_set()

    def set(self, value: T) -> None:
        if not self._event.is_set():
            self._value = value
            self._event.set()

    def fail(self, error: Exception) -> None:
        if not self._event.is_set():
            self._error = error
            self._event.set()

    async def wait(self) -> T:
        """The value; raises the failure the actor answered with instead."""
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return cast(T, self._value)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """How a write without a connection (the HTTP join) turned out."""

    outcome: Outcome | None
    error: SyncError | None = None


@dataclass(frozen=True, slots=True)
class ShootView:
    shoot: Shoot
    leaderboard: Leaderboard
    registers: dict[str, Register]


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Add a session to the fan-out after queueing its catch-up.

    ``done`` is answered once the welcome is queued. ``state_vector`` is one the codec has
    read (a hello's is refused with the rest of its frame otherwise), so the actor never
    refuses a subscription: one it cannot serve fails with :class:`ShootUnavailable`.
    """

    subscriber: Subscriber
    state_vector: bytes
    done: Reply[None] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    subscriber: Subscriber


@dataclass(frozen=True, slots=True)
class Submit:
    """A write. Answers go to ``subscriber`` (a connection) or ``reply`` (HTTP)."""

    register: Register
    request_id: int = 0
    subscriber: Subscriber | None = None
    reply: Reply[WriteResult] | None = None
    received: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True, slots=True)
class Read:
    reply: Reply[ShootView] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class AddArcher:
    """Admit a new archer, before their record is written to Redis.

    The actor is the one place that sees every join of a shoot, so it is where the
    archer limit holds exactly: the reply fails with
    :class:`~sync.errors.LimitExceeded` when the shoot is full, and nothing changes. The
    caller then stores the record; if that fails it sends :class:`ForgetArcher`.
    """

    archer_id: str
    record: ArcherRecord
    reply: Reply[None] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class ForgetArcher:
    """Undo an :class:`AddArcher` whose record could not be stored."""

    archer_id: str


@dataclass(frozen=True, slots=True)
class CheckAccess:
    """May this session write as ``archer_id``? Answered from memory, so the archers of a
    loaded shoot can reconnect while Redis is away."""

    archer_id: str | None
    """``None`` for a viewer, who only needs the shoot to be live."""
    token: str | None
    reply: Reply[Access] = field(default_factory=Reply)


Message = Subscribe | Unsubscribe | Submit | Read | AddArcher | ForgetArcher | CheckAccess


def abandon(message: Message, error: Exception) -> None:
    """Answer a message that will not be handled with ``error`` (a session's messages need
    no answer: whoever gives up on them closes the session, and its device resends)."""
    match message:
        case Subscribe(done=reply) | Read(reply=reply) | CheckAccess(reply=reply):
            reply.fail(error)
        case AddArcher(reply=reply):
            reply.fail(error)
        case Submit(reply=reply) if reply is not None:
            reply.fail(error)
