"""The relay's side of one WebSocket session as a state machine: events in, actions out.

Theory of operation
-------------------
Like h11's connection object, :class:`RelaySession` decides and does no I/O: no socket, no
clock, no actor. Its driver (:mod:`relay.connection`) feeds it events, with the time
passed in, and carries out the actions that come back, in order. It owns every rule of a
session's order and of what a client may send, as ``docs/protocol.md`` states them:

* **hello first, and in time.** The first frame must be a ``hello``; anything else ends
  the session (``unexpected``, 1008), and so does no frame by :attr:`next_timer`
  (``timeout``, 1008). A second ``hello`` later ends it too.
* **frames that cannot be decoded are fatal**, first or in the middle of a session: an
  ``error`` with ``fatal`` set and the close code naming what was broken (1009 for a frame
  over the size limit, 1002 for the rest, text frames included). Decoding covers a
  hello's contents too: a state vector that does not read as one is
  ``invalid_state_vector`` (1002) here, so the shoot's actor is only ever handed one it
  can compare with its document.
* **the hello's access is decided elsewhere** (the address throttle and the shoot's actor
  know the codes and tokens): the machine asks for it (:class:`Authorise`) and is told the
  answer, :meth:`authorised` or :meth:`refused` with the error and close code to end with.
* **writes are paced per connection.** Every ``write`` takes a token from a bucket
  (``writes_burst``, then ``writes_per_s``), refused or not: answering a refusal costs the
  relay as much as answering a write, so a flood of refused writes is a flood too. A write
  over the rate is answered ``rate_limited``; each such answer takes a *strike* from a
  second bucket (:data:`MAX_RATE_LIMITED`, one forgiven per second), and the write that
  finds no strike left ends the session (fatal ``rate_limited``, 4429).
* **only an archer writes, and only its own register**: a viewer's write is answered
  ``read_only``, another archer's ``not_your_register``; neither changes anything and the
  session goes on. Every other rule of a write is the shoot's
  (:class:`~sync.relay_state.ShootState`), so an allowed write is handed on
  (:class:`SubmitWrite`).
* **a ping is answered with a pong** carrying the relay's wall clock.

Phases::

    HELLO --hello--> AUTHORISING --authorised--> SUBSCRIBING --subscribed--> LIVE
      |                   |                           |                        |
      +-------- any fatal error, or a refusal (access, unavailable) -----> CLOSED

The events (methods) and what they return:

=====================================  =======================================================
event                                  actions
=====================================  =======================================================
``frame_received(data, now, wall)``    HELLO: ``Authorise`` or ``End``; LIVE: ``Answer``
                                       (pong, a refused write), ``SubmitWrite``, ``End``;
                                       CLOSED: nothing
``timer_fired(now)``                   HELLO past :attr:`next_timer`: ``End("timeout")``
``authorised(archer_id)``              ``Subscribe``
``refused(code, message, close)``      ``End`` (nothing once CLOSED)
``subscribed(now)``                    nothing: the session is LIVE (the actor has queued the
                                       welcome)
``peer_gone()``                        nothing: the client disconnected; the session is CLOSED
=====================================  =======================================================

An event that cannot happen in the current phase (a frame while the hello is being
authorised, say) is the driver's bug and raises :class:`SessionMisuse`, as h11 raises
``LocalProtocolError``; whatever the peer sends is answered, never raised.

Carrying out the actions: ``Answer`` (encode and send the message), ``End`` (send the
error, then close with ``close_code``; nothing else follows), ``Authorise`` (check the
hello's access, then call ``authorised`` or ``refused``), ``Subscribe`` (subscribe to the
shoot's actor, then call ``subscribed``, or ``refused`` if the shoot became unavailable), ``SubmitWrite`` (hand
the write to the shoot's actor, which answers it).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final, TypeAlias

from .codec import decode_client
from .errors import ProtocolError
from .limits import HELLO_TIMEOUT_S, WRITES_BURST, WRITES_PER_S, TokenBucket
from .protocol import (
    CLOSE_POLICY,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_RATE_LIMITED,
    CLOSE_TOO_BIG,
    Error,
    Hello,
    Ping,
    Pong,
    Write,
)

__all__ = [
    "HELLO_TIMEOUT_S",
    "MAX_RATE_LIMITED",
    "RATE_LIMITED_FORGIVEN_PER_S",
    "Action",
    "Answer",
    "Authorise",
    "End",
    "Phase",
    "RelaySession",
    "SessionLimits",
    "SessionMisuse",
    "SubmitWrite",
    "Subscribe",
]

#: Writes a connection may have refused for rate before it is closed with 4429; one is
#: forgiven per second. A client that paces itself after a few refusals goes on; one that
#: ignores them is closed within seconds, however slowly the relay reads its frames.
MAX_RATE_LIMITED: Final = 50
RATE_LIMITED_FORGIVEN_PER_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """A session's timer and rates; the defaults follow ``docs/protocol.md``."""

    hello_timeout_s: float = HELLO_TIMEOUT_S
    writes_burst: float = WRITES_BURST
    writes_per_s: float = WRITES_PER_S
    max_rate_limited: float = MAX_RATE_LIMITED
    rate_limited_forgiven_per_s: float = RATE_LIMITED_FORGIVEN_PER_S


