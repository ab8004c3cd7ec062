"""What a :class:`~clients.ShootClient` tells its user, and the bounded queue it uses.

Events are notifications; the client's properties (``leaderboard``, ``registers``,
``state``) are the truth. So the queue is bounded and, when the user does not read it,
drops the *oldest* events and counts them (``dropped``): a UI that falls behind redraws
from the properties and loses nothing that matters, and memory stays bounded.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Literal, TypeAlias

import trio

from sync.protocol import Notice
from sync.register import Register

from ._errors import ShootError

__all__ = [
    "ConnectionChanged",
    "ConnectionState",
    "Event",
    "EventQueue",
    "NoticeReceived",
    "RegistersChanged",
    "WriteAcked",
    "WriteRefused",
    "WriteSuperseded",
]


class ConnectionState(enum.Enum):
    """Where the connection loop is."""

    CONNECTING = "connecting"
    """Opening the WebSocket and waiting for ``welcome``."""
    CONNECTED = "connected"
    """In sync with the relay; writes are sent at once."""
    WAITING = "waiting"
    """Disconnected, waiting out a backoff delay before the next attempt."""
    CLOSED = "closed"
    """Stopped for good: the client was closed, or the relay refused the session
    (unknown shoot, expired, unauthorized; see ``ShootClient.error``)."""


@dataclass(frozen=True, slots=True)
class ConnectionChanged:
    """The connection loop moved to another :class:`ConnectionState`."""

    state: ConnectionState
    error: ShootError | None = None
    """Why the connection ended or could not open, when it did."""


@dataclass(frozen=True, slots=True)
class RegistersChanged:
    """Some archers' visible registers changed: redraw the leaderboard."""

    archers: frozenset[str]
    """The archers whose visible state changed."""
    source: Literal["local", "relay"]
    """``"local"``: this device wrote; ``"relay"``: an update or catch-up arrived."""


@dataclass(frozen=True, slots=True)
class WriteAcked:
    """A write of this device's is durable on the relay and left the outbox."""

    register: Register
    """The write, now durable on the relay."""


@dataclass(frozen=True, slots=True)
class WriteSuperseded:
    """A newer write (another device of the archer's, usually) won over this device's.

    The client has adopted :attr:`winner`: its leaderboard shows it, and the next write
    builds on it. :attr:`lost` is gone unless the user scores it again
    (:meth:`~clients.ShootClient.restore`). Reported only when the winner does not hold
    what :attr:`lost` wrote (the same round, the lost arrows as its first ones).
    """

    lost: Register
    winner: Register
    acknowledged: bool = False
    """``True``: the relay had acknowledged :attr:`lost`, and another device's write that
    did not include it replaced it later; ``False``: it was still pending (refused as
    superseded, or replaced by a newer write of this device's built on the winner)."""


@dataclass(frozen=True, slots=True)
class WriteRefused:
    """The relay refused a write for a rule it breaks; it was dropped from the outbox."""

    register: Register
    error: ShootError


@dataclass(frozen=True, slots=True)
class NoticeReceived:
    """A ``notice`` from the relay (a lead change, a digest), ready to show."""

    notice: Notice


Event: TypeAlias = (
    ConnectionChanged
    | RegistersChanged
    | WriteAcked
    | WriteSuperseded
    | WriteRefused
    | NoticeReceived
)


class EventQueue:
    """A bounded queue that drops the oldest event when full; one reader at a time."""

    def __init__(self, size: int) -> None:
        self._events: deque[Event] = deque(maxlen=size)
        self._arrived = trio.Event()
        self.dropped = 0

    def put(self, event: Event) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        self._arrived.set()

    async def get(self) -> Event:
        while not self._events:
            if self._arrived.is_set():
                self._arrived = trio.Event()
            await self._arrived.wait()
        return self._events.popleft()

    def get_nowait(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def __len__(self) -> int:
        return len(self._events)
