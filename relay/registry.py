"""The registry: starts shoot actors on demand and supervises them.

Each live shoot has one supervising task in the registry's nursery. It loads the
shoot from Redis, builds its :class:`~relay.actor.ShootActor` (which decodes the stored
document: poison data fails *here*, inside the boundary), runs it, and:

- when the actor returns (idle, expired, relay shutting down), forgets the shoot; the next
  request starts a fresh actor from Redis;
- when the actor raises, logs it and counts it; one shoot's bug never touches another
  shoot. Its subscribers were closed and reconnect, which starts the shoot again from
  Redis; writes it had not persisted were never acknowledged, so their devices resend;
- when the stored shoot cannot be decoded, logs and counts it and refuses that shoot's
  callers with :class:`ShootUnreadable`; requests in the next :data:`UNREADABLE_RETRY_S`
  get the same answer without loading it again (its clients retrying cannot flood Redis
  and the log), and the first one after that tries Redis again.

Before loading the document, the supervisor tries to take the shoot's ownership lease in
Redis (:mod:`relay.lease`), in the same call (one thread hop: :mod:`relay.store_start`),
and keeps it while the actor runs; if another instance takes the shoot over, the actor is
deposed and stops. Two relays on one Redis therefore never write one shoot at the same
time. When another instance holds the lease, the supervisor runs a
:class:`~relay.follower.ShootFollower` in the actor's place instead: it serves this
instance's clients from the shoot's log and forwards their writes to the owner, and when
the owner is gone it takes the lease, and the supervisor starts an actor that adopts the
follower's sessions (a failover clients see as a pause). The owner serves what followers
forward with :func:`~relay.inbox.serve_inbox` beside its actor.

Callers never hold an actor, only its inbox; :meth:`ShootRegistry.send` retries with a
fresh actor when the one it found has just stopped.

Shutdown: :func:`open_registry` closes every inbox when its block ends, and each actor
handles what is buffered, flushes to Redis and returns, within ``shutdown_grace_s``.
(Cancelling the actors instead would cancel their persisters before the flush that
waits for them; see :meth:`ShootActor.run` for how a cancelled actor still flushes.)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final, TypeVar

import trio

from sync.models import Shoot
from sync.protocol import CLOSE_GOING_AWAY

from .actor import INBOX_SIZE, NoticeSink, ShootActor, wall_ms
from .callbacks import weakly
from .config import Settings
from .follower import Handover, ShootFollower
from .hub import StreamHub
from .inbox import serve_inbox
from .lease import LeaseBoard, LeaseKeeper, LeaseRenewals, new_instance_id
from .messages import Message, Reply, ShootUnavailable, abandon
from .metrics import Metrics
from .notices import NoticePoster
from .records import ShootExpired, UnknownShoot
from .store import (
    INBOX_CONSUMER,
    INBOX_GROUP,
    LeaseHeld,
    RedisStore,
    ShootFenced,
    StoredShoot,
)
from .store_start import Started

__all__ = [
    "DECODING_ERRORS",
    "UNREADABLE_RETRY_S",
    "ShootExpired",
    "ShootRegistry",
    "ShootUnreadable",
    "UnknownShoot",
    "open_registry",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class ShootUnreadable(Exception):
    """The shoot's data in Redis cannot be decoded (logged for the operator)."""


#: What parsing the stored shoot raises when it is not what the relay wrote (JSON, bytes,
#: missing or unexpected fields); no expected refusal is one of these.
DECODING_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError)

#: How long a shoot whose data could not be decoded is refused before it is loaded again.
UNREADABLE_RETRY_S: Final = 10.0


