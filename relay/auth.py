"""Who may do what: sessions' access, and the throttle that makes guessing codes slow.

Joining a shoot issues a random write token for the archer (:mod:`relay.credentials`). A
second device of the same archer presents the archer id and token it was given and gets
the same rights. The check is made by the shoot's actor, from memory, so the archers of a
loaded shoot can reconnect even while Redis is away.

Four-digit codes are easy to guess, so failed attempts (an unknown code, a wrong token)
are throttled per client address, over HTTP joins and WebSocket hellos alike.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Final

import trio

from sync.limits import JOIN_FAILURES_BURST, JOIN_FAILURES_PER_S, TokenBucket
from sync.protocol import Hello

from .actor import CheckAccess
from .registry import ShootExpired, UnknownShoot

if TYPE_CHECKING:
    from .context import RelayContext

__all__ = ["AccessDenied", "JoinThrottle", "Throttled", "authorize"]

#: Addresses remembered by the throttle; the least recently seen are forgotten first.
MAX_TRACKED_ADDRESSES: Final = 50_000


class Throttled(Exception):
    """Too many failed attempts from this address."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"retry after {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class AccessDenied(Exception):
    """The archer id and token do not match."""


class JoinThrottle:
    """A token bucket of failures per client address, in bounded memory."""

    def __init__(self) -> None:
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def _bucket(self, address: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = TokenBucket(JOIN_FAILURES_BURST, JOIN_FAILURES_PER_S, updated=now)
            self._buckets[address] = bucket
            if len(self._buckets) > MAX_TRACKED_ADDRESSES:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(address)
        return bucket

    def check(self, address: str) -> None:
        """Raise :class:`Throttled` if this address has used up its failures."""
        now = trio.current_time()
        bucket = self._bucket(address, now)
        if not bucket.would_allow(now):
            raise Throttled(bucket.retry_after(now))

    def failed(self, address: str) -> None:
        now = trio.current_time()
        self._bucket(address, now).try_take(now)


async def authorize(relay: RelayContext, hello: Hello, address: str) -> str | None:
    """Check a hello; return the archer id it may write for (``None`` for viewers).

    Raises:
        Throttled, UnknownShoot, ShootExpired, AccessDenied, StoreUnavailable.
    """
    relay.throttle.check(address)
    archer = hello.archer if hello.role == "archer" else None
    check = CheckAccess(archer, hello.token)
    try:
        await relay.registry.send(hello.shoot, check)
    except UnknownShoot:
        relay.throttle.failed(address)
        raise
    access = await check.reply.wait()
    if access == "expired":
        raise ShootExpired(hello.shoot)
    if access == "denied":
        relay.throttle.failed(address)
        raise AccessDenied(archer)
    return archer
