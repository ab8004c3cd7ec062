"""What the client session machine (:mod:`sync.client_session`) returns, and its settings.

The actions are plain frozen values, one class per thing a driver must do or tell its
user; the table below says which event of :mod:`sync.client_session` returns which. A port of
the machine to another language (the browser's) mirrors these names and fields.

Events (methods) and actions (what they return)
----------------------------------------------

=================================  =========================================================
event                              actions it can return
=================================  =========================================================
``connected(now)``                 ``Send(Hello)``, ``Timer`` (``Close(fatal)`` once refused
                                   for good)
``frame_received(data, now, wall)``  as ``received``; a frame that is not a valid message:
                                   ``Close("malformed"/codec code)``
``received(message, now, wall)``   ``Welcomed``, ``Changed``, ``SaveOutbox``, ``Acked``,
                                   ``Replaced``, ``Refused``, ``NoticeArrived``,
                                   ``RelayError``, ``Close`` (``invalid_update`` for an
                                   update the replica cannot apply), ``Timer``
``timer_fired(now, wall)``         ``Send(Write)``, ``Send(Ping)``, ``Close("timeout" /
                                   "heartbeat_timeout")``, ``Timer``
``write(change, now, wall)``       returns ``(Register, actions)``: ``SaveOutbox``,
                                   ``Changed("local")``, ``Replaced``, ``Timer``
``disconnected(now, jitter, code)``  ``Reconnect(at)``, ``Timer(inf)``; a fatal close code
                                   (4401, 4404, 4410), or a session refused for good,
                                   makes ``phase`` ``CLOSED`` and returns no ``Reconnect``
``online(now)``                    ``Reconnect(now)`` (offline only), ``Timer``
=================================  =========================================================

Every event returns a list whose last action is a ``Timer``. State to read:
``phase`` (``OFFLINE``, ``HELLO_SENT``, ``LIVE``, ``CLOSED``), ``registers()`` and
``visible(archer)`` (the replica overlaid with the outbox), ``outbox``, ``replica``,
``clock``, ``shoot``, ``connections``, ``resets``, ``synced``, ``next_timer``.

``now`` is a monotonic time in seconds (timers, heartbeat, pacing); ``wall`` the device's
wall clock in milliseconds (stamps and the ``clock_skew`` correction). Writes are only
ever sent from ``timer_fired``: a write, a welcome or a ``rate_limited`` answer makes one
due and returns a ``Timer`` for it, so a driver needs one task that sleeps until the
latest ``Timer(at)`` and calls ``timer_fired``, and one that reads frames.

Carrying out the actions: ``Send`` (encode and send the message), ``SaveOutbox`` (write
:attr:`~sync.client_session.ClientSession.outbox` durably *before* the actions after it: a ``Send`` of a write
must not overtake the save that keeps it), ``Close`` (close the socket, then call
``disconnected``; ``fatal`` means do not reconnect), ``Timer(at)`` (call ``timer_fired``
at ``at``; replaces the previous request). The others are news for the user.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from .errors import SyncError
from .models import Shoot
from .protocol import (
    CLOSE_EXPIRED,
    CLOSE_UNAUTHORIZED,
    CLOSE_UNKNOWN_SHOOT,
    ClientMessage,
    Notice,
)
from .register import Register

__all__ = [
    "FATAL_CLOSE_CODES",
    "FATAL_CODES",
    "Acked",
    "Action",
    "Changed",
    "Close",
    "NoticeArrived",
    "Phase",
    "Reconnect",
    "Refused",
    "RelayError",
    "Replaced",
    "SaveOutbox",
    "Send",
    "SessionTimings",
    "Timer",
    "Welcomed",
    "WriteUnavailable",
    "includes",
]

#: Error codes (answering ``hello``) after which reconnecting cannot help.
FATAL_CODES: Final = frozenset({"unknown_shoot", "invalid_code", "expired", "unauthorized"})
#: WebSocket close codes after which the client does not reconnect (``docs/protocol.md``).
FATAL_CLOSE_CODES: Final = frozenset({CLOSE_UNAUTHORIZED, CLOSE_UNKNOWN_SHOOT, CLOSE_EXPIRED})


@dataclass(frozen=True, slots=True)
class SessionTimings:
    """The session's timers; the defaults follow ``docs/protocol.md``."""

    ping_interval_s: float = 15.0
    pong_timeout_s: float = 10.0
    resend_after_s: float = 10.0
    connect_timeout_s: float = 10.0
    """How long after ``hello`` the ``welcome`` may take."""
    backoff_base_s: float = 0.5
    """The ceiling of the first reconnect delay (:mod:`sync.reconnect`)."""
    backoff_cap_s: float = 30.0
    """The largest reconnect delay."""


