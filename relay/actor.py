"""One shoot's actor: the single task that owns the shoot's document.

Theory of operation
-------------------
Everything that reads or changes a live shoot is a message in the actor's inbox (a
bounded Trio channel, so a flood of writes waits at the door instead of growing memory).
The actor handles messages one at a time, which is what makes it the document's single
writer: the last-writer-wins decision and the Yjs write happen with nothing in between.

The protocol decisions are not made here: :class:`sync.relay_state.ShootState` decides
each write (refuse, or apply with the register merge), numbers the updates, says when an
answer may go out and what it says (:func:`~sync.relay_state.write_answer`,
:func:`~sync.relay_state.write_refusal`), and picks a subscriber's catch-up; who may open a
session is :mod:`sync.access`'s rule; this module drives them. A write
goes: the state machine decides and writes -> encode the Yjs update **once** and offer the same bytes
to every subscriber -> hand it to the persister (:mod:`relay.durability`), which holds the
write's answer until Redis has it -> update the leaderboard for the one register that
changed and decide the notices from the rounds that moved (:mod:`relay.standings`, after
the fan-out, so they never delay it). Handicaps and classifications come from tables
only: what they lack is filled on a worker thread (:mod:`relay.projector`) and applied
when it is back (:meth:`ShootActor.projected`), so no write waits for archeryutils. What the notifier remembers
(:mod:`sync.notifications`) is written to the document as the next update, so a
restarted or reloaded actor never announces a lead twice; the notices go out only once
that update is durable (see :meth:`ShootActor._announce`).

Error handling: every message is answered exactly once, whatever happens.

- A message whose input breaks a rule (an invalid write, a join over the limit) raises :class:`~sync.errors.SyncError` before anything changes; its
  sender gets that refusal and the actor goes on. The other sessions never notice.
- Anything else escaping a message is a bug: the message's waiter is told the shoot is
  unavailable, and the actor stops (flushing first) and raises to the registry, which
  logs it; the next request starts the shoot again from Redis.
- However the actor stops, the messages still buffered in its inbox and the HTTP
  waiters whose answers never became durable are answered with
  :class:`~relay.messages.ShootUnavailable`, in the same step that closes the inbox, so
  no waiter is left hanging on an actor that is gone.

Lifetime: the registry starts the actor on first use, loading snapshot and log from Redis.
It stops when nobody is subscribed, no message came for ``idle_timeout_s`` and Redis has
every update (until then it stays loaded and keeps answering), when the shoot expires, or
when the registry closes its inbox (the relay is shutting down): then it handles what is
buffered, flushes and returns.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import trio

from sync.access import access_without_record, archer_access
from sync.classification import peek_derived
from sync.codec import encode
from sync.document import ShootDocument
from sync.errors import LimitExceeded, SyncError
from sync.leaderboard import Leaderboard
from sync.limits import MAX_WRITE_UPDATE_BYTES, SizeBudget
from sync.models import Shoot
from sync.notifications import Notice as Notification
from sync.protocol import (
    CLOSE_GOING_AWAY,
    Update,
)
from sync.register import Applied, Duplicate, Outcome, Register
from sync.relay_state import ShootState, write_answer, write_refusal
from sync.wall import system_wall_ms

from .config import Settings
from .durability import Durability, Held
from .fanout import HeldUpdates, expire, fan_out, welcome
from .lease import client_id_for
from .messages import (
    Access,
    AddArcher,
    CheckAccess,
    ForgetArcher,
    Message,
    Read,
    Reply,
    ShootUnavailable,
    ShootView,
    Submit,
    Subscribe,
    Unsubscribe,
    WriteResult,
    abandon,
)
from .metrics import Metrics
from .standings import Standings
from .store import ArcherRecord, Owner, RedisStore, StoredShoot
from .subscriber import Subscriber

__all__ = [
    "INBOX_SIZE",
    "AddArcher",
    "CheckAccess",
    "ForgetArcher",
    "Message",
    "Read",
    "Reply",
    "ShootActor",
    "ShootUnavailable",
    "ShootView",
    "Submit",
    "Subscribe",
    "Unsubscribe",
    "WriteResult",
    "wall_ms",
]

INBOX_SIZE = 256
#: Queued writes handled before their updates go out as one frame (see
#: ShootActor._handle_queued): bounds how long the run's first write waits for its fan-out.
MAX_QUEUED_RUN = 16

#: Where notices go besides the sessions: ``(shoot, notice, leaderboard now)``.
NoticeSink = Callable[[Shoot, Notification, Leaderboard], None]


#: The relay's wall clock (:mod:`sync.wall`), under the name the relay's modules import.
wall_ms = system_wall_ms


class ShootActor:
    """The owner of one live shoot.

    Constructing it loads the document (pure, but it runs on data from Redis: the
    registry builds it inside its supervision boundary).

    Args:
        stored: The shoot as loaded from Redis.
        store: Where updates go.
        inbox: The receiving end of the actor's inbox; the actor closes it when it stops.
        owner: The shoot's lease, taken before loading: every write is fenced by it, and
            the document's Yjs client id derives from its epoch (new for every owner).
        on_close: Called the moment the inbox closes, with no checkpoint in between.
        on_notice: Given each notice as it goes out to the sessions, with the board then
            (Web Push, :mod:`relay.push.sender`); it must not block.
        on_notice_frame: Called with each notice frame as it goes out (the registry passes
            them on to the shoot's followers, see :mod:`relay.notices`).
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
        owner: Owner,
        on_close: Callable[[], None] = lambda: None,
        on_notice: NoticeSink | None = None,
        on_notice_frame: Callable[[bytes], None] = lambda frame: None,
        now_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.shoot = stored.shoot
        self._inbox = inbox
        self._settings = settings
        self._metrics = metrics
        self._now_ms = now_ms
        self._on_close = on_close
        self._on_notice = on_notice
        self._on_notice_frame = on_notice_frame
        updates = [stored.snapshot] if stored.snapshot else []
        updates += [update for _, update in stored.log]
        client_id = client_id_for(owner.epoch)
        self.doc = ShootDocument.load(updates, client_id=client_id, derive=peek_derived)
        self._archers = dict(stored.archers)
        self.subscribers: set[Subscriber] = set()
        self._standings = Standings(self.doc, self.projected)
        self.projector = self._standings.projector
        """Fills the projection tables off the event loop; runs beside the actor."""
        self._stopped = False
        # Notices waiting for the update that remembers them to be durable.
        self._held_notices: deque[tuple[int, bytes, Notification]] = deque()
        self._state: ShootState[Held] = ShootState(self.doc)
        self._durability = Durability(
            self.shoot,
            store,
            settings,
            metrics,
            state=self._state,
            snapshot=self.doc.diff,
            log_length=len(stored.log),
            on_durable=self._release_notices,
            owner=owner,
            on_deposed=self.depose,
        )
        self._serving = trio.CancelScope()
        self.deposed = False
        self._adopted: tuple[set[Subscriber], bytes, list[Message]] | None = None
        self._size = SizeBudget(settings.max_document_bytes, self._measure())
        self._updates = HeldUpdates(
            self._fan_out,
            lambda received: metrics.fanout_latency.observe(time.perf_counter() - received),
        )
        if self.doc.meta is None:
            self._record(self.doc.set_meta(self.shoot))

    @property
    def unpersisted(self) -> int:
        """Updates applied in memory that Redis does not have yet (0 once flushed)."""
        return self._durability.applied - self._durability.durable

    @property
    def degraded(self) -> bool:
        """Whether updates are waiting for Redis, which is away."""
        return self._durability.degraded

    def depose(self) -> None:
        """Another instance has taken the shoot over: stop serving at once. The sessions
        are closed (going away) and reconnect to whoever owns it now; what Redis refused
        was never acknowledged, so their devices resend it there."""
        self.deposed = True
        self._serving.cancel()

    def adopt(
        self, subscribers: set[Subscriber], state_vector: bytes, pending: list[Message]
    ) -> None:
        """Take over a follower's sessions (:mod:`relay.follower`), whose replicas hold
        ``state_vector`` (durable only: never more than this actor loaded), and its
        unanswered requests; done as the actor starts."""
        self._adopted = (subscribers, state_vector, pending)

    def _take_over(self) -> None:
        if self._adopted is None:
            return
        subscribers, state_vector, pending = self._adopted
        self._adopted = None
        catchup = self._state.welcome(state_vector)
        frame = encode(Update(catchup.update))
        for subscriber in subscribers:
            if catchup.reset:  # cannot happen (see adopt); reconnecting is always safe
                subscriber.close(CLOSE_GOING_AWAY, "shoot unloaded")
            elif subscriber.offer(frame, lambda: frame):
                self.subscribers.add(subscriber)
        for message in pending:
            self._handle(message)

    # -- running -------------------------------------------------------------------------

    async def run(self) -> None:
        """Handle messages until idle, expired, closed or cancelled; flush to Redis on the
        way out, then answer whatever is left (see the module docstring).

        Cancellation: the persister runs shielded until the actor's final flush is over,
        so a cancelled actor still gets ``shutdown_grace_s`` to put its updates in Redis.
        """
        persister = trio.CancelScope(shield=True)

        async def persist() -> None:
            with persister:
                await self._durability.run()

        projecting = trio.CancelScope()

        async def project() -> None:
            with projecting:
                await self.projector.run()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(persist)
            nursery.start_soon(project)
            try:
                with self._serving:
                    await self._serve()
            finally:
                projecting.cancel()
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(self._settings.shutdown_grace_s):
                        await self._durability.flushed()
                    self._stop()
                persister.cancel()

    async def _serve(self) -> None:
        """Handle messages; unload when idle, expire at the shoot's end.

        One deadline serves a whole idle period, not one per message: a busy shoot
        handles each message with no cancel scope of its own (entering and leaving one,
        with its deadline, per write was a measurable part of a write's CPU). When the
        deadline passes, the time since the last message decides whether the shoot was
        idle or the period simply starts again from that message.
        """
        self._take_over()
        idle_s = self._settings.idle_timeout_s
        last = trio.current_time()  # the last message, or the start of this idle period
        while True:
            remaining_s = (self.shoot.expires_ms - self._now_ms()) / 1000
            if remaining_s <= 0:
                self._expire()
                return
            with trio.move_on_at(min(last + idle_s, trio.current_time() + remaining_s)):
                while True:
                    try:
                        message = await self._inbox.receive()
                    except trio.EndOfChannel:
                        return  # the registry closed the inbox: the relay is shutting down
                    self._handle_queued(message)
                    last = trio.current_time()
                    if self._now_ms() >= self.shoot.expires_ms:
                        break  # the shoot's day has ended: expired above
            now = trio.current_time()
            if now - last < idle_s:
                continue  # not idle: a message came (or the shoot's end is checked above)
            last = now
            self.subscribers = {s for s in self.subscribers if not s.closed}
            if self.subscribers or self._now_ms() >= self.shoot.expires_ms:
                continue
            if self._durability.pending:
                # Unload only once Redis has everything; meanwhile keep serving.
                self._metrics.unloads_deferred += 1
                continue
            # Nothing can slip in between this check and closing the inbox: no checkpoint.
            if self._inbox.statistics().current_buffer_used == 0:
                return

    def _stop(self) -> None:
        """Close the subscribers, answer every waiter left and close the inbox, all with no
        checkpoint in between, so nothing can arrive that is never answered."""
        self._stopped = True
        reason = "shoot moved to another relay" if self.deposed else "shoot unloaded"
        for subscriber in self.subscribers:
            subscriber.close(CLOSE_GOING_AWAY, reason)
        gone = ShootUnavailable(f"shoot {self.shoot.code} stopped before answering")
        self._durability.close(gone)
        while True:
            try:
                message = self._inbox.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            self._abandon(message, gone)
        self._inbox.close()
        self._on_close()

    def _expire(self) -> None:
        expire(self.subscribers)

    # -- messages ------------------------------------------------------------------------

    def _handle_queued(self, first: Message) -> None:
        """Handle ``first`` and the writes already queued behind it as one run, whose
        updates go out as one (:class:`~relay.fanout.HeldUpdates`). Each write is still
        decided, persisted and answered on its own; answers wait for Redis, so they follow
        the update that carries their write. Anything but a write ends the run, after the
        updates before it are sent (a welcome or a reply sees them out)."""
        self._updates.hold()
        message = first
        try:
            self._handle(message)
            for _ in range(MAX_QUEUED_RUN - 1):
                if not isinstance(message, Submit):
                    break
                try:
                    message = self._inbox.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break  # an end of channel is seen again by the next receive
                if not isinstance(message, Submit):
                    self._updates.flush()
                self._handle(message)
        finally:
            self._updates.release()

    def _handle(self, message: Message) -> None:
        applied = self._durability.applied
        try:
            self._dispatch(message)
        except SyncError as exc:
            # A refusal is only safe to answer if the message changed nothing.
            if self._durability.applied != applied or not self._refuse(message, exc):
                self._abandon(message, ShootUnavailable("the shoot failed; try again"))
                raise
        except Exception:
            self._abandon(message, ShootUnavailable("the shoot failed; try again"))
            raise

    def _dispatch(self, message: Message) -> None:
        match message:
            case Submit():
                self._submit(message)
            case Subscribe(subscriber, state_vector, done):
                self._subscribe(subscriber, state_vector)
                done.set(None)
            case Unsubscribe(subscriber):
                self.subscribers.discard(subscriber)
            case Read(reply):
                reply.set(ShootView(self.shoot, self._board, self.doc.registers()))
            case AddArcher(archer_id, record, reply):
                self._admit(archer_id, record)
                reply.set(None)
            case ForgetArcher(archer_id):
                self._archers.pop(archer_id, None)
            case CheckAccess(archer_id, token, reply):
                reply.set(self._access(archer_id, token))

    def _refuse(self, message: Message, exc: SyncError) -> bool:
        """Answer a message's sender with the rule its input broke; ``False`` for messages
        that carry no client input (a :class:`SyncError` from them is a bug)."""
        match message:
            case Submit():
                self._refuse_write(message, exc)
            case AddArcher(reply=reply):
                reply.fail(exc)
            case _:
                return False
        return True

    @staticmethod
    def _abandon(message: Message, error: Exception) -> None:
        """Answer a message the actor will not handle (connections need no answer: the
        actor closes them, and their devices resend)."""
        abandon(message, error)

    def _access(self, archer_id: str | None, token: str | None) -> Access:
        """The access rule (:mod:`sync.access`) with the records this owner holds."""
        settled = access_without_record(self._now_ms(), self.shoot.expires_ms, archer_id)
        if settled is not None:
            return settled
        assert archer_id is not None  # a viewer is settled without a record
        record = self._archers.get(archer_id)
        return archer_access(token, None if record is None else record.token_sha256)

    def _admit(self, archer_id: str, record: ArcherRecord) -> None:
        if archer_id not in self._archers:
            limit = self._settings.max_archers
            if len(self._archers) >= limit:
                raise LimitExceeded(
                    "shoot_full", f"This shoot is full: it has its maximum of {limit} archers."
                )
            if not self._size.has_room(MAX_WRITE_UPDATE_BYTES, self._measure):
                raise LimitExceeded(
                    "shoot_full", "This shoot has reached its size limit; no one else can join."
                )
        self._archers[archer_id] = record

    def _subscribe(self, subscriber: Subscriber, state_vector: bytes) -> None:
        # The codec read the hello's state vector (sync.codec), so it cannot be malformed
        # here; if it were, the SyncError would be handled as the bug it is.
        catchup = self._state.welcome(state_vector)
        welcome(self.subscribers, subscriber, self.shoot, catchup, self._now_ms())

    def _submit(self, submit: Submit) -> None:
        written = self._state.write(
            submit.register,
            self._now_ms(),
            lambda: self._size.has_room(MAX_WRITE_UPDATE_BYTES, self._measure),
        )
        outcome = written.outcome
        if written.update is not None:
            self._metrics.writes_applied += 1
            self._size.grew(len(written.update))
            self._durability.persist(written.update)
            self._updates.offer(written.update, submit.received)
        elif not isinstance(outcome, Duplicate):
            self._metrics.writes_superseded += 1
        self._hold(submit, outcome, written.needs)
        if isinstance(outcome, Applied):
            self._announce(submit.register)

    def _refuse_write(self, submit: Submit, exc: SyncError) -> None:
        self._metrics.writes_rejected += 1
        if submit.reply is not None:
            submit.reply.set(WriteResult(None, exc))
        if submit.subscriber is not None:
            self._metrics.errors += 1
            submit.subscriber.answer(encode(write_refusal(submit.request_id, exc)))

    def _hold(self, submit: Submit, outcome: Outcome, needs: int) -> None:
        frame = None
        if submit.subscriber is not None:
            frame = encode(write_answer(submit.request_id, submit.register, outcome))
        held = Held(needs, submit.subscriber, frame, submit.reply, WriteResult(outcome))
        self._durability.hold(held)

    def _fan_out(self, frame: bytes) -> None:
        fan_out(self.subscribers, frame, self.doc.diff, self._metrics)

    @property
    def _board(self) -> Leaderboard:
        return self._standings.board

    @property
    def projecting(self) -> bool:
        """Whether projections are being filled (the board may lack some until then)."""
        return self.projector.pending

    def projected(self) -> None:
        """The projector filled what was asked (called between messages, never after the
        actor stopped): the derived values that were waiting go out as an update."""
        if self._stopped:
            return
        update = self._standings.filled()
        if update:
            self._record(update)
            self._updates.offer(update)

    def _announce(self, register: Register) -> None:
        """Update the board for the register the write just set, decide the notices that
        calls for, and remember them (:meth:`relay.standings.Standings.wrote`).

        This runs after the write's update is fanned out, so no subscriber waits for it.
        The memory is a document update of its own, persisted right after the write's
        (updates reach Redis in order), and the notices wait until it is durable, as
        answers do. So a notice is never out while Redis lacks the memory of it: a crash
        before that loses the memory and the unsent notice together, and the next write in
        the round (or the resent one) announces it, once. Replicas get the update too, to
        stay in step with the writer's clock.
        """
        memory, notices = self._standings.wrote(register)
        if memory:
            self._record(memory)
            self._updates.offer(memory)
        applied = self._durability.applied
        self._held_notices.extend((applied, frame, notice) for frame, notice in notices)

    def _release_notices(self, durable: int) -> None:
        """Fan out the notices whose memory Redis now has (called by the persister), and
        hand each to ``on_notice`` (Web Push), which only queues it."""
        while self._held_notices and self._held_notices[0][0] <= durable:
            _, frame, notice = self._held_notices.popleft()
            self._fan_out(frame)
            self._on_notice_frame(frame)
            if self._on_notice is not None:
                self._on_notice(self.shoot, notice, self._board)

    # -- size and persistence ------------------------------------------------------------

    def _measure(self) -> int:
        return len(self.doc.diff())

    def _record(self, update: bytes) -> int:
        """Count an applied update against the size budget and queue it for Redis."""
        self._size.grew(len(update))
        return self._durability.record(update)
