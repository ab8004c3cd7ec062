"""Ownership of a live shoot: its lease in Redis, taken before loading and kept while live.

Several relay processes may share one Redis (more machines, more workers, or an old and a
new relay side by side during a deploy). Only one of them may write a shoot's document at
a time, or the two incarnations write their own Yjs items into one log and the arrays
merge. So before an instance loads a shoot it takes the shoot's lease
(:meth:`~relay.store.RedisStore.acquire_lease`), which hands it the next *epoch*; the
epoch is the fencing token every append and compaction carries (see
:mod:`relay.store_leases`), and the document's Yjs client id derives from it
(:func:`client_id_for`), so two incarnations never write as one client.

:class:`LeaseRenewals` renews the leases of every live shoot every third of their length,
all in one call. When a renewal says a lease has gone to someone else (this process was
paused, or cut off from Redis, past its lease and another instance took over), the shoot's
:class:`LeaseKeeper` calls its ``on_deposed`` callback: the actor stops at once, closes
its sessions (the devices reconnect and resend what was never acknowledged) and drops what
it could not persist, which the fence would refuse anyway. Redis being away is not a deposition: the lease may lapse, but
as long as nobody takes it the epoch does not move, and the keeper takes it back.

An instance that finds the lease held serves the shoot as a follower
(:mod:`relay.follower`), which watches the lease, guided by its remaining time, so a
crashed owner's shoot is taken over as soon as its lease expires; an owner that stops
gives the lease up and says so in the log, so a follower takes over at once.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Final

import trio

from sync.models import Shoot

from .store import Owner, RedisStore, StoreUnavailable

__all__ = [
    "CLIENT_ID_BASE",
    "LeaseBoard",
    "LeaseKeeper",
    "LeaseRenewals",
    "client_id_for",
    "new_instance_id",
]

log = logging.getLogger(__name__)

#: Yjs client ids of owners are this plus the epoch: above every id the relay drew at
#: random before leases (``randbits(31) + 1``), and far below 2**53 (JavaScript's limit).
CLIENT_ID_BASE: Final = 1 << 31

#: Shortest wait between two attempts on a held lease (a lease about to expire).
MIN_RETRY_S: Final = 0.005


def new_instance_id() -> str:
    """This process's name in leases and reply streams: host, pid and a random part (pids
    are reused), in the characters an owner accepts in a forwarded request."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:64] or "relay"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def client_id_for(epoch: int) -> int:
    """The Yjs client id of the owner holding ``epoch``: a new one for every owner."""
    return CLIENT_ID_BASE + epoch