class Phase(enum.Enum):
    OFFLINE = "offline"
    """No connection (before the first, between two, or after a non-fatal close)."""
    HELLO_SENT = "hello_sent"
    """Connected, ``hello`` sent, waiting for the ``welcome``."""
    LIVE = "live"
    """Welcomed: updates arrive, writes go out."""
    CLOSED = "closed"
    """The relay refused the session for good (:data:`FATAL_CODES`)."""


# -- actions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send this message as one frame."""

    message: ClientMessage


@dataclass(frozen=True, slots=True)
class SaveOutbox:
    """The outbox changed: keep it durably before carrying out the next actions."""


@dataclass(frozen=True, slots=True)
class Changed:
    """These archers' visible registers changed (redraw)."""

    archers: frozenset[str]
    source: Literal["local", "relay"]


@dataclass(frozen=True, slots=True)
class Welcomed:
    """The session is live; ``reset``: the replica was replaced by the relay's full state."""

    shoot: Shoot
    reset: bool


@dataclass(frozen=True, slots=True)
class Acked:
    """This write is durable on the relay and left the outbox."""

    register: Register


@dataclass(frozen=True, slots=True)
class Replaced:
    """An edit of this device's is gone: ``winner`` (another device's newer state, which
    does not contain it) replaced ``lost``. ``acknowledged``: the relay had acknowledged
    ``lost`` before the winner arrived."""

    lost: Register
    winner: Register
    acknowledged: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    """The relay refused this write for a rule it breaks; it left the outbox."""

    register: Register
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class NoticeArrived:
    notice: Notice


@dataclass(frozen=True, slots=True)
class RelayError:
    """An ``error`` about the session, not about one write; the session goes on."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection (then call ``disconnected``); ``fatal``: do not reconnect."""

    code: str
    message: str
    fatal: bool = False


@dataclass(frozen=True, slots=True)
class Timer:
    """Call ``timer_fired`` at ``at`` (monotonic seconds; ``inf``: no timer)."""

    at: float


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Dial the relay at ``at`` (monotonic seconds), then call ``connected``; replaces the
    previous request. None comes once the session is closed for good."""

    at: float


Action: TypeAlias = (
    Send
    | SaveOutbox
    | Changed
    | Welcomed
    | Acked
    | Replaced
    | Refused
    | NoticeArrived
    | RelayError
    | Close
    | Reconnect
    | Timer
)


class WriteUnavailable(SyncError):
    """A write this device cannot make: ``read_only`` (a viewer) or ``no_state`` (it has
    never seen its archer's state). Raised by :meth:`ClientSession.write`; nothing changed."""


def includes(winner: Register, lost: Register) -> bool:
    """Whether ``winner`` still holds what ``lost`` wrote: the same round, ``lost``'s arrows
    as its first ones, and ``lost``'s finish kept."""
    a, b = winner.state, lost.state
    return (
        a.round == b.round
        and a.arrows[: len(b.arrows)] == b.arrows
        and (a.finished or not b.finished)
        and (a.left or not b.left)
    )
