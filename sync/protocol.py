"""The messages of the wire protocol, their limits and the WebSocket close codes.

Every WebSocket binary frame holds one CBOR map ``{"v": 1, "type": "<name>", ...fields}``;
:mod:`sync.codec` turns these dataclasses into frames and back. The classes are plain
frozen values with no behaviour, one per message, so the relay, the Python client and the
tests can build, compare and pattern-match them (``match msg: case Write(id=i): ...``).
``docs/protocol.md`` is the same protocol written for implementers in other languages.

The limits exist so that a peer cannot make the other side allocate, loop or store more
than a live leaderboard ever needs; the codec enforces the structural ones while decoding,
before any message reaches the actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from .clock import Stamp
from .models import Shoot
from .register import Register

__all__ = [
    "CLOSE_EXPIRED",
    "CLOSE_GOING_AWAY",
    "CLOSE_NORMAL",
    "CLOSE_POLICY",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_RATE_LIMITED",
    "CLOSE_TOO_BIG",
    "CLOSE_TOO_SLOW",
    "CLOSE_UNAUTHORIZED",
    "CLOSE_UNKNOWN_SHOOT",
    "MAX_ARROWS_PER_WRITE",
    "MAX_CLIENT_FRAME_BYTES",
    "MAX_ID_LENGTH",
    "MAX_REQUEST_ID",
    "MAX_SERVER_FRAME_BYTES",
    "MAX_STATE_VECTOR_BYTES",
    "PROTOCOL_VERSION",
    "Ack",
    "ClientMessage",
    "Error",
    "Hello",
    "Message",
    "Notice",
    "NoticeKind",
    "Ping",
    "Pong",
    "Role",
    "ServerMessage",
    "Superseded",
    "Update",
    "Welcome",
    "Write",
]

#: The ``"v"`` of every frame. A peer speaking another version is refused with
#: ``unsupported_version`` rather than half-understood.
PROTOCOL_VERSION: Final = 1

# -- limits ------------------------------------------------------------------------------

#: Largest frame the relay accepts from a client. A write of a full round (300 arrows) is
#: under 2 KiB, so this only stops abuse; it is checked before any decoding, and while a
#: message arrives: the relay never holds more than this (and one more byte) of one, and
#: drops the rest unread into memory.
MAX_CLIENT_FRAME_BYTES: Final = 64 * 1024
#: Largest frame a client accepts from the relay: a full-state catch-up of a big shoot
#: (hundreds of archers) fits with room to spare.
MAX_SERVER_FRAME_BYTES: Final = 8 * 1024 * 1024
#: Most arrows one write may carry, whatever the round: a structural cap checked while
#: decoding, before the round's own (smaller) limit in :func:`sync.models.validate_state`.
MAX_ARROWS_PER_WRITE: Final = 300
#: Longest archer id, device id or write token: printable ASCII without spaces.
MAX_ID_LENGTH: Final = 64
#: Longest Yjs state vector in a ``hello``; a real one is a few dozen bytes.
MAX_STATE_VECTOR_BYTES: Final = 16 * 1024
#: Largest request id, nonce or millisecond timestamp: the largest integer a JavaScript
#: number holds exactly, so the browser client never rounds one.
MAX_REQUEST_ID: Final = 2**53 - 1

# -- WebSocket close codes ---------------------------------------------------------------

CLOSE_NORMAL: Final = 1000
"""The session ended on purpose (the client left, or the shoot was closed)."""
CLOSE_GOING_AWAY: Final = 1001
"""The relay is shutting down; reconnect (with backoff) to another or the same relay."""
CLOSE_PROTOCOL_ERROR: Final = 1002
"""A frame was not a valid message (``malformed``, including a text WebSocket message,
``unknown_type``, ``invalid_field``...)."""
CLOSE_POLICY: Final = 1008
"""The session broke the order of messages: no ``hello`` first, in time, or a second one."""
CLOSE_TOO_BIG: Final = 1009
"""A frame was larger than the receiver's limit (``frame_too_large``)."""
CLOSE_UNAUTHORIZED: Final = 4401
"""The archer id and write token in ``hello`` do not match; rejoin to get a new token."""
CLOSE_UNKNOWN_SHOOT: Final = 4404
"""No live shoot has this code; do not retry with the same code."""
CLOSE_TOO_SLOW: Final = 4408
"""The subscriber could not keep up with updates; reconnect and catch up from the state
vector."""
CLOSE_EXPIRED: Final = 4410
"""The shoot has expired (its creator's local day ended); do not retry."""
CLOSE_RATE_LIMITED: Final = 4429
"""The client kept writing after ``rate_limited`` errors; reconnect after a pause."""

