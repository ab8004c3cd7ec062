"""The SDK's errors, and the one place where lower layers' exceptions become them.

Exception tree::

    ShootError                (code, message): everything the SDK raises on purpose
     ├── InvalidScore         a write breaks a rule of the round (checked before queueing)
     ├── UnknownShoot         no live shoot has this code (HTTP 404, close 4404)
     ├── ShootExpired         the shoot ended with its creator's day (HTTP 410, close 4410)
     ├── Unauthorized         archer id and token do not match (HTTP 401, close 4401)
     ├── RelayUnreachable     the relay cannot be reached or broke the connection
     └── NotJoined            this device has no identity (CLI) or no state to build on

trio-websocket, httpx and socket errors are translated by :func:`translate` only, chained
with ``from``, so callers catch :class:`ShootError` and never a transport's exception.
"""

from __future__ import annotations

from typing import Final

import httpx
import trio

from sync.client_actions import FATAL_CLOSE_CODES
from sync.errors import INVALID_STATE_CODES, SyncError
from sync.protocol import CLOSE_EXPIRED, CLOSE_UNAUTHORIZED, CLOSE_UNKNOWN_SHOOT

__all__ = [
    "FATAL_CLOSE_CODES",
    "InvalidScore",
    "NotJoined",
    "RelayUnreachable",
    "ShootError",
    "ShootExpired",
    "Unauthorized",
    "UnknownShoot",
    "close_code",
    "error_for_close",
    "error_for_code",
    "translate",
]


class ShootError(Exception):
    """Root of every error the SDK raises.

    Attributes:
        code: A stable machine-readable code (``"unknown_shoot"``, ``"invalid_arrow"``...).
        message: One sentence for people, safe to print.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class InvalidScore(ShootError):
    """The state a write would set breaks a rule of its round; nothing was queued."""


class UnknownShoot(ShootError):
    """No live shoot has this code; retrying with it will not help."""


class ShootExpired(ShootError):
    """The shoot has ended (its creator's local day is over)."""


class Unauthorized(ShootError):
    """The archer id and write token do not match; join again for a new token."""


class RelayUnreachable(ShootError):
    """The relay could not be reached, or the connection to it broke."""


class NotJoined(ShootError):
    """This device has not joined a shoot, or has no archer state to build a write on."""


_BY_CODE: Final[dict[str, type[ShootError]]] = {
    "unknown_shoot": UnknownShoot,
    "invalid_code": UnknownShoot,
    "expired": ShootExpired,
    "unauthorized": Unauthorized,
    "read_only": NotJoined,
    "no_state": NotJoined,
    **dict.fromkeys(INVALID_STATE_CODES, InvalidScore),
}


def error_for_code(code: str, message: str) -> ShootError:
    """The SDK error for an error code from the relay (HTTP body or ``error`` frame)."""
    return _BY_CODE.get(code, ShootError)(code, message)


def error_for_close(code: int | None, reason: str | None) -> ShootError:
    """The SDK error for a WebSocket close the client will not retry after."""
    if code == CLOSE_UNKNOWN_SHOOT:
        return UnknownShoot("unknown_shoot", "There is no shoot with that code.")
    if code == CLOSE_EXPIRED:
        return ShootExpired("expired", "This shoot has ended.")
    if code == CLOSE_UNAUTHORIZED:
        return Unauthorized(
            "unauthorized", "That archer id and token do not match; join the shoot again."
        )
    return RelayUnreachable("disconnected", f"The relay closed the connection ({code} {reason}).")


def translate(exc: BaseException, relay_url: str) -> ShootError | None:
    """The :class:`ShootError` for a transport exception, or ``None`` if it is not one.

    Exception groups (trio-websocket can raise them from its nursery) are searched for the
    first exception this function knows.
    """
    if isinstance(exc, ShootError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = translate(inner, relay_url)
            if found is not None:
                return found
        return None
    if isinstance(exc, SyncError):
        return error_for_code(exc.code, exc.message)
    unreachable = f"Cannot reach the relay at {relay_url}."
    if isinstance(exc, trio.TooSlowError):
        return RelayUnreachable("timeout", f"The relay at {relay_url} did not answer in time.")
    if isinstance(exc, httpx.TimeoutException):
        return RelayUnreachable("timeout", f"The relay at {relay_url} did not answer in time.")
    if isinstance(exc, httpx.TransportError | OSError):
        return RelayUnreachable("unreachable", unreachable)
    # trio-websocket's exceptions (untyped: imported lazily to keep this module light).
    import trio_websocket

    if isinstance(exc, trio_websocket.ConnectionClosed):
        reason = exc.reason
        return error_for_close(getattr(reason, "code", None), getattr(reason, "reason", None))
    if isinstance(exc, trio_websocket.ConnectionRejected):
        return RelayUnreachable(
            "rejected", f"The relay at {relay_url} refused the connection ({exc.status_code})."
        )
    if isinstance(exc, trio_websocket.HandshakeError):
        return RelayUnreachable("unreachable", unreachable)
    import wsproto.utilities

    if isinstance(exc, wsproto.utilities.LocalProtocolError):
        # trio-websocket's reader answers a ping that arrives while our close handshake
        # is under way, and wsproto refuses to send the pong: the connection is going
        # anyway (seen when a relay is killed mid-session).
        return RelayUnreachable("disconnected", f"The connection to {relay_url} broke.")
    return None


def close_code(exc: BaseException) -> int | None:
    """The WebSocket close code the relay ended the connection with, if that is what
    ``exc`` (or an exception in its group) is."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := close_code(inner)) is not None:
                return found
        return None
    import trio_websocket

    if isinstance(exc, trio_websocket.ConnectionClosed):
        code = getattr(exc.reason, "code", None)
        return code if isinstance(code, int) else None
    return None
