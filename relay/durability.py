"""A shoot's durability bookkeeping: which updates Redis has, and answers held until then.

Theory of operation
-------------------
The actor's protocol state (:class:`sync.relay_state.ShootState`) numbers every
document update and decides which held answers may go out; this module is its driver
towards Redis. The *persister* (:meth:`Durability.run`, a companion task of the actor) appends waiting
updates to Redis in batches, one pipeline per batch, and tells the state machine how far Redis has got; the answers it releases
(``ack``, ``superseded``, an HTTP write's result, each held until the update that set the
value it names is durable) go out here.

When Redis is away the persister retries with backoff and the shoot counts as
*degraded* (``/health`` says 503 while any shoot is). The count is kept by
:meth:`Durability.set_degraded` only, and :meth:`Durability.close` takes the shoot out of
it however the actor ends, so a shoot that unloads or crashes while degraded cannot leave
``/health`` stuck.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import trio

from sync.models import Shoot
from sync.relay_state import ShootState

from .config import Settings
from .messages import Reply, WriteResult
from .metrics import Metrics
from .store import Owner, RedisStore, ShootFenced, StoreUnavailable
from .subscriber import Subscriber

__all__ = ["Durability", "Held"]

log = logging.getLogger(__name__)

MAX_BATCH: Final = 256
RETRY_MIN_S: Final = 0.05
RETRY_MAX_S: Final = 2.0


@dataclass(slots=True)
class Held:
    """An answer waiting until the update numbered ``needs`` is durable."""

    needs: int
    subscriber: Subscriber | None
    frame: bytes | None
    reply: Reply[WriteResult] | None = None
    result: WriteResult | None = None

    def release(self) -> None:
        if self.subscriber is not None and self.frame is not None:
            self.subscriber.answer(self.frame)
        if self.reply is not None and self.result is not None:
            self.reply.set(self.result)


class Durability:
    """Moves one shoot's updates to Redis and releases answers as they become durable.

    Args:
        shoot: The shoot whose log the updates go to.
        state: The shoot's protocol state: numbers updates, holds and releases answers.
        snapshot: Builds the full document state, for compaction.
        log_length: Entries already in the shoot's log (from loading).
        on_durable: Called with the durable number each time it advances, after the held
            answers are released (the actor releases its held notices there).
        owner: The lease every write is fenced by.
        on_deposed: Called when Redis refused a write because another instance took the
            shoot over (the actor stops).
    """

    def __init__(
        self,
        shoot: Shoot,
        store: RedisStore,
        settings: Settings,
        metrics: Metrics,
        *,
        state: ShootState[Held],
        snapshot: Callable[[], bytes],
        log_length: int,
        on_durable: Callable[[int], None] = lambda durable: None,
        owner: Owner,
        on_deposed: Callable[[], None] = lambda: None,
    ) -> None:
        self._shoot = shoot
        self._owner = owner
        self._on_deposed = on_deposed
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._snapshot = snapshot
        self._log_length = log_length
        self._on_durable = on_durable
        self._state = state
        self._unpersisted: list[bytes] = []
        self._wanted = trio.Event()
        self._progress = trio.Event()
        self.degraded = False

    @property
    def applied(self) -> int:
        """Updates numbered so far."""
        return self._state.applied

    @property
    def durable(self) -> int:
        """The highest update number Redis has."""
        return self._state.durable

    @property
    def pending(self) -> bool:
        """Whether some applied update is not in Redis yet."""
        return bool(self._unpersisted)

    def record(self, update: bytes) -> int:
        """Number an update and queue it for Redis; returns its number."""
        number = self._state.record()
        self.persist(update)
        return number

    def persist(self, update: bytes) -> None:
        """Queue an update the state machine has already numbered (a won write's)."""
        self._unpersisted.append(update)
        self._wanted.set()

    def hold(self, held: Held) -> None:
        """Release ``held`` now if what it names is durable, else once it is."""
        for ready in self._state.hold(held.needs, held):
            ready.release()

    async def flushed(self) -> None:
        """Wait until Redis has every update (each persister attempt wakes us to check)."""
        while self._unpersisted:
            self._wanted.set()
            await self._progress.wait()

    def close(self, error: Exception) -> None:
        """The actor is ending: fail the HTTP waiters whose answers never became durable
        (connections are closed by the actor, and their devices resend) and leave the
        degraded count."""
        for held in self._state.abandon():
            if held.reply is not None:
                held.reply.fail(error)
        self.set_degraded(False)

    def set_degraded(self, degraded: bool) -> None:
        """The one place that changes the relay's count of degraded shoots."""
        if degraded != self.degraded:
            self.degraded = degraded
            self._metrics.redis_degraded_shoots += 1 if degraded else -1

    async def run(self) -> None:
        """The persister: runs until cancelled (the actor cancels it after its last flush)."""
        delay = RETRY_MIN_S
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            while self._unpersisted:
                batch = self._unpersisted[:MAX_BATCH]
                started = time.perf_counter()
                try:
                    last_id, self._log_length = await self._store.append_now(
                        self._shoot, self._owner, batch
                    )
                except ShootFenced as exc:
                    self._drop_unpersisted(exc)
                    if exc.reason == "deposed":
                        self._on_deposed()
                    break
                except StoreUnavailable as exc:
                    self._signal_progress()
                    self._metrics.redis_failures += 1
                    if not self.degraded:
                        log.warning("shoot %s: Redis unavailable: %s", self._shoot.shoot_id, exc)
                    self.set_degraded(True)
                    await trio.sleep(delay)  # backoff between retries, not synchronisation
                    delay = min(delay * 2, RETRY_MAX_S)
                    continue
                self._metrics.redis_latency.observe(time.perf_counter() - started)
                if self.degraded:
                    log.info("shoot %s: Redis is back; caught up", self._shoot.shoot_id)
                self.set_degraded(False)
                delay = RETRY_MIN_S
                del self._unpersisted[: len(batch)]
                self._release_durable(self.durable + len(batch))
                self._signal_progress()
                if self._log_length >= self._settings.compact_every:
                    await self._compact(last_id)

    def _drop_unpersisted(self, exc: ShootFenced) -> None:
        """Redis refused the shoot's writes for good: it has ended (or its code belongs
        to a newer shoot). What is not in Redis was never acknowledged and never will be;
        the devices keep those writes and learn that the shoot ended when they reconnect.
        """
        log.warning(
            "shoot %s: %s; %d updates were not persisted",
            self._shoot.shoot_id,
            exc,
            len(self._unpersisted),
        )
        self._unpersisted.clear()
        self._signal_progress()

    def _signal_progress(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    def _release_durable(self, through: int) -> None:
        for held in self._state.made_durable(through):
            held.release()
        self._on_durable(self.durable)

    async def _compact(self, through_id: str) -> None:
        snapshot = self._snapshot()
        try:
            await self._store.call(
                self._store.compact, self._shoot, self._owner, snapshot, through_id
            )
            self._log_length = 0
        except StoreUnavailable as exc:
            # Nothing is lost (the log stays, and compaction is tried again after the next
            # append), but an operator must be able to see why the log keeps growing.
            self._metrics.redis_failures += 1
            log.warning(
                "shoot %s: compaction failed (the log keeps its %d entries): %s",
                self._shoot.shoot_id,
                self._log_length,
                exc,
            )
        except ShootFenced as exc:
            if exc.reason == "deposed":
                self._on_deposed()  # the new owner compacts from now on
            # else the shoot has ended: its document is kept as it is