class Phase(enum.Enum):
    HELLO = "hello"
    """Connected, waiting for the first frame, which must be a ``hello``."""
    AUTHORISING = "authorising"
    """The hello's access is being checked (:class:`Authorise`)."""
    SUBSCRIBING = "subscribing"
    """Allowed; the shoot's actor is queueing the welcome (:class:`Subscribe`)."""
    LIVE = "live"
    """Welcomed: writes and pings are answered."""
    CLOSED = "closed"
    """Ended: the close is queued (or the peer has gone); nothing more is sent."""


class SessionMisuse(RuntimeError):
    """The driver gave an event that cannot happen in the session's phase (its bug)."""


# -- actions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """Send this message to the client; the session goes on."""

    message: Pong | Error


@dataclass(frozen=True, slots=True)
class End:
    """Send ``error`` (always ``fatal``), then close with ``close_code``."""

    error: Error
    close_code: int


@dataclass(frozen=True, slots=True)
class Authorise:
    """Check whether ``hello`` may open a session; answer with ``authorised`` or ``refused``."""

    hello: Hello


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Subscribe the session to its shoot; answer with ``subscribed`` (or ``refused``: the
    shoot is unavailable). The hello's state vector was read by the codec, so the shoot
    never refuses it."""

    hello: Hello
    archer_id: str | None
    """The archer this session may write for (``None``: a viewer)."""


@dataclass(frozen=True, slots=True)
class SubmitWrite:
    """Hand this write to the shoot, which decides and answers it."""

    write: Write


Action: TypeAlias = Answer | End | Authorise | Subscribe | SubmitWrite


def _decode_failure(exc: ProtocolError) -> End:
    close_code = CLOSE_TOO_BIG if exc.code == "frame_too_large" else CLOSE_PROTOCOL_ERROR
    return End(Error(exc.code, exc.message, fatal=True), close_code)


_TEXT_FRAME: Final = End(
    Error("malformed", "Frames must be binary WebSocket messages, not text.", fatal=True),
    CLOSE_PROTOCOL_ERROR,
)


class RelaySession:
    """One client's session, as the relay sees it.

    Args:
        opened: When the connection was accepted (monotonic seconds): the hello's
            deadline counts from here.
        limits: The session's timer and rates.
    """

    def __init__(self, opened: float, limits: SessionLimits | None = None) -> None:
        self.limits = limits or SessionLimits()
        self.phase = Phase.HELLO
        self.opened = opened
        self.hello: Hello | None = None
        self.archer_id: str | None = None
        """The archer this session may write for, once authorised (``None``: a viewer)."""
        self._writes, self._strikes = self._buckets(opened)

    @property
    def next_timer(self) -> float:
        """When ``timer_fired`` is due (``inf``: never): the hello's deadline."""
        if self.phase is Phase.HELLO:
            return self.opened + self.limits.hello_timeout_s
        return math.inf

    @property
    def closed(self) -> bool:
        return self.phase is Phase.CLOSED

    # -- events --------------------------------------------------------------------------

    def frame_received(self, data: bytes | str, now: float, wall_ms: int) -> list[Action]:
        """A whole message from the client, bounded by the driver to one byte over
        :data:`~sync.protocol.MAX_CLIENT_FRAME_BYTES` (the codec refuses that size)."""
        if self.phase is Phase.CLOSED:
            return []
        if self.phase not in (Phase.HELLO, Phase.LIVE):
            raise SessionMisuse(f"a frame arrived while {self.phase.value}")
        if isinstance(data, str):
            return self._close(_TEXT_FRAME)
        try:
            message = decode_client(data)
        except ProtocolError as exc:
            return self._close(_decode_failure(exc))
        if self.phase is Phase.HELLO:
            if not isinstance(message, Hello):
                return self._close(
                    End(
                        Error("unexpected", "The first message must be hello.", fatal=True),
                        CLOSE_POLICY,
                    )
                )
            self.phase, self.hello = Phase.AUTHORISING, message
            return [Authorise(message)]
        match message:
            case Ping(nonce):
                return [Answer(Pong(nonce, wall_ms))]
            case Write():
                return self._write(message, now)
            case _:  # a second hello
                return self._close(
                    End(
                        Error("unexpected", "This session has already said hello.", fatal=True),
                        CLOSE_POLICY,
                    )
                )

    def timer_fired(self, now: float) -> list[Action]:
        """The time :attr:`next_timer` named (or any later time) has come."""
        if self.phase is Phase.HELLO and now >= self.next_timer:
            return self._close(
                End(Error("timeout", "No hello arrived in time.", fatal=True), CLOSE_POLICY)
            )
        return []

    def authorised(self, archer_id: str | None) -> list[Action]:
        """The hello may open a session, writing for ``archer_id`` (``None``: a viewer)."""
        if self.phase is not Phase.AUTHORISING or self.hello is None:
            raise SessionMisuse(f"authorised while {self.phase.value}")
        self.phase, self.archer_id = Phase.SUBSCRIBING, archer_id
        return [Subscribe(self.hello, archer_id)]

    def refused(self, code: str, message: str, close_code: int) -> list[Action]:
        """The relay will not serve this session (an unknown shoot, a wrong token, too many
        failed hellos, a shoot that ended or is unavailable), whatever the phase."""
        if self.phase is Phase.CLOSED:
            return []
        return self._close(End(Error(code, message, fatal=True), close_code))

    def subscribed(self, now: float) -> list[Action]:
        """The shoot's actor has queued the welcome: the session is live, and its write
        rate counts from ``now``."""
        if self.phase is not Phase.SUBSCRIBING:
            raise SessionMisuse(f"subscribed while {self.phase.value}")
        self._writes, self._strikes = self._buckets(now)
        self.phase = Phase.LIVE
        return []

    def peer_gone(self) -> list[Action]:
        """The client disconnected: nothing more is read or answered."""
        self.phase = Phase.CLOSED
        return []

    # -- rules ---------------------------------------------------------------------------

    def _write(self, write: Write, now: float) -> list[Action]:
        # Every write takes a token, refused or not (see the module's notes).
        if not self._writes.try_take(now):
            text = "Too many writes; resend later."
            if not self._strikes.try_take(now):
                refusal = Error("rate_limited", text, id=write.id, fatal=True)
                return self._close(End(refusal, CLOSE_RATE_LIMITED))
            return [Answer(Error("rate_limited", text, id=write.id))]
        if self.archer_id is None:
            text = "Viewers cannot write; join as an archer to score."
            return [Answer(Error("read_only", text, id=write.id))]
        if write.register.archer_id != self.archer_id:
            text = "An archer can only write their own scores."
            return [Answer(Error("not_your_register", text, id=write.id))]
        return [SubmitWrite(write)]

    def _buckets(self, now: float) -> tuple[TokenBucket, TokenBucket]:
        """Full buckets of writes and of rate-limit strikes, counting from ``now``."""
        limits = self.limits
        writes = TokenBucket(limits.writes_burst, limits.writes_per_s, updated=now)
        strikes = TokenBucket(
            limits.max_rate_limited, limits.rate_limited_forgiven_per_s, updated=now
        )
        return writes, strikes

    def _close(self, end: End) -> list[Action]:
        self.phase = Phase.CLOSED
        return [end]
