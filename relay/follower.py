"""A follower: serves a shoot's clients on an instance that does not own the shoot.

Theory of operation
-------------------
Several relays share one Redis; one of them owns a live shoot (its lease, see
:mod:`relay.lease`) and is the only writer of its document. Any other instance whose
clients want the shoot runs a :class:`ShootFollower` for it, in the registry's slot where
the owner would run a :class:`~relay.actor.ShootActor`, reading the same inbox of
:mod:`relay.messages`; so sessions and HTTP handlers do not know which of the two they
talk to.

- **Updates.** The follower keeps a replica of the document built from the snapshot and
  log it loaded, and tails the shoot's log stream (``XREAD BLOCK`` from the last entry it
  applied, through the instance's :mod:`relay.hub`): each entry is applied and fanned out to its subscribers as one ``update``
  frame, in log order. So followers' clients see only durable updates. Compaction trims
  the log, and ``XREAD`` silently skips trimmed entries; the compaction script leaves a
  marker naming how far it trimmed, and a follower that had read less reloads the
  snapshot and log and sends its subscribers the difference (never a ``reset``: the
  replica only grows).
- **Welcome.** A new subscriber gets the diff for its state vector from the replica. A
  state vector ahead of the replica (a device coming from the owner, which fans out
  before Redis has the update) first makes the follower read the log up to now; only a
  device holding what Redis never had (a crashed owner's last updates) gets a ``reset``.
- **Reads** get the owner's board, built from the replica with the projection tables
  filled off the event loop (:mod:`relay.follower_board`).
- **Writes and joins** are forwarded to the owner (:mod:`relay.forward`) and answered as
  the owner answers them. **Access** is checked against the archers' records, loaded
  with the shoot and read from Redis for archers who joined since.
- **Failover.** The follower watches the lease, guided by its remaining time. When the
  owner is gone (its lease expired or was given up) it takes the lease and returns a
  :class:`Handover`: the registry loads the shoot from Redis into a new actor, which
  sends the subscribers what the replica lacked, adds them to its fan-out and answers
  the requests still pending here. The sessions stay open: clients see a pause, no
  ``reset``, and lose nothing (an acknowledged write is durable, so the new owner has it).

It stops like an actor: idle (no subscriber, nothing pending, no message for
``idle_timeout_s``), at the shoot's end, or when the registry closes its inbox; it then
closes its sessions (1001) and answers every waiter left with
:class:`~relay.messages.ShootUnavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import trio

from sync.access import access_without_record, archer_access
from sync.codec import encode
from sync.document import ShootDocument
from sync.protocol import (
    CLOSE_GOING_AWAY,
    Update,
)
from sync.relay_state import ShootState
from sync.wall import system_wall_ms

from .callbacks import nothing, weakly
from .config import Settings
from .fanout import HeldUpdates, expire, fan_out, welcome
from .follower_board import FollowerBoard
from .forward import Forwarder
from .hub import StreamHub, Watch
from .keys import reply_key
from .lease import MIN_RETRY_S, LeaseBoard
from .messages import (
    Access,
    AddArcher,
    CheckAccess,
    ForgetArcher,
    Message,
    Read,
    ShootUnavailable,
    Submit,
    Subscribe,
    Unsubscribe,
    abandon,
)
from .metrics import Metrics
from .records import ArcherRecord, Owner, ShootFenced, StoredShoot, StoreUnavailable
from .store import RedisStore
from .streams import Entry, id_key
from .subscriber import Subscriber

__all__ = ["Handover", "ShootFollower"]

#: Pauses between attempts to reload the shoot while Redis is away.
RELOAD_RETRY_MIN_S: Final = 0.05
RELOAD_RETRY_MAX_S: Final = 2.0

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Handover:
    """What a follower that took the lease hands to the shoot's new actor."""

    owner: Owner
    subscribers: set[Subscriber]
    state_vector: bytes
    """What every subscriber's replica holds (the follower's replica)."""
    pending: list[Submit | AddArcher | Read]
    """Requests forwarded to the old owner and never answered, and reads waiting for
    the follower's board."""


