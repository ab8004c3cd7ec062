"""Who may do what: write tokens, and the throttle that makes guessing codes slow.

Joining a shoot issues a random write token for the archer; Redis keeps only its SHA-256,
so a leaked database does not leak the right to write. A second device of the same archer
presents the archer id and token it was given (shared by the first device, e.g. via the
join link) and gets the same rights.

Four-digit codes are easy to guess, so failed attempts (an unknown code, a wrong token)
are throttled per client address, over HTTP joins and WebSocket hellos alike.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

import trio

from sync.limits import JOIN_FAILURES_BURST, JOIN_FAILURES_PER_S, TokenBucket
from sync.protocol import Hello

from .actor import wall_ms
from .registry import ShootExpired, UnknownShoot

if TYPE_CHECKING:
    from .context import RelayContext

__all__ = ["AccessDenied", "JoinThrottle", "Throttled", "authorize", "hash_token", "new_token"]

#: Addresses remembered by the throttle; the least recently seen are forgotten first.
MAX_TRACKED_ADDRESSES: Final = 50_000


class Throttled(Exception):
    """Too many failed attempts from this address."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"retry after {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class AccessDenied(Exception):
    """The archer id and token do not match."""


def new_token() -> str:
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str | None, token_sha256: str) -> bool:
    return token is not None and hmac.compare_digest(hash_token(token), token_sha256)


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
    shoot = await relay.store.call(relay.store.load_meta, hello.shoot)
    if shoot is None:
        relay.throttle.failed(address)
        raise UnknownShoot(hello.shoot)
    if shoot.expires_ms <= wall_ms():
        raise ShootExpired(hello.shoot)
    if hello.role == "viewer" or hello.archer is None:
        return None
    record = await relay.store.call(relay.store.get_archer, hello.shoot, hello.archer)
    if record is None or not token_matches(hello.token, record.token_sha256):
        relay.throttle.failed(address)
        raise AccessDenied(hello.archer)
    return hello.archer
