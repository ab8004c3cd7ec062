"""The lease calls: who owns a live shoot, and the epoch that fences its writes.

A part of :class:`relay.store.RedisStore` (which mixes it in), kept apart because only
ownership uses it: taking a shoot (:mod:`relay.registry`, :mod:`relay.follower`), keeping
and giving it up (:mod:`relay.lease`), and finding who owns it (:mod:`relay.http`,
:mod:`relay.siblings`). The store's appends and compactions only check what these calls
leave in Redis.

Several relays may share one Redis, so one shoot may be wanted by several processes; only
one at a time may write its document. Each live shoot has a lease
(``shoot:{1234}:<id>:lease``, ``SET PX``, renewed while the shoot is live, see
:mod:`relay.lease`) holding the token ``"<epoch>:<instance>"``, where the epoch comes from
``INCR shoot:{1234}:<id>:epoch`` in the same script that takes the lease, so it only ever
grows. The fence of every append and compaction (:func:`relay.keys.fence_keys`) also checks
that the writer's epoch is the current one and that nobody else holds the lease: a deposed
owner (paused past its lease, or cut off from Redis while another took over) has every
append and compaction refused with reason ``deposed``, even one a worker thread sends long
after its actor has stopped. A lease that merely lapsed while its owner could not reach
Redis is no threat: nobody else took it, the epoch is unchanged, and the owner's writes
still go through (and its keeper takes the lease back).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from sync.models import Shoot

from . import scripts
from .keys import data_key as _data_key
from .keys import fence_keys
from .keys import kept_until as _kept_until
from .records import LeaseHeld, Owner, ShootFenced
from .store_streams import EMPTY_UPDATE

__all__ = ["LeaseCalls"]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class LeaseCalls:
    """The lease calls of :class:`~relay.store.RedisStore` (blocking, like its others:
    run them through ``store.call``)."""

    cluster: bool
    _redis: redis.Redis

    def _leases_init(self) -> None:
        self._acquire = self._redis.register_script(scripts.ACQUIRE)
        self._renew = self._redis.register_script(scripts.RENEW)
        self._release = self._redis.register_script(scripts.RELEASE)

    def acquire_lease(self, shoot: Shoot, instance: str, lease_ms: int) -> Owner | LeaseHeld:
        """Take the shoot's lease with the next epoch, unless someone holds it.

        Raises:
            ShootFenced: the shoot no longer holds its code.
        """
        args: list[str | int] = [shoot.shoot_id, instance, lease_ms, _kept_until(shoot)]
        result = self._acquire(keys=fence_keys(shoot), args=args)
        if int(result[0]) == 1:
            return Owner(int(result[1]), instance)
        if int(result[0]) == 2:
            return LeaseHeld(_text(result[1]), int(result[2]))
        raise ShootFenced(shoot.code, _text(result[1]))

    def renew_lease(self, shoot: Shoot, owner: Owner, lease_ms: int) -> bool:
        """Extend the lease (or take it back if it lapsed untaken); False once deposed."""
        keys, args = self._renew_call(shoot, owner, lease_ms)
        return bool(self._renew(keys=keys, args=args))

    def renew_leases(self, leases: Sequence[tuple[Shoot, Owner]], lease_ms: int) -> list[bool]:
        """Renew many leases (see :meth:`renew_lease`) in one pipeline: whether each is
        still ours. On a Redis Cluster each one is its own call (the keys of two shoots
        may live on two nodes), still on the caller's one thread."""
        if self.cluster:
            return [self.renew_lease(shoot, owner, lease_ms) for shoot, owner in leases]
        pipe = self._redis.pipeline(transaction=False)
        for shoot, owner in leases:
            keys, args = self._renew_call(shoot, owner, lease_ms)
            self._renew(keys=keys, args=args, client=pipe)
        return [bool(kept) for kept in pipe.execute()]

    @staticmethod
    def _renew_call(shoot: Shoot, owner: Owner, lease_ms: int) -> tuple[list[str], list[Any]]:
        """The renewal script's keys and arguments (the wire sends the same)."""
        return [_data_key(shoot, "lease"), _data_key(shoot, "epoch")], [
            owner.token,
            owner.epoch,
            lease_ms,
        ]

    def release_lease(self, shoot: Shoot, owner: Owner) -> None:
        """Give the lease up (if still ours), so the next owner need not wait for it, and
        tell the followers tailing the log."""
        keys = [_data_key(shoot, "lease"), _data_key(shoot, "log")]
        self._release(keys=keys, args=[owner.token, EMPTY_UPDATE])

    def release_leases(self, leases: Sequence[tuple[Shoot, Owner]]) -> None:
        """Give many leases up (:meth:`release_lease`) in one pipeline (on a Redis Cluster
        one call each: two shoots' keys may live on two nodes)."""
        pipe = None if self.cluster else self._redis.pipeline(transaction=False)
        for shoot, owner in leases:
            keys = [_data_key(shoot, "lease"), _data_key(shoot, "log")]
            self._release(keys=keys, args=[owner.token, EMPTY_UPDATE], client=pipe)
        if pipe is not None:
            pipe.execute()

    def lease_states(self, shoots: Sequence[Shoot]) -> list[tuple[str | None, int]]:
        """Each shoot's lease holder (``None``: nobody) and milliseconds left, read in one
        pipeline (one command per key: no key of two shoots in one command)."""
        pipe = self._redis.pipeline(transaction=False)
        for shoot in shoots:
            pipe.get(_data_key(shoot, "lease"))
            pipe.pttl(_data_key(shoot, "lease"))
        found = pipe.execute()
        return [
            (None if holder is None else _text(holder), int(pttl))
            for holder, pttl in zip(found[::2], found[1::2], strict=True)
        ]

    def lease_holder(self, shoot: Shoot) -> str | None:
        """The token of whoever holds the shoot's lease, if anyone does."""
        raw = self._redis.get(_data_key(shoot, "lease"))
        return None if raw is None else _text(raw)
