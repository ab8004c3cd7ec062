"""Per-address token buckets: who may try again, and when.

The relay throttles two things per client address: failed guesses at a shoot (an unknown
code, a wrong token; :class:`relay.auth.JoinThrottle`) and shoot creation (every created
shoot holds one of only 9,000 codes until its day ends). Both need the same parts: a token
bucket per address, in bounded memory, keyed so that one subscriber cannot dodge it by
changing addresses it owns by the billion.

Keys: an IPv4 address is its own key; an IPv6 address is keyed by its /64 network, since a
single home or phone is routinely given a whole /64 and can pick any address in it.
IPv4-mapped IPv6 addresses count as the IPv4 address they carry. Behind a reverse proxy,
the address is the one :mod:`relay.proxy` found in the proxy's header (when configured).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from typing import Final

import trio

from sync.limits import TokenBucket

__all__ = [
    "MAX_TRACKED_ADDRESSES",
    "AddressThrottle",
    "CreationThrottled",
    "Throttled",
    "address_key",
]

#: Addresses remembered per throttle; the least recently seen are forgotten first.
MAX_TRACKED_ADDRESSES: Final = 50_000


class Throttled(Exception):
    """Too many failed attempts from this address."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"retry after {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class CreationThrottled(Throttled):
    """Too many shoots created from this address."""


def address_key(address: str) -> str:
    """The key an address is throttled under (its /64 for IPv6).

    Anything that is not an IP address (``"unknown"``, a unix socket path) is its own key.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class AddressThrottle:
    """A token bucket per client address, in bounded memory, on Trio's clock.

    Memory: at most :data:`MAX_TRACKED_ADDRESSES` buckets; the least recently used is
    forgotten first, which at worst gives a forgotten address a fresh burst.
    """

    def __init__(
        self,
        burst: float,
        per_s: float,
        *,
        error: type[Throttled] = Throttled,
        max_tracked: int = MAX_TRACKED_ADDRESSES,
    ) -> None:
        self._burst, self._per_s, self._error = burst, per_s, error
        self._max_tracked = max_tracked
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _bucket(self, address: str, now: float) -> TokenBucket:
        key = address_key(address)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self._burst, self._per_s, updated=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_tracked:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        return bucket

    def allows(self, address: str) -> bool:
        """Whether the address has a token left (none is taken)."""
        now = trio.current_time()
        return self._bucket(address, now).would_allow(now)

    def error(self, address: str) -> Throttled:
        """The error to raise for this address, saying when it may try again."""
        now = trio.current_time()
        return self._error(self._bucket(address, now).retry_after(now))

    def check(self, address: str) -> None:
        """Raise :class:`Throttled` if this address has no token left (none is taken)."""
        if not self.allows(address):
            raise self.error(address)

    def take(self, address: str) -> None:
        """Take a token, or raise :class:`Throttled` if there is none."""
        now = trio.current_time()
        bucket = self._bucket(address, now)
        if not bucket.try_take(now):
            raise self._error(bucket.retry_after(now))

    def spend(self, address: str) -> None:
        """Take a token if there is one, never raising (for counting failures)."""
        now = trio.current_time()
        self._bucket(address, now).try_take(now)
