"""One shoot's actor: the single task that owns the shoot's document.

Theory of operation
-------------------
Everything that reads or changes a live shoot is a message in the actor's inbox (a
bounded Trio channel, so a flood of writes waits at the door instead of growing memory).
The actor handles messages one at a time, which is what makes it the document's single
writer: the last-writer-wins decision and the Yjs write happen with nothing in between.

A write goes: validate -> check the clock skew -> decide and write (:mod:`sync.document`)
-> encode the Yjs update **once** and offer the same bytes to every subscriber -> append
it to the list waiting for Redis -> rebuild the leaderboard and decide the notices (after
the fan-out, so they never delay it). What the notifier remembers
(:mod:`sync.notifications`) is written to the document as the next update, so a
restarted or reloaded actor never announces a lead twice; the notices go out only once
that update is durable (see :meth:`ShootActor._announce`).

Durability: a companion task, the persister, moves waiting updates to Redis in batches
(one pipeline per batch). Every answer about a register (``ack``, and ``superseded`` which
names the winner) is held until the value it names is durable, so a relay crash can
never make a device drop a write that Redis does not have. If Redis is away, fan-out goes
on, answers wait, the persister retries with backoff, and the shoot reports itself
degraded; nothing is dropped while the process lives.

Final results: the persister also refreshes the shoot's tombstone (the whole document,
kept a day past the shoot's end; see :mod:`relay.store`) in the same round trip as a
batch, at most every :data:`FINAL_EVERY_MS`, and the actor writes it once more on its way
out, so the results of an ended shoot miss at most that much after a crash.

Lifetime: the registry starts the actor on first use, loading snapshot and log from Redis.
It stops when nobody is subscribed and no message came for ``idle_timeout_s`` (after
flushing to Redis), when the shoot expires, or when the relay shuts down.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Generic, Literal, TypeVar

import trio

from sync.classification import derived_values
from sync.clock import check_skew
from sync.codec import encode
from sync.document import ShootDocument
from sync.errors import SyncError
from sync.leaderboard import Leaderboard, build_leaderboard
from sync.models import Shoot, validate_state
from sync.notifications import NotifierState, assume_announced, next_notices
from sync.protocol import (
    CLOSE_EXPIRED,
    CLOSE_GOING_AWAY,
    Ack,
    Error,
    Notice,
    Superseded,
    Update,
    Welcome,
)
from sync.register import Applied, Duplicate, Outcome, Register

from .config import Settings
from .credentials import token_matches
from .metrics import Metrics
from .store import ArcherRecord, RedisStore, StoredShoot, StoreUnavailable
from .subscriber import Subscriber

__all__ = [
    "AddArcher",
    "CheckAccess",
    "Read",
    "ShootActor",
    "ShootView",
    "Submit",
    "Subscribe",
    "Unsubscribe",
    "WriteResult",
]

log = logging.getLogger(__name__)

INBOX_SIZE: Final = 256
MAX_BATCH: Final = 256
RETRY_MIN_S: Final = 0.05
RETRY_MAX_S: Final = 2.0
#: The tombstone is refreshed at most this often while writes arrive (and on unload).
FINAL_EVERY_MS: Final = 30_000


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


T = TypeVar("T")


class Reply(Generic[T]):
    """A one-shot answer from the actor to a task waiting for it."""

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value: T | None = None

    def set(self, value: T) -> None:
        self._value = value
        self._event.set()

    async def wait(self) -> T:
        await self._event.wait()
        assert self._value is not None
        return self._value


@dataclass(frozen=True, slots=True)
class WriteResult:
    """How a write without a connection (the HTTP join) turned out."""

    outcome: Outcome | None
    error: SyncError | None = None


@dataclass(frozen=True, slots=True)
class ShootView:
    shoot: Shoot
    leaderboard: Leaderboard
    registers: dict[str, Register]


@dataclass(frozen=True, slots=True)
class Subscribe:
    subscriber: Subscriber
    state_vector: bytes
    done: Reply[bool] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    subscriber: Subscriber


@dataclass(frozen=True, slots=True)
class Submit:
    """A write. Answers go to ``subscriber`` (a connection) or ``reply`` (HTTP)."""

    register: Register
    request_id: int = 0
    subscriber: Subscriber | None = None
    reply: Reply[WriteResult] | None = None
    received: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True, slots=True)
class Read:
    reply: Reply[ShootView] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class AddArcher:
    """A new archer joined (their record is already in Redis)."""

    archer_id: str
    record: ArcherRecord


@dataclass(frozen=True, slots=True)
class CheckAccess:
    """May this session write as ``archer_id``? Answered from memory, so the archers of a
    loaded shoot can reconnect while Redis is away."""

    archer_id: str | None
    """``None`` for a viewer, who only needs the shoot to be live."""
    token: str | None
    reply: Reply[Access] = field(default_factory=Reply)


Access = Literal["granted", "denied", "expired"]

Message = Subscribe | Unsubscribe | Submit | Read | AddArcher | CheckAccess


@dataclass(slots=True)
class _Held:
    """An answer waiting until the update numbered ``needs`` is durable."""

    needs: int
    subscriber: Subscriber | None
    frame: bytes | None
    reply: Reply[WriteResult] | None = None
    result: WriteResult | None = None


class ShootActor:
    """The owner of one live shoot.

    Args:
        stored: The shoot as loaded from Redis.
        store: Where updates go.
        inbox: The receiving end of the actor's inbox; the actor closes it when it stops.
        client_id: The Yjs client id for this incarnation (fresh for every start).
        on_close: Called the moment the inbox closes, with no checkpoint in between.
        now_ms: The wall clock, replaceable in tests.
    """

    def __init__(
        self,
        stored: StoredShoot,
        store: RedisStore,
        inbox: trio.MemoryReceiveChannel[Message],
        settings: Settings,
        metrics: Metrics,
        *,
        client_id: int,
        on_close: Callable[[], None] = lambda: None,
        now_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.shoot = stored.shoot
        self._store = store
        self._inbox = inbox
        self._settings = settings
        self._metrics = metrics
        self._now_ms = now_ms
        self._on_close = on_close
        updates = [stored.snapshot] if stored.snapshot else []
        updates += [update for _, update in stored.log]
        self.doc = ShootDocument.load(updates, client_id=client_id, derive=derived_values)
        self._log_length = len(stored.log)
        self._archers = dict(stored.archers)
        self.subscribers: set[Subscriber] = set()
        self._board = build_leaderboard(self.doc.registers().values())
        stored_memory = NotifierState.from_doc(self.doc.notices_memory())
        self._notifier = assume_announced(stored_memory, self._board)
        # Notices waiting for the update that remembers them to be durable.
        self._held_notices: deque[tuple[int, bytes]] = deque()
        # Durability bookkeeping: updates are numbered as applied; `_durable` is the
        # highest number Redis has; `_register_seq` the number that set each register.
        self._applied = 0
        self._durable = 0
        self._unpersisted: list[bytes] = []
        self._register_seq: dict[str, int] = {}
        self._held: list[_Held] = []
        self._persist_wanted = trio.Event()
        self._persist_progress = trio.Event()
        self._final_written_ms: int | None = None
        self.degraded = False
        if self.doc.meta is None:
            self._record(self.doc.set_meta(self.shoot))

    # -- running -------------------------------------------------------------------------

    async def run(self) -> None:
        """Handle messages until idle, expired or cancelled; flush to Redis on the way out."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._persist_loop)
            try:
                await self._serve()
            finally:
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(self._settings.shutdown_grace_s):
                        await self._flushed()
                        await self._write_final()
                    for subscriber in self.subscribers:
                        subscriber.close(CLOSE_GOING_AWAY, "shoot unloaded")
                    self._inbox.close()
                    self._on_close()
                nursery.cancel_scope.cancel()

    async def _serve(self) -> None:
        while True:
            remaining_s = (self.shoot.expires_ms - self._now_ms()) / 1000
            if remaining_s <= 0:
                self._expire()
                return
            with trio.move_on_after(min(self._settings.idle_timeout_s, remaining_s)):
                message = await self._inbox.receive()
                self._handle(message)
                continue
            self.subscribers = {s for s in self.subscribers if not s.closed}
            if self.subscribers or self._now_ms() >= self.shoot.expires_ms:
                continue
            await self._flushed()
            # Nothing can slip in between this check and closing the inbox: no checkpoint.
            if self._inbox.statistics().current_buffer_used == 0:
                return

    def _expire(self) -> None:
        for subscriber in self.subscribers:
            subscriber.answer(encode(Error("expired", "This shoot has ended.", fatal=True)))
            subscriber.finish(CLOSE_EXPIRED, "shoot expired")
        self.subscribers.clear()

    async def _flushed(self) -> None:
        """Wait until Redis has every update (each persister attempt wakes us to check)."""
        while self._unpersisted:
            self._persist_wanted.set()
            await self._persist_progress.wait()

    # -- messages ------------------------------------------------------------------------

    def _handle(self, message: Message) -> None:
        match message:
            case Submit():
                self._submit(message)
            case Subscribe(subscriber, state_vector, done):
                self._subscribe(subscriber, state_vector)
                done.set(True)
            case Unsubscribe(subscriber):
                self.subscribers.discard(subscriber)
            case Read(reply):
                reply.set(ShootView(self.shoot, self._board, self.doc.registers()))
            case AddArcher(archer_id, record):
                self._archers[archer_id] = record
            case CheckAccess(archer_id, token, reply):
                reply.set(self._access(archer_id, token))

    def _access(self, archer_id: str | None, token: str | None) -> Access:
        if self._now_ms() >= self.shoot.expires_ms:
            return "expired"
        if archer_id is None:
            return "granted"
        record = self._archers.get(archer_id)
        if record is None or not token_matches(token, record.token_sha256):
            return "denied"
        return "granted"

    def _subscribe(self, subscriber: Subscriber, state_vector: bytes) -> None:
        reset = not self.doc.knows(state_vector)
        update = self.doc.diff() if reset else self.doc.diff(state_vector)
        welcome = Welcome(
            shoot=self.shoot,
            reset=reset,
            update=update,
            server_ms=self._now_ms(),
            role="archer" if subscriber.archer_id else "viewer",
            archer=subscriber.archer_id,
        )
        # The catch-up goes first; only then does the subscriber join the fan-out, so it
        # never receives an update it cannot apply.
        if subscriber.answer(encode(welcome)):
            self.subscribers.add(subscriber)

    def _submit(self, submit: Submit) -> None:
        register = submit.register
        try:
            validate_state(register.state)
            check_skew(register.stamp, self._now_ms())
        except SyncError as exc:
            self._metrics.writes_rejected += 1
            self._refuse(submit, exc)
            return
        outcome, update = self.doc.write(register)
        if isinstance(outcome, Applied):
            self._metrics.writes_applied += 1
            self._record(update)
            self._register_seq[register.archer_id] = self._applied
            self._fan_out(encode(Update(update)))
            self._metrics.fanout_latency.observe(time.perf_counter() - submit.received)
            needs = self._applied
        else:
            if not isinstance(outcome, Duplicate):
                self._metrics.writes_superseded += 1
            needs = self._register_seq.get(register.archer_id, 0)
        self._hold(submit, outcome, needs)
        if isinstance(outcome, Applied):
            self._announce()

    def _refuse(self, submit: Submit, exc: SyncError) -> None:
        if submit.reply is not None:
            submit.reply.set(WriteResult(None, exc))
        if submit.subscriber is not None:
            server_ms = getattr(exc, "server_ms", None)
            error = Error(exc.code, exc.message, id=submit.request_id, server_ms=server_ms)
            self._metrics.errors += 1
            submit.subscriber.answer(encode(error))

    def _hold(self, submit: Submit, outcome: Outcome, needs: int) -> None:
        frame = None
        if submit.subscriber is not None:
            if isinstance(outcome, Applied | Duplicate):
                register = submit.register
                frame = encode(Ack(submit.request_id, register.archer_id, register.stamp))
            else:
                frame = encode(Superseded(submit.request_id, outcome.winner))
        held = _Held(needs, submit.subscriber, frame, submit.reply, WriteResult(outcome))
        if needs <= self._durable:
            self._release(held)
        else:
            self._held.append(held)

    def _release(self, held: _Held) -> None:
        if held.subscriber is not None and held.frame is not None:
            held.subscriber.answer(held.frame)
        if held.reply is not None and held.result is not None:
            held.reply.set(held.result)

    def _fan_out(self, frame: bytes) -> None:
        resync_frame: list[bytes] = []

        def resync() -> bytes:
            self._metrics.resyncs += 1
            if not resync_frame:
                resync_frame.append(encode(Update(self.doc.diff())))
            return resync_frame[0]

        closed = [s for s in self.subscribers if not s.offer(frame, resync)]
        self.subscribers.difference_update(closed)
        self._metrics.frames_fanned_out += len(self.subscribers)

    def _announce(self) -> None:
        """Decide the notices the write just applied calls for, and remember them.

        This runs after the write's update is fanned out: rebuilding the board costs
        milliseconds in a big shoot, and no subscriber should wait for it. The memory is
        a document update of its own, persisted right after the write's (updates reach
        Redis in order), and the notices wait until it is durable, as answers do. So a
        notice is never out while Redis lacks the memory of it: a crash before that
        loses the memory and the unsent notice together, and the next write in the round
        (or the resent one) announces it, once. Replicas get the update too, to stay in
        step with the writer's clock.
        """
        before, self._board = self._board, build_leaderboard(self.doc.registers().values())
        notifier, notices = next_notices(self._notifier, before, self._board)
        memory = self.doc.remember_notices(notifier.doc_changes(self._notifier))
        self._notifier = notifier
        if memory:
            self._record(memory)
            self._fan_out(encode(Update(memory)))
        for notice in notices:
            frame = encode(
                Notice(
                    kind=notice.kind,
                    round=notice.round,
                    archer=notice.archer_id,
                    text=notice.text,
                    position=notice.position,
                    of=notice.of,
                    change=notice.change,
                    ends=notice.ends,
                )
            )
            self._held_notices.append((self._applied, frame))

    # -- persistence ---------------------------------------------------------------------

    def _record(self, update: bytes) -> None:
        self._applied += 1
        self._unpersisted.append(update)
        self._persist_wanted.set()

    async def _persist_loop(self) -> None:
        delay = RETRY_MIN_S
        while True:
            await self._persist_wanted.wait()
            self._persist_wanted = trio.Event()
            while self._unpersisted:
                batch = self._unpersisted[:MAX_BATCH]
                started = time.perf_counter()
                final = self._final_due()
                try:
                    last_id, self._log_length = await self._store.call(
                        self._store.append, self.shoot, batch, final
                    )
                except StoreUnavailable as exc:
                    self._signal_progress()
                    self._metrics.redis_failures += 1
                    if not self.degraded:
                        log.warning("shoot %s: Redis unavailable: %s", self.shoot.shoot_id, exc)
                        self.degraded = True
                        self._metrics.redis_degraded_shoots += 1
                    await trio.sleep(delay)  # backoff between retries, not synchronisation
                    delay = min(delay * 2, RETRY_MAX_S)
                    continue
                self._metrics.redis_latency.observe(time.perf_counter() - started)
                if self.degraded:
                    log.info("shoot %s: Redis is back; caught up", self.shoot.shoot_id)
                    self.degraded = False
                    self._metrics.redis_degraded_shoots -= 1
                delay = RETRY_MIN_S
                del self._unpersisted[: len(batch)]
                if final is not None:
                    self._final_written_ms = self._now_ms()
                self._durable += len(batch)
                self._release_durable()
                self._signal_progress()
                if self._log_length >= self._settings.compact_every:
                    await self._compact(last_id)

    def _final_due(self) -> bytes | None:
        """The whole document when the tombstone is due for a refresh, else ``None``."""
        last = self._final_written_ms
        if last is not None and self._now_ms() - last < FINAL_EVERY_MS:
            return None
        if not self.doc.registers():
            return None
        return self.doc.diff()

    async def _write_final(self) -> None:
        """Leave the final results behind (on unload and at the shoot's end)."""
        if not self.doc.registers():
            return  # nobody joined: nothing to show, and no code held by a tombstone
        try:
            await self._store.call(self._store.write_final, self.shoot, self.doc.diff())
        except StoreUnavailable:
            self._metrics.redis_failures += 1  # the last periodic tombstone stays

    def _signal_progress(self) -> None:
        self._persist_progress.set()
        self._persist_progress = trio.Event()

    def _release_durable(self) -> None:
        ready = [held for held in self._held if held.needs <= self._durable]
        self._held = [held for held in self._held if held.needs > self._durable]
        for held in ready:
            self._release(held)
        while self._held_notices and self._held_notices[0][0] <= self._durable:
            self._fan_out(self._held_notices.popleft()[1])

    async def _compact(self, through_id: str) -> None:
        snapshot = self.doc.diff()
        try:
            await self._store.call(self._store.compact, self.shoot, snapshot, through_id)
            self._log_length = 0
        except StoreUnavailable:
            self._metrics.redis_failures += 1  # the log stays; compaction is retried later
