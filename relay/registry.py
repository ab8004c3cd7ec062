"""The registry: starts shoot actors on demand and supervises them.

Each live shoot has one supervising task in the registry's nursery. It loads the shoot
from Redis, runs its :class:`~relay.actor.ShootActor`, and:

- when the actor returns (idle, expired, relay shutting down), forgets the shoot; the next
  request starts a fresh actor from Redis;
- when the actor raises, logs it and counts it; one shoot's bug never touches another
  shoot. Its subscribers were closed and reconnect, which starts the shoot again from
  Redis; writes it had not persisted were never acknowledged, so their devices resend.

Callers never hold an actor, only its inbox; :meth:`ShootRegistry.send` retries with a
fresh actor when the one it found has just stopped.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from .actor import INBOX_SIZE, Message, ShootActor, wall_ms
from .config import Settings
from .metrics import Metrics
from .store import RedisStore, StoredShoot

__all__ = ["ShootExpired", "ShootRegistry", "UnknownShoot", "open_registry"]

log = logging.getLogger(__name__)


class UnknownShoot(Exception):
    """No shoot has this code (never created, or already expired from Redis)."""


class ShootExpired(Exception):
    """The shoot's day is over."""


@dataclass(slots=True)
class _Slot:
    """A live (or starting) shoot: its inbox, once its actor is running."""

    ready: trio.Event = field(default_factory=trio.Event)
    inbox: trio.MemorySendChannel[Message] | None = None
    actor: ShootActor | None = None
    error: Exception | None = None


class ShootRegistry:
    def __init__(
        self, nursery: trio.Nursery, store: RedisStore, settings: Settings, metrics: Metrics
    ) -> None:
        self._nursery = nursery
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._slots: dict[str, _Slot] = {}

    @property
    def live_shoots(self) -> int:
        return len(self._slots)

    def actors(self) -> list[ShootActor]:
        return [slot.actor for slot in self._slots.values() if slot.actor is not None]

    async def send(self, code: str, message: Message) -> ShootActor:
        """Deliver a message to the shoot's actor, starting it if needed.

        Raises:
            UnknownShoot, ShootExpired: the shoot cannot be served.
            StoreUnavailable: the shoot is not in memory and Redis cannot be reached.
        """
        for _ in range(3):
            slot = await self._slot(code)
            assert slot.inbox is not None
            assert slot.actor is not None
            try:
                await slot.inbox.send(message)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                continue  # that actor just stopped; the next attempt starts a new one
            return slot.actor
        raise trio.BrokenResourceError(f"shoot {code} keeps stopping")

    async def _slot(self, code: str) -> _Slot:
        slot = self._slots.get(code)
        if slot is None:
            slot = self._slots[code] = _Slot()
            self._nursery.start_soon(self._supervise, code, slot)
        await slot.ready.wait()
        if slot.error is not None:
            raise slot.error
        return slot

    async def _load(self, code: str) -> StoredShoot:
        stored = await self._store.call(self._store.load_shoot, code)
        if stored is None:
            # Ended within the last day (its final results are kept): "expired", as the
            # HTTP API says, rather than "unknown".
            if await self._store.call(self._store.has_final, code):
                raise ShootExpired(code)
            raise UnknownShoot(code)
        if stored.shoot.expires_ms <= wall_ms():
            raise ShootExpired(code)
        return stored

    def _forget(self, code: str, slot: _Slot) -> None:
        if self._slots.get(code) is slot:
            del self._slots[code]

    async def _supervise(self, code: str, slot: _Slot) -> None:
        """Run one actor for the shoot, from load to stop or crash.

        The slot is forgotten the moment the actor closes its inbox (synchronously, see
        ``on_close``), so the next request starts a new actor from Redis, and two actors
        of one shoot never write at the same time.
        """
        try:
            stored = await self._load(code)
        except Exception as exc:  # handed to every caller waiting on this slot
            slot.error = exc
            self._forget(code, slot)
            slot.ready.set()
            return
        send, receive = trio.open_memory_channel[Message](INBOX_SIZE)
        actor = ShootActor(
            stored,
            self._store,
            receive,
            self._settings,
            self._metrics,
            client_id=secrets.randbits(31) + 1,
            on_close=lambda: self._forget(code, slot),
        )
        slot.inbox, slot.actor = send, actor
        slot.ready.set()
        self._metrics.live_shoots += 1
        try:
            await actor.run()
        except Exception:
            # The supervision boundary: this shoot alone is unloaded; its subscribers were
            # closed and reconnect, which starts it again from Redis.
            log.exception("shoot %s crashed; it restarts from Redis", stored.shoot.shoot_id)
            self._metrics.actor_crashes += 1
        finally:
            self._forget(code, slot)
            self._metrics.live_shoots -= 1


@asynccontextmanager
async def open_registry(
    store: RedisStore, settings: Settings, metrics: Metrics
) -> AsyncIterator[ShootRegistry]:
    """A registry whose actors all live inside this context; leaving it stops them,
    each flushing what it holds to Redis first."""
    async with trio.open_nursery() as nursery:
        registry = ShootRegistry(nursery, store, settings, metrics)
        try:
            yield registry
        finally:
            nursery.cancel_scope.cancel()
