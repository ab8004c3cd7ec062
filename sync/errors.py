"""Errors the sync layer can report, each with a stable code and a sentence for people.

Exception tree::

    SyncError                 (code, message)
     ├── InvalidState         an archer state breaks a rule of the round or a limit
     ├── ClockSkewError       a write's timestamp is too far ahead of the relay's clock
     ├── LimitExceeded        a shoot is full (archers or document size)
     └── ProtocolError        a frame that is not a valid message of this protocol

The codes are part of the wire protocol (they travel in ``error`` messages), so they never
change meaning once published. Callers at the boundary (the relay's transport, the SDK)
turn these into wire errors or their own exception types; nothing inside ``sync`` catches
them.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "INVALID_STATE_CODES",
    "ClockSkewError",
    "InvalidState",
    "LimitExceeded",
    "ProtocolError",
    "SyncError",
]

#: Every code :class:`InvalidState` is raised with (a client maps them to its own "the
#: score breaks a rule" error from this list, not a copy of it).
INVALID_STATE_CODES: Final = frozenset(
    {"invalid_name", "unknown_round", "invalid_profile", "too_many_arrows", "invalid_arrow"}
)


class SyncError(Exception):
    """Root of every error the sync layer raises on purpose.

    Attributes:
        code: A stable machine-readable code such as ``"invalid_arrow"``.
        message: A sentence a person understands, safe to show in a UI.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class InvalidState(SyncError):
    """An archer state that the rules of archery or the relay's limits do not allow."""


class ClockSkewError(SyncError):
    """A write stamped further in the future than the relay accepts.

    Attributes:
        server_ms: The relay's wall clock when it refused, so a device can correct itself.
    """

    def __init__(self, message: str, server_ms: int) -> None:
        super().__init__("clock_skew", message)
        self.server_ms = server_ms


class ProtocolError(SyncError):
    """Bytes from a peer that do not form a valid message (the peer's fault, not ours)."""


class LimitExceeded(SyncError):
    """A request that would take a shoot past one of its limits (``sync.limits``).

    Codes: ``shoot_full`` (a join over the archer limit, or with no room left in the
    document) and ``document_full`` (a write that could take the document over its size
    cap). Nothing changes when one is raised.
    """