class ShootFollower:
    """Serves one shoot's clients from the log while another instance owns it.

    Args:
        stored: The shoot as loaded from Redis.
        inbox: The receiving end of the registry's slot; closed when the follower stops
            for good, left open for the actor when it hands over.
        instance: This relay's name in leases and reply streams.
        holder: The lease token of the owner when the follower started.
        hub: The instance's reader of followed logs (:mod:`relay.hub`); ``None`` makes
            one for this shoot alone.
        leases: The instance's watcher of followed leases; ``None``: this follower asks
            Redis itself, guided by the lease's remaining time.
    """

    def __init__(
        self,
        stored: StoredShoot,
        store: RedisStore,
        inbox: trio.MemoryReceiveChannel[Message],
        settings: Settings,
        metrics: Metrics,
        *,
        instance: str,
        holder: str,
        hub: StreamHub | None = None,
        leases: LeaseBoard | None = None,
        on_close: Callable[[], None] = lambda: None,
        now_ms: Callable[[], int] = system_wall_ms,
    ) -> None:
        self.shoot = stored.shoot
        self._hub = hub
        self._store = store
        self._inbox = inbox
        self._settings = settings
        self._metrics = metrics
        self._instance = instance
        self._holder = holder
        self._on_close = on_close
        self._now_ms = now_ms
        self.doc = ShootDocument.load(stored.updates)
        self._state: ShootState[None] = ShootState(self.doc)
        self._board = FollowerBoard(self.shoot, self.doc)
        self._archers = dict(stored.archers)
        self._last_id = stored.log_end
        self._reply_id = "0-0"
        self.subscribers: set[Subscriber] = set()
        self._updates = HeldUpdates(weakly(self._fan_out))  # see relay.callbacks
        self._forwarder = Forwarder(store, self.shoot, instance, settings.lease_s * 2)
        self._promoted: Owner | None = None
        self._lease_due = trio.Event()
        self._leases = leases
        self._ended = False
        self._nursery: trio.Nursery | None = None
        self.unpersisted = 0
        """A follower holds nothing Redis lacks (for the registry's shutdown report)."""
        self.degraded = False

    # -- running -------------------------------------------------------------------------

    async def run(self) -> Handover | None:
        """Serve until idle, ended or closed (``None``), or until this instance took the
        lease (the :class:`Handover` for the new actor)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._tail)
                nursery.start_soon(self._watch_lease, nursery.cancel_scope)
                if self._leases is not None:
                    unwatch = self._leases.watch(self.shoot, self._holder, self._lease_due_now)
                    nursery.start_soon(_call_when_cancelled, unwatch)
                nursery.start_soon(self._forwarder.run)
                nursery.start_soon(self._board.projector.run)
                await self._serve()
                nursery.cancel_scope.cancel()
        except BaseException:
            self._stop()
            raise
        if self._promoted is None:
            if self._ended:
                self._expire()
            self._stop()
            return None
        return Handover(
            self._promoted,
            {s for s in self.subscribers if not s.closed},
            self.doc.state_vector(),
            [*self._forwarder.take(), *self._board.take()],
        )

    async def _serve(self) -> None:
        while not self._ended:
            remaining_s = (self.shoot.expires_ms - self._now_ms()) / 1000
            if remaining_s <= 0:
                self._expire()
                return
            with trio.move_on_after(min(self._settings.idle_timeout_s, remaining_s)):
                try:
                    message = await self._inbox.receive()
                except trio.EndOfChannel:
                    return
                self._handle(message)
                continue
            self.subscribers = {s for s in self.subscribers if not s.closed}
            if self.subscribers or self._forwarder.pending or self._board.waiting:
                continue
            if self._inbox.statistics().current_buffer_used == 0:
                return

    def _stop(self) -> None:
        """Close the sessions, fail every waiter and close the inbox, with no checkpoint
        in between (as :meth:`ShootActor._stop <relay.actor.ShootActor>` does)."""
        for subscriber in self.subscribers:
            subscriber.close(CLOSE_GOING_AWAY, "shoot unloaded")
        gone = ShootUnavailable(f"shoot {self.shoot.code} stopped before answering")
        self._forwarder.fail_all(gone)
        for read in self._board.take():
            abandon(read, gone)
        while True:
            try:
                message = self._inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            abandon(message, gone)
        self._inbox.close()
        on_close, self._on_close = self._on_close, nothing
        on_close()  # once; and kept no longer: it may refer to what refers to the follower

    def _expire(self) -> None:
        expire(self.subscribers)

    # -- messages ------------------------------------------------------------------------

    def _handle(self, message: Message) -> None:
        try:
            self._dispatch(message)
        except Exception:  # a bug: answer the message, then stop (the registry logs it)
            abandon(message, ShootUnavailable("the shoot failed; try again"))
            raise

    def _dispatch(self, message: Message) -> None:
        match message:
            case Subscribe(state_vector=state_vector):
                # The codec read the hello's state vector (sync.codec): it is well formed.
                if self.doc.knows(state_vector):
                    self._welcome(message)
                else:
                    self._spawn(self._catch_up_then_welcome, message)
            case Unsubscribe(subscriber):
                self.subscribers.discard(subscriber)
            case Read():
                self._board.read(message)
            case CheckAccess():
                self._spawn(self._check_access, message)
            case AddArcher(archer_id, record):
                self._archers[archer_id] = record
                self._forwarder.forward(message)
            case ForgetArcher(archer_id):
                self._archers.pop(archer_id, None)
                self._forwarder.forward(message)
            case Submit():
                self._metrics.writes_forwarded += 1
                self._forwarder.forward(message)

    def _spawn(self, task: Callable[[Any], Awaitable[None]], message: Message) -> None:
        """Handle ``message`` in a task of its own (it waits for Redis); however that task
        ends, the message is answered."""

        async def handle() -> None:
            try:
                await task(message)
            finally:
                abandon(message, ShootUnavailable("the shoot's follower stopped"))

        assert self._nursery is not None
        self._nursery.start_soon(handle)

    async def _catch_up_then_welcome(self, subscribe: Subscribe) -> None:
        """The subscriber has seen updates this replica lacks: read the log up to now
        first (they are most likely durable already), then welcome it (with a reset if
        the replica still lacks them, e.g. because Redis could not be read)."""
        await self._catch_up()
        self._welcome(subscribe)

    def _welcome(self, subscribe: Subscribe) -> None:
        catchup = self._state.welcome(subscribe.state_vector)
        welcome(self.subscribers, subscribe.subscriber, self.shoot, catchup, self._now_ms())
        subscribe.done.set(None)

    async def _check_access(self, check: CheckAccess) -> None:
        try:
            check.reply.set(await self._access(check.archer_id, check.token))
        except StoreUnavailable as exc:
            check.reply.fail(exc)

    async def _access(self, archer_id: str | None, token: str | None) -> Access:
        """The access rule (:mod:`sync.access`); the archer's record is read from Redis
        when the rule needs it and this follower does not hold it yet."""
        settled = access_without_record(self._now_ms(), self.shoot.expires_ms, archer_id)
        if settled is not None:
            return settled
        assert archer_id is not None  # a viewer is settled without a record
        record: ArcherRecord | None = self._archers.get(archer_id)
        if record is None:  # joined since this follower loaded the shoot
            record = await self._store.call(self._store.get_archer, self.shoot, archer_id)
            if record is not None:
                self._archers[archer_id] = record
        return archer_access(token, None if record is None else record.token_sha256)

    # -- the log -------------------------------------------------------------------------

    async def _tail(self) -> None:
        """Apply and fan out the log's new entries, and pass the owner's answers on."""
        async with trio.open_nursery() as nursery:
            hub = self._hub
            if hub is None:  # a hub of this shoot's own (see relay.hub)
                hub = StreamHub(self._store.reader(self._store.log_key(self.shoot)))
                nursery.start_soon(hub.run)
            log_watch = hub.watch(self._store.log_key(self.shoot), self._last_id)
            replies = hub.watch(reply_key(self.shoot, self._instance))
            try:
                nursery.start_soon(self._take_replies, replies)
                async for batch in log_watch.batches:
                    await self._apply_log(batch)
                    if log_watch.missed:  # the hub dropped batches: read them from Redis
                        log_watch.missed = False
                        await self._catch_up()
                    log_watch.after = max(log_watch.after, self._last_id, key=id_key)
            finally:
                log_watch.close()
                replies.close()

    async def _take_replies(self, replies: Watch) -> None:
        async for batch in replies.batches:
            for _, fields in batch:
                self._forwarder.answered(fields)
            # Answers the hub dropped are asked for again (the forwarder resends).

    async def _catch_up(self) -> None:
        """Read the log from the last entry applied up to now."""
        try:
            entries = await self._store.call(self._store.log_after, self.shoot, self._last_id)
        except StoreUnavailable as exc:
            log.warning("shoot %s: cannot read its log: %s", self.shoot.code, exc)
            return
        await self._apply_log(entries)

    async def _apply_log(self, entries: list[Entry]) -> None:
        """Apply what the owner logged; the updates of one read go out as one run
        (:class:`~relay.fanout.HeldUpdates`), as the owner sends a run of queued writes."""
        self._updates.hold()
        try:
            for entry_id, fields in entries:
                if id_key(entry_id) <= id_key(self._last_id):
                    continue  # read twice (the tail and a catch-up overlap)
                through = fields.get("c")
                if through is not None and id_key(self._last_id) < id_key(through.decode()):
                    self._updates.release()
                    await self._reload()  # compaction trimmed entries never read here
                    return
                self._last_id = entry_id
                if "r" in fields:  # the owner gave the lease up: take it now
                    self._lease_due.set()
                notice = fields.get("n")
                if notice is not None:  # the owner's notice, passed on as it is
                    self._updates.flush()  # after the writes it is about
                    self._fan_out(notice)
                    continue
                update = fields.get("u")
                if through is None and "r" not in fields and update is not None:
                    self.doc.apply_update(update)
                    self._board.changed()
                    self._updates.offer(update)
        finally:
            self._updates.release()

    async def _reload(self) -> None:
        """Load snapshot and log again (compaction trimmed what this replica never read)
        and send the subscribers the difference; waits for Redis if it is away."""
        delay = RELOAD_RETRY_MIN_S
        while True:
            try:
                stored = await self._store.call(self._store.load_shoot, self.shoot.code)
                break
            except StoreUnavailable as exc:
                log.warning("shoot %s: cannot reload it: %s", self.shoot.code, exc)
                await trio.sleep(delay)  # backoff between retries, not synchronisation
                delay = min(delay * 2, RELOAD_RETRY_MAX_S)
        if stored is None or stored.shoot.shoot_id != self.shoot.shoot_id:
            self._ended = True  # the shoot is gone from Redis
            assert self._nursery is not None
            self._nursery.cancel_scope.cancel()
            return
        before = self.doc.state_vector()
        if stored.snapshot:
            self.doc.apply_update(stored.snapshot)
        for _, update in stored.log:
            self.doc.apply_update(update)
        self._last_id = max(self._last_id, stored.log_end, key=id_key)
        if self.doc.state_vector() != before:
            self._board.changed()
            self._fan_out(encode(Update(self.doc.diff(before))))

    def _fan_out(self, frame: bytes) -> None:
        fan_out(self.subscribers, frame, self.doc.diff, self._metrics)

    # -- the lease -----------------------------------------------------------------------

    def _lease_due_now(self) -> None:
        self._lease_due.set()

    async def _watch_lease(self, serving: trio.CancelScope) -> None:
        """Take the lease as soon as the owner's expires; resend what is pending when it
        changes hands."""
        store, lease_s = self._store, self._settings.lease_s
        while True:
            try:
                got = await store.call(
                    store.acquire_lease, self.shoot, self._instance, round(lease_s * 1000)
                )
            except StoreUnavailable:
                await trio.sleep(lease_s / 3)  # Redis is away: ask again later
                continue
            except ShootFenced:  # the shoot ended, or its code went to a newer shoot
                self._ended = True
                serving.cancel()
                return
            if isinstance(got, Owner):
                log.info("shoot %s: its owner is gone; this instance takes over", self.shoot.code)
                self._promoted = got
                serving.cancel()
                return
            if got.holder != self._holder:
                self._holder = got.holder
                self._forwarder.resend_all()
            wait_s = max(got.pttl_ms / 1000 if got.pttl_ms > 0 else 0.0, MIN_RETRY_S)
            if self._leases is not None and wait_s > lease_s / 3:
                wait_s = float("inf")  # the board says when to look again (relay.lease)
            # Wake when the lease would expire (a live owner renews it meanwhile), or when
            # the owner says in the log that it gave the lease up.
            with trio.move_on_after(min(wait_s, lease_s) if self._leases is None else wait_s):
                await self._lease_due.wait()
            self._lease_due = trio.Event()


async def _call_when_cancelled(call: Callable[[], None]) -> None:
    try:
        await trio.sleep_forever()
    finally:
        call()