class LeaseKeeper:
    """One owned shoot's lease while its actor runs; :class:`LeaseRenewals` renews it.

    Args:
        owner: The lease this instance took.
        on_deposed: Called (once, synchronously) when another owner has the lease; the
            registry sets it once the actor exists.
    """

    def __init__(
        self,
        store: RedisStore,
        shoot: Shoot,
        owner: Owner,
        on_deposed: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self.shoot = shoot
        self.owner = owner
        self.on_deposed = on_deposed
        self.lost = False
        self._renewals: LeaseRenewals | None = None

    def deposed(self) -> None:
        """A renewal found the lease in someone else's hands: stop the actor."""
        if self.lost:
            return
        log.warning(
            "shoot %s: another instance took it over (epoch %d was ours); stopping",
            self.shoot.code,
            self.owner.epoch,
        )
        self.lost = True
        self.on_deposed()

    async def release(self) -> None:
        """Stop renewing and give the lease up so the next owner starts at once (best
        effort: otherwise it expires). Runs shielded and bounded, as it is called while
        stopping; together with the other leases given up at the same time (see
        :meth:`LeaseRenewals.release`)."""
        renewals = self._renewals
        if renewals is not None:
            renewals.forget(self)
        if self.lost:
            return
        # If Redis is away, the lease expires by itself.
        with trio.CancelScope(shield=True), trio.move_on_after(2.0), suppress(StoreUnavailable):
            if renewals is not None:
                await renewals.release(self.shoot, self.owner)
            else:
                await self._store.call(self._store.release_lease, self.shoot, self.owner)


class LeaseRenewals:
    """Renews the lease of every shoot this instance owns, all of them in one call per
    tick (a third of the lease).

    A task and a thread hop per shoot every second cost little for one shoot, but a
    relay restarted under a few hundred shoots spent a sixth of its event loop on them,
    and their calls queued for the worker threads ahead of the shoots it was loading. One
    pipeline per tick costs one hop whatever the number of shoots.

    Redis being away is not a deposition: the lease may lapse, but as long as nobody takes
    it the epoch does not move, and the next tick takes it back.
    """

    def __init__(self, store: RedisStore, lease_s: float) -> None:
        self._store = store
        self._lease_ms = round(lease_s * 1000)
        self._every_s = lease_s / 3
        self._kept: set[LeaseKeeper] = set()
        self._first_kept = trio.Event()
        self._releasing = _Releases()

    def keep(self, keeper: LeaseKeeper) -> None:
        """Renew ``keeper``'s lease from the next tick on, until it is released."""
        keeper._renewals = self
        self._kept.add(keeper)
        self._first_kept.set()

    def forget(self, keeper: LeaseKeeper) -> None:
        self._kept.discard(keeper)

    async def release(self, shoot: Shoot, owner: Owner) -> None:
        """Give a lease up, in one call with every other lease given up meanwhile.

        A relay stopping gives up the lease of every shoot it owns at once: one thread
        hop and one script call each took 1.4 ms of a loaded machine per shoot, most of
        its final flush with 500 shoots. The first caller of a batch lets the others
        of the same scheduler pass join it, then releases them all in one pipeline; the
        others wait for it. A failure (Redis away) is the first caller's to raise; the
        leases then expire by themselves.
        """
        batch = self._releasing
        batch.leases.append((shoot, owner))
        if len(batch.leases) > 1:
            await batch.done.wait()
            return
        try:
            await trio.lowlevel.checkpoint()  # the others stopping in this pass join in
            self._releasing = _Releases()
            await self._store.call(self._store.release_leases, batch.leases)
        finally:
            if self._releasing is batch:  # cancelled before it was sent
                self._releasing = _Releases()
            batch.done.set()

    async def run(self) -> None:
        """Renew every kept lease each tick, until cancelled. With none kept, the task
        sleeps until one is: a relay with nothing to renew sets no timer (every wake-up
        costs CPU, and an idle relay is most of a relay's day)."""
        store = self._store
        while True:
            if not self._kept:
                await self._first_kept.wait()
                self._first_kept = trio.Event()
                continue
            await trio.sleep(self._every_s)  # the renewal period, not synchronisation
            kept = list(self._kept)
            if not kept:
                continue
            leases = [(keeper.shoot, keeper.owner) for keeper in kept]
            try:
                still = await store.renew_leases_now(leases, self._lease_ms)
            except StoreUnavailable as exc:
                # The epoch only moves if someone else takes a lease; until then our
                # writes pass the fence, and the next tick takes the leases back.
                log.warning("could not renew the leases of %d shoots: %s", len(kept), exc)
                continue
            for keeper, ours in zip(kept, still, strict=True):
                if not ours and keeper in self._kept:
                    self._kept.discard(keeper)
                    keeper.deposed()


class LeaseBoard:
    """The leases of every shoot this instance follows, read in one pipeline per tick.

    A follower must take its shoot over as soon as the owner's lease expires. Asking each
    lease on its own every few seconds costs a thread hop and a script per follower;
    with a thousand followed shoots that is a measurable share of a core. So the board
    reads all of them (``GET`` and ``PTTL``) in one pipeline every ``every_s`` and calls
    a follower's ``on_due`` only when its lease is gone, changed hands, or expires before
    the next tick (the follower then waits for exactly the remaining time).

    Args:
        every_s: The tick; a third of the lease, like the owners' renewals.
    """

    def __init__(self, store: RedisStore, every_s: float) -> None:
        self._store = store
        self._every_s = every_s
        self._watches: dict[int, _Watched] = {}
        self._first_watched = trio.Event()
        self._ids = itertools.count()

    def watch(self, shoot: Shoot, holder: str, on_due: Callable[[], None]) -> Callable[[], None]:
        """Watch ``shoot``'s lease, now held by ``holder``; returns the function that
        stops watching."""
        key = next(self._ids)
        self._watches[key] = _Watched(shoot, holder, on_due)
        self._first_watched.set()

        def unwatch() -> None:
            self._watches.pop(key, None)

        return unwatch

    async def run(self) -> None:
        """Read the watched leases every tick, until cancelled; with none watched, the
        task sleeps until one is."""
        store = self._store
        while True:
            if not self._watches:
                await self._first_watched.wait()
                self._first_watched = trio.Event()
                continue
            await trio.sleep(self._every_s)  # the tick
            watched = list(self._watches.values())
            if not watched:
                continue
            try:
                states = await store.call(store.lease_states, [w.shoot for w in watched])
            except StoreUnavailable:
                continue  # the followers' own attempts report it
            for w, (holder, pttl_ms) in zip(watched, states, strict=True):
                if holder is None or holder != w.holder or pttl_ms < self._every_s * 1000:
                    w.holder = holder
                    w.on_due()


@dataclass(slots=True)
class _Releases:
    """Leases given up together (:meth:`LeaseRenewals.release`)."""

    leases: list[tuple[Shoot, Owner]] = field(default_factory=list)
    done: trio.Event = field(default_factory=trio.Event)


@dataclass(slots=True)
class _Watched:
    shoot: Shoot
    holder: str | None
    on_due: Callable[[], None]
