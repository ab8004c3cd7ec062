"""Why the relay refuses a request, said once for both of its doors.

The same refusals reach clients over HTTP (a status and ``{"error": ...}``) and over the
WebSocket (an ``error`` frame and a close code). This table gives each cause its one code
and sentence; :mod:`relay.http` and :mod:`relay.connection` only add their transport's
status or close code from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sync.protocol import CLOSE_EXPIRED, CLOSE_RATE_LIMITED, CLOSE_UNAUTHORIZED, CLOSE_UNKNOWN_SHOOT

from .auth import AccessDenied, Throttled
from .messages import ShootUnavailable
from .registry import ShootExpired, ShootUnreadable, UnknownShoot
from .store import StoreUnavailable
from .throttle import CreationThrottled

__all__ = ["CLOSE_INTERNAL_ERROR", "CLOSE_TRY_AGAIN_LATER", "REFUSALS", "Refusal", "refusal_for"]

#: "Try again later" (RFC 6455 registry).
CLOSE_TRY_AGAIN_LATER: Final = 1013
#: "Internal error" (RFC 6455): the relay cannot serve this, through no fault of the client.
CLOSE_INTERNAL_ERROR: Final = 1011


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str
    http_status: int
    close_code: int


REFUSALS: Final[dict[type[Exception], Refusal]] = {
    Throttled: Refusal(
        "throttled", "Too many failed attempts; wait and try again.", 429, CLOSE_RATE_LIMITED
    ),
    CreationThrottled: Refusal(
        "throttled",
        "Too many shoots created from this address; wait and try again.",
        429,
        CLOSE_RATE_LIMITED,
    ),
    AccessDenied: Refusal(
        "unauthorized", "That archer id and token do not match.", 401, CLOSE_UNAUTHORIZED
    ),
    UnknownShoot: Refusal(
        "unknown_shoot", "There is no shoot with that code.", 404, CLOSE_UNKNOWN_SHOOT
    ),
    ShootExpired: Refusal("expired", "This shoot has ended.", 410, CLOSE_EXPIRED),
    StoreUnavailable: Refusal(
        "unavailable",
        "The relay's store is unavailable; try again soon.",
        503,
        CLOSE_TRY_AGAIN_LATER,
    ),
    ShootUnavailable: Refusal(
        "unavailable",
        "This shoot is restarting or busy; try again soon.",
        503,
        CLOSE_TRY_AGAIN_LATER,
    ),
    ShootUnreadable: Refusal(
        "shoot_unreadable",
        "This shoot's saved data cannot be read; the relay's operator has been told.",
        500,
        CLOSE_INTERNAL_ERROR,
    ),
}


def refusal_for(exc: Exception) -> Refusal | None:
    """The refusal for one of the causes above, or ``None`` for anything else."""
    return REFUSALS.get(type(exc))