@dataclass(slots=True)
class _Slot:
    """A live (or starting) shoot: its inbox, once its actor is running."""

    ready: trio.Event = field(default_factory=trio.Event)
    inbox: trio.MemorySendChannel[Message] | None = None
    actor: ShootActor | ShootFollower | None = None
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
        self._closing = False
        # Codes whose data failed to decode, and until when they are refused unloaded.
        self._unreadable_until: dict[str, float] = {}
        self._all_stopped = trio.Event()
        self._all_stopped.set()
        self.instance = new_instance_id()
        """This process's name in the shoots' leases."""
        self.on_notice: NoticeSink | None = None
        """Given to every actor started from now on (Web Push)."""
        # One blocking reader for every followed log, one for every owned inbox (see
        # relay.hub); on a Redis Cluster each shoot reads with a hub of its own.
        self._tails: StreamHub | None = None
        self._inboxes: StreamHub | None = None
        if not store.cluster:
            self._tails = StreamHub(store.reader())
            self._inboxes = StreamHub(store.reader(), group=(INBOX_GROUP, INBOX_CONSUMER))
            nursery.start_soon(self._tails.run)
            nursery.start_soon(self._inboxes.run)
        self._leases = LeaseBoard(store, settings.lease_s / 3)
        nursery.start_soon(self._leases.run)
        self._renewals = LeaseRenewals(store, settings.lease_s)
        nursery.start_soon(self._renewals.run)

    @property
    def live_shoots(self) -> int:
        return len(self._slots)

    def serves(self, code: str) -> bool:
        """Whether this instance runs (or is starting) the shoot's actor."""
        return code in self._slots

    def owns(self, code: str) -> bool:
        """Whether this instance runs the shoot's actor as its owner (not as a follower)."""
        slot = self._slots.get(code)
        return slot is not None and isinstance(slot.actor, ShootActor)

    def actors(self) -> list[ShootActor | ShootFollower]:
        return [slot.actor for slot in self._slots.values() if slot.actor is not None]

    async def send(self, code: str, message: Message) -> ShootActor | ShootFollower:
        """Deliver a message to the shoot's actor, starting it if needed.

        Raises:
            UnknownShoot, ShootExpired: the shoot cannot be served.
            ShootUnreadable: its data in Redis is damaged.
            StoreUnavailable: the shoot is not in memory and Redis cannot be reached.
            ShootUnavailable: the relay is shutting down.

        A running actor with room in its inbox takes the message at once, without a
        checkpoint: this is every write's way in, and the two passes through the
        scheduler the general path costs (waiting for the slot, then for the channel)
        were a measurable part of a write's CPU. The caller's own reads checkpoint (see
        :meth:`relay.wssocket.OwnedSocket.receive`), so a session still yields per frame.
        """
        slot = self._slots.get(code)
        if (
            slot is not None
            and slot.inbox is not None
            and slot.actor is not None
            and slot.error is None
            and not self._closing
        ):
            try:
                slot.inbox.send_nowait(message)
                return slot.actor
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # a full inbox waits below; a stopped actor is replaced below
        for _ in range(3):
            slot = await self._slot(code)
            assert slot.inbox is not None
            assert slot.actor is not None
            try:
                await slot.inbox.send(message)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                continue  # that actor just stopped; the next attempt starts a new one
            return slot.actor
        raise ShootUnavailable(f"shoot {code} keeps stopping")

    async def request(self, code: str, message: Message, reply: Reply[T]) -> T:
        """Send ``message`` and wait for its ``reply``, for ``answer_timeout_s`` at most
        (the HTTP handlers' way in: a request never waits on a shoot for ever).

        Raises:
            What :meth:`send` raises, the reply's failure, or :class:`ShootUnavailable`
            when no answer came in time.
        """
        with trio.move_on_after(self._settings.answer_timeout_s):
            await self.send(code, message)
            return await reply.wait()
        raise ShootUnavailable(f"shoot {code} did not answer in time")

    def close(self) -> None:
        """Stop taking requests and close every inbox: each actor handles what is already
        buffered, flushes and returns."""
        self._closing = True
        for slot in self._slots.values():
            if slot.inbox is not None:
                slot.inbox.close()

    async def wait_stopped(self) -> None:
        """Wait until every actor has returned."""
        while self._slots:
            await self._all_stopped.wait()

    async def _slot(self, code: str) -> _Slot:
        if self._closing:
            raise ShootUnavailable("the relay is shutting down")
        if self._unreadable_until.get(code, -1.0) > trio.current_time():
            raise ShootUnreadable(code)
        slot = self._slots.get(code)
        if slot is None:
            slot = self._slots[code] = _Slot()
            self._all_stopped = trio.Event()
            self._nursery.start_soon(self._supervise, code, slot)
        await slot.ready.wait()
        if slot.error is not None:
            raise slot.error
        return slot

    async def _take(self, code: str) -> tuple[Shoot, Started | LeaseHeld]:
        """The shoot and, if nobody held its lease, everything its actor starts from (else
        who holds it), in one thread hop (:mod:`relay.store_start`): a restarted relay
        starts hundreds of shoots at once.

        Raises:
            UnknownShoot, ShootExpired: the shoot cannot be served.
            StoreUnavailable: Redis cannot be reached.
            DECODING_ERRORS: its data in Redis cannot be decoded.
        """
        store, lease_ms = self._store, round(self._settings.lease_s * 1000)
        try:
            return await store.call(store.take_shoot, code, self.instance, lease_ms, wall_ms())
        except ShootFenced as exc:  # it ended (or its code went to a newer shoot) meanwhile
            raise ShootExpired(code) from exc

    async def _load(self, code: str) -> StoredShoot:
        stored = await self._store.call(self._store.load_shoot, code)
        if stored is None:
            raise UnknownShoot(code)
        if stored.shoot.expires_ms <= wall_ms():
            raise ShootExpired(code)
        return stored

    def _forget(self, code: str, slot: _Slot) -> None:
        if self._slots.get(code) is slot:
            del self._slots[code]
        if not self._slots:
            self._all_stopped.set()

    def _refuse(self, code: str, slot: _Slot, error: Exception) -> None:
        """Hand ``error`` to every caller waiting on this slot; the next request retries."""
        slot.error = error
        self._forget(code, slot)
        slot.ready.set()

    def unreadable(self, code: str, exc: Exception) -> ShootUnreadable:
        """Log and count a shoot whose stored data failed to decode with ``exc``; the
        error to refuse its callers with."""
        log.error("shoot %s: its data in Redis cannot be decoded", code, exc_info=exc)
        self._metrics.shoots_unreadable += 1
        return ShootUnreadable(code)

    def _unreadable(self, code: str, slot: _Slot, exc: Exception) -> None:
        now = trio.current_time()
        expired = [c for c, until in self._unreadable_until.items() if until <= now]
        for stale in expired:  # at most one entry per code: 9,000
            del self._unreadable_until[stale]
        self._unreadable_until[code] = now + UNREADABLE_RETRY_S
        self._refuse(code, slot, self.unreadable(code, exc))

    async def _supervise(self, code: str, slot: _Slot) -> None:
        """Serve the shoot here, from load to stop or crash: as its owner, or as a follower
        while another instance owns it, and then as its owner if this instance takes the
        lease over (see :mod:`relay.follower`).

        The slot is forgotten the moment the actor (or follower) closes its inbox
        (synchronously, see ``on_close``), so the next request starts anew from Redis, and
        two actors of one shoot never write at the same time.
        """
        send, receive = trio.open_memory_channel[Message](INBOX_SIZE)
        try:
            shoot, got = await self._take(code)
        except DECODING_ERRORS as exc:  # raised while parsing what Redis held
            self._unreadable(code, slot, exc)
            return
        except Exception as exc:  # UnknownShoot, ShootExpired, Redis...
            self._refuse(code, slot, exc)
            return
        handover, started = None, None
        if isinstance(got, LeaseHeld):
            handover = await self._follow(code, slot, receive, send, got.holder)
            if handover is None:
                return
            owner = handover.owner
        else:
            started, owner = got, got.owner
        keeper = LeaseKeeper(self._store, shoot, owner)
        try:
            await self._run(code, slot, keeper, started, receive, send, handover)
        finally:
            await keeper.release()

    def _start_failed(
        self,
        code: str,
        slot: _Slot,
        exc: Exception,
        receive: trio.MemoryReceiveChannel[Message],
        handover: Handover | None,
        *,
        unreadable: bool = False,
    ) -> None:
        """Refuse the shoot's callers with ``exc`` (as unreadable data if ``unreadable``);
        after a takeover, also close the follower's sessions and answer what it left
        (they reconnect, and resend)."""
        if unreadable or isinstance(exc, DECODING_ERRORS):
            self._unreadable(code, slot, exc)
        else:
            self._refuse(code, slot, exc)
        if handover is None:
            return
        gone = ShootUnavailable(f"shoot {code} could not be taken over")
        for subscriber in handover.subscribers:
            subscriber.close(CLOSE_GOING_AWAY, "shoot unloaded")
        for message in handover.pending:
            abandon(message, gone)
        while True:
            try:
                abandon(receive.receive_nowait(), gone)
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        receive.close()

    async def _follow(
        self,
        code: str,
        slot: _Slot,
        receive: trio.MemoryReceiveChannel[Message],
        send: trio.MemorySendChannel[Message],
        holder: str,
    ) -> Handover | None:
        """Serve the shoot as a follower; the handover if this instance took it over."""
        try:
            stored = await self._load(code)
        except Exception as exc:  # UnknownShoot, ShootExpired, StoreUnavailable, decoding
            self._start_failed(code, slot, exc, receive, None)
            return None
        try:
            follower = ShootFollower(
                stored,
                self._store,
                receive,
                self._settings,
                self._metrics,
                instance=self.instance,
                holder=holder,
                hub=self._tails,
                leases=self._leases,
                on_close=lambda: self._forget(code, slot),
            )
        except Exception as exc:  # building is pure: a failure there is in the stored data
            self._start_failed(code, slot, exc, receive, None, unreadable=True)
            return None
        slot.inbox, slot.actor = send, follower
        slot.ready.set()
        if self._closing:
            send.close()
        self._metrics.followed_shoots += 1
        try:
            return await follower.run()
        except Exception:
            log.exception("shoot %s: its follower crashed", code)
            self._metrics.actor_crashes += 1
            return None
        finally:
            self._metrics.followed_shoots -= 1

    async def _run(
        self,
        code: str,
        slot: _Slot,
        keeper: LeaseKeeper,
        started: Started | None,
        receive: trio.MemoryReceiveChannel[Message],
        send: trio.MemorySendChannel[Message],
        handover: Handover | None,
    ) -> None:
        """Run the shoot's actor while ``keeper`` keeps its lease, from what ``started``
        holds (read when the lease was taken), or after a takeover (``None``) from Redis."""
        if started is None:
            store = self._store
            try:
                started = await store.call(store.load_owned, code, keeper.owner, wall_ms())
            except Exception as exc:  # UnknownShoot, ShootExpired, StoreUnavailable, decoding
                self._start_failed(code, slot, exc, receive, handover)
                return
        stored = started.stored
        notices = NoticePoster(self._store, stored.shoot)
        try:
            actor = ShootActor(
                stored,
                self._store,
                receive,
                self._settings,
                self._metrics,
                owner=keeper.owner,
                on_close=lambda: self._forget(code, slot),
                on_notice=self.on_notice,
                on_notice_frame=notices.post,
            )
        except Exception as exc:  # building is pure: a failure there is in the stored data
            self._start_failed(code, slot, exc, receive, handover, unreadable=True)
            return
        if handover is not None:
            actor.adopt(handover.subscribers, handover.state_vector, list(handover.pending))
            self._metrics.takeovers += 1
        keeper.on_deposed = weakly(actor.depose)  # it outlives the actor: see relay.callbacks
        self._renewals.keep(keeper)
        slot.inbox, slot.actor = send, actor
        slot.ready.set()
        if self._closing:
            send.close()  # the relay began closing while this shoot loaded
        self._metrics.live_shoots += 1
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(notices.run)
                nursery.start_soon(
                    serve_inbox,
                    self._store,
                    stored.shoot,
                    send,
                    self._inboxes,
                    started.inbox_pending,
                )
                await actor.run()
                nursery.cancel_scope.cancel()
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
    """A registry whose actors all live inside this context.

    Leaving it closes every inbox and gives the actors ``shutdown_grace_s`` to handle what
    is buffered and flush to Redis. Leaving by cancellation cancels them at once, and each
    still flushes within the same grace (its persister is shielded until then).
    """
    async with trio.open_nursery() as nursery:
        registry = ShootRegistry(nursery, store, settings, metrics)
        try:
            yield registry
        finally:
            registry.close()
            with trio.move_on_after(settings.shutdown_grace_s):
                await registry.wait_stopped()
            nursery.cancel_scope.cancel()