Role: TypeAlias = Literal["archer", "viewer"]
NoticeKind: TypeAlias = Literal["lead", "digest"]

# -- client -> relay ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """The first frame of every session: which shoot, as whom, and what the client has."""

    shoot: str
    """The shoot's 4-digit join code, ``"1000"`` to ``"9999"``."""
    role: Role
    """``"archer"`` (may write its own register) or ``"viewer"`` (read only)."""
    sv: bytes = b"\x00"
    """The Yjs state vector of the client's replica; ``b"\\x00"`` (empty) when it has none."""
    archer: str | None = None
    """The archer id the client writes as; required for archers, absent for viewers."""
    token: str | None = None
    """The archer's secret write token from joining; required for archers only."""


@dataclass(frozen=True, slots=True)
class Write:
    """Set the sender's register to a whole new state (an idempotent PUT, never a delta)."""

    id: int
    """The client's request id, echoed in the ``ack``, ``superseded`` or ``error``."""
    register: Register
    """The archer's full state with the hybrid-clock stamp of this write."""


@dataclass(frozen=True, slots=True)
class Ping:
    """A heartbeat; the relay answers with a :class:`Pong` carrying the same nonce."""

    nonce: int
    """Any integer the client picks, to match the pong to its ping."""


# -- relay -> client ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Welcome:
    """The answer to ``hello``: the shoot, and what the client is missing."""

    shoot: Shoot
    """The shoot's metadata."""
    reset: bool
    """True when the client's state vector shows items the relay never persisted: the
    client must discard its replica and start from :attr:`update` (a full state)."""
    update: bytes
    """The Yjs update the client lacks, or the full document state when :attr:`reset`."""
    server_ms: int
    """The relay's wall clock, so a device can judge its own clock's skew."""
    role: Role
    """The role from ``hello``, echoed."""
    archer: str | None = None
    """The archer id from ``hello``, echoed (``None`` for viewers)."""


@dataclass(frozen=True, slots=True)
class Update:
    """A change to the shoot's document; the same bytes go to every subscriber."""

    update: bytes
    """A Yjs update to apply to the replica."""


@dataclass(frozen=True, slots=True)
class Ack:
    """The write is durable in Redis; the client may drop it from its outbox."""

    id: int
    """The request id of the write."""
    archer: str
    """The archer whose register was written."""
    stamp: Stamp
    """The stamp of the write, so the client knows exactly which write is safe."""


@dataclass(frozen=True, slots=True)
class Superseded:
    """A newer write already won; nothing changed, and the client adopts the winner."""

    id: int
    """The request id of the write that lost."""
    winner: Register
    """The register's current value, newer than the write."""


@dataclass(frozen=True, slots=True)
class Error:
    """A request (or the session) was refused; nothing was changed."""

    code: str
    """A stable machine-readable code (``invalid_arrow``, ``rate_limited``...)."""
    message: str
    """A sentence for people, safe to show in the UI."""
    id: int | None = None
    """The request id it answers, or ``None`` when it concerns the session."""
    fatal: bool = False
    """The relay closes the connection right after this message."""
    server_ms: int | None = None
    """The relay's clock, present for ``clock_skew`` so the device can correct itself."""


@dataclass(frozen=True, slots=True)
class Notice:
    """Something worth telling people about the shoot, for a toast or a notification."""

    kind: NoticeKind
    """``"lead"`` (the lead of a round changed) or ``"digest"`` (a periodic summary)."""
    round: str
    """The round the notice is about."""
    archer: str
    """The archer the notice is about."""
    text: str
    """A sentence ready to show."""
    position: int | None
    """The archer's position in the round (1 is first), when it has one."""
    of: int | None
    """How many archers shoot that round, when :attr:`position` is given."""
    change: int | None
    """Places gained (positive) or lost (negative) since the round's previous digest, if
    there was one (``None`` in lead notices)."""
    ends: int
    """Ends everyone in the round had completed when the notice was made."""


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to a :class:`Ping`."""

    nonce: int
    """The ping's nonce."""
    server_ms: int
    """The relay's wall clock when it answered, for round-trip and skew estimates."""


ClientMessage: TypeAlias = Hello | Write | Ping
ServerMessage: TypeAlias = Welcome | Update | Ack | Superseded | Error | Notice | Pong
Message: TypeAlias = ClientMessage | ServerMessage
