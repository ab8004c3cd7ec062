"""A shoot's start by its owner, in one blocking call: meta, lease, document and inbox.

A restarted relay takes its clients back all at once (in the benchmark's reconnect storm,
5,000 clients in 500 shoots), so what one shoot's start costs is paid hundreds of times
in a row. Each ``store.call`` is a hop to a worker thread (about 130 µs of CPU, plus
Trio's scheduling and redis-py's machinery), and the start used to make five of them: the
meta, the lease, the meta again with the document, the inbox's consumer group, and the
inbox's pending requests. A round trip to Redis made from the worker thread that is
already there costs far less, so :meth:`StartCalls.take_shoot` makes them all in one hop,
in the order the rules need:

1. The code's meta (``meta``, else ``latest``). None: :class:`UnknownShoot`; a shoot
   whose day is over: :class:`ShootExpired`. No lease is asked for either.
2. The lease (:meth:`~relay.store.RedisStore.acquire_lease`, fenced by the code's
   claim: :class:`ShootFenced` when the claim no longer names this shoot). Held by
   another instance: the call ends here and says who holds it; the instance then follows
   the shoot, which loads the document itself, as it always did.
3. Won: the document, log and archers of the shoot read in step 1
   (:meth:`~relay.store.RedisStore.load_document`, which reads the keys of the layout
   before shoot ids too); the meta is not read again.
4. The inbox's consumer group, made if missing, and the requests an earlier owner read and
   never answered (:meth:`~relay.store.RedisStore.open_inbox_pending`, one pipeline).

When step 3 or 4 fails (Redis, or stored data that does not decode), the lease is given
back in the same call before the error goes up, as the registry's keeper did after a
failed load, so another instance need not wait for the lease to expire.

A follower that has just taken its shoot over already holds the lease; it starts as the
owner with :meth:`StartCalls.load_owned` (steps 1, 3 and 4), one hop too.

Every step names keys of one shoot only, all under its code's hash tag, so on a Redis
Cluster the whole start talks to the one node that holds them.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from sync.models import Shoot

from .records import LeaseHeld, Owner, ShootExpired, StoredShoot, UnknownShoot
from .streams import Entry

__all__ = ["StartCalls", "Started"]


@dataclass(frozen=True, slots=True)
class Started:
    """What an owner starts serving a shoot from, read in the call that gave it the
    shoot (:meth:`StartCalls.take_shoot`, :meth:`StartCalls.load_owned`)."""

    stored: StoredShoot
    owner: Owner
    """The lease this instance holds."""
    inbox_pending: list[Entry]
    """Requests forwarded to an earlier owner that it read and never answered; the
    inbox's consumer group exists once they are read."""


class StartCalls:
    """The owner's start of a shoot, a part of :class:`~relay.store.RedisStore` (blocking,
    like its other calls: run them through ``store.call``)."""

    if TYPE_CHECKING:  # the RedisStore calls the start is made of

        def load_meta(self, code: str) -> Shoot | None: ...
        def load_document(self, shoot: Shoot) -> StoredShoot: ...
        def acquire_lease(
            self, shoot: Shoot, instance: str, lease_ms: int
        ) -> Owner | LeaseHeld: ...
        def release_lease(self, shoot: Shoot, owner: Owner) -> None: ...
        def open_inbox_pending(self, shoot: Shoot) -> list[Entry]: ...

    def take_shoot(
        self, code: str, instance: str, lease_ms: int, now_ms: int
    ) -> tuple[Shoot, Started | LeaseHeld]:
        """Start the shoot with this code as its owner if nobody holds its lease (see the
        module docstring for the steps).

        Args:
            now_ms: The wall clock, in ms: a shoot that expires by then is over.

        Returns:
            The shoot, and what its owner starts from, or who holds its lease.

        Raises:
            UnknownShoot: no shoot has this code.
            ShootExpired: the shoot's day is over.
            ShootFenced: the shoot lost its code (it ended) before the lease was taken.
            redis.RedisError: Redis failed (``store.call`` makes it StoreUnavailable).
            ValueError, TypeError, KeyError...: the stored data does not decode.
        """
        shoot = self._live_meta(code, now_ms)
        got = self.acquire_lease(shoot, instance, lease_ms)
        if isinstance(got, LeaseHeld):
            return shoot, got
        try:
            return shoot, self._owned(shoot, got)
        except Exception:
            # Nobody serves the shoot from this lease: give it back (best effort; it
            # expires by itself otherwise).
            with suppress(redis.RedisError):
                self.release_lease(shoot, got)
            raise

    def load_owned(self, code: str, owner: Owner, now_ms: int) -> Started:
        """What to start the shoot with this code from, for an instance that already holds
        its lease as ``owner`` (a follower that took it over); the caller gives the lease
        back if this fails.

        Raises:
            As :meth:`take_shoot`, except ShootFenced.
        """
        return self._owned(self._live_meta(code, now_ms), owner)

    def _live_meta(self, code: str, now_ms: int) -> Shoot:
        shoot = self.load_meta(code)
        if shoot is None:
            raise UnknownShoot(code)
        if shoot.expires_ms <= now_ms:
            raise ShootExpired(code)
        return shoot

    def _owned(self, shoot: Shoot, owner: Owner) -> Started:
        stored = self.load_document(shoot)
        return Started(stored, owner, self.open_inbox_pending(shoot))
