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
from .registry import ShootExpired, UnknownShoot
from .store import StoreUnavailable
from .throttle import CreationThrottled

__all__ = ["CLOSE_TRY_AGAIN_LATER", "REFUSALS", "Refusal", "refusal_for"]

#: "Try again later" (RFC 6455 registry).
CLOSE_TRY_AGAIN_LATER: Final = 1013


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
}


def refusal_for(exc: Exception) -> Refusal | None:
    """The refusal for one of the causes above, or ``None`` for anything else."""
    return REFUSALS.get(type(exc))
