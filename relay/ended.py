"""The final results of shoots that have ended, read from what Redis keeps after the end
(and the durable view of a live shoot that another relay instance owns).

When a shoot's day is over its code is freed at once, but its document stays in Redis,
read only, for :data:`~sync.models.ENDED_KEPT_MS` (see :mod:`relay.store`), so that
``GET /api/shoots/{code}`` still shows the final leaderboard, marked ended. No actor runs
for an ended shoot: the board is built here, once per shoot, on a worker thread (a
leaderboard of many archers takes tens of milliseconds, which must not stall the event
loop), and kept in a small cache, since an ended shoot never changes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

import trio

from sync.document import ShootDocument
from sync.leaderboard import build_leaderboard
from sync.models import Shoot

from .actor import ShootView
from .store import RedisStore, StoredShoot

__all__ = ["EndedShoots"]

#: Ended shoots whose final board is kept in memory.
CACHED_BOARDS: Final = 128


def _build(stored: StoredShoot) -> ShootView:
    registers = ShootDocument.load(stored.updates).registers()
    return ShootView(stored.shoot, build_leaderboard(registers.values()), registers)


class EndedShoots:
    """Final views of ended shoots, built on demand and cached by shoot id."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._views: OrderedDict[str, ShootView] = OrderedDict()
        # One build at a time: a flood of reads of many ended shoots queues here instead
        # of taking every worker thread from the actors' Redis calls.
        self._builders = trio.CapacityLimiter(1)

    async def durable_view(self, shoot: Shoot) -> ShootView | None:
        """The view of a live shoot from what Redis holds (its durable state), for an
        instance that does not own it; not cached, as a live shoot changes.

        Raises:
            StoreUnavailable: Redis cannot be reached.
        """
        stored = await self._store.call(self._store.load_shoot, shoot.code)
        if stored is None or stored.shoot.shoot_id != shoot.shoot_id:
            return None
        return await trio.to_thread.run_sync(_build, stored, limiter=self._builders)

    async def view(self, shoot: Shoot) -> ShootView | None:
        """The final view of ``shoot``, or ``None`` once Redis no longer keeps it.

        Raises:
            StoreUnavailable: Redis cannot be reached.
        """
        cached = self._views.get(shoot.shoot_id)
        if cached is not None:
            self._views.move_to_end(shoot.shoot_id)
            return cached
        stored = await self._store.call(self._store.load_shoot, shoot.code)
        if stored is None or stored.shoot.shoot_id != shoot.shoot_id:
            return None
        view = await trio.to_thread.run_sync(_build, stored, limiter=self._builders)
        self._views[shoot.shoot_id] = view
        if len(self._views) > CACHED_BOARDS:
            self._views.popitem(last=False)
        return view
