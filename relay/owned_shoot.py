"""A live shoot as its owner holds it: the document, its archers and subscribers, and what
each message does to them.

:class:`OwnedShoot` is the part of :class:`relay.actor.ShootActor` (a subclass of it) that
handles one message, with no task, inbox or checkpoint of its own: the actor calls
:meth:`OwnedShoot._dispatch` between receives, which is what keeps it the document's single
writer, and answers for what escapes it (see :mod:`relay.actor`).

The protocol decisions are not made here: :class:`sync.relay_state.ShootState` decides
each write (refuse, or apply with the register merge), numbers the updates, says when an
answer may go out and what it says (:func:`~sync.relay_state.write_answer`,
:func:`~sync.relay_state.write_refusal`), and picks a subscriber's catch-up; who may open a
session is :mod:`sync.access`'s rule; this module drives them. A write goes: the state
machine decides and writes -> encode the Yjs update **once** and offer the same bytes to
every subscriber -> hand it to the persister (:mod:`relay.durability`), which holds the
write's answer until Redis has it -> update the leaderboard for the one register that
changed and decide the notices from the rounds that moved (:mod:`relay.standings`, after
the fan-out, so they never delay it). Handicaps and classifications come from tables
only: what they lack is filled on a worker thread (:mod:`relay.projector`) and applied
when it is back (:meth:`OwnedShoot.projected`), so no write waits for archeryutils. What
the notifier remembers (:mod:`sync.notifications`) is written to the document as the next
update, so a restarted or reloaded actor never announces a lead twice; the notices go out
only once that update is durable (see :meth:`OwnedShoot._announce`).

A message whose input breaks a rule (an invalid write, a join over the limit) raises
:class:`~sync.errors.SyncError` before anything changes, and :meth:`OwnedShoot._refuse`
tells its sender which rule; the actor relies on that to go on.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from sync.access import access_without_record, archer_access
from sync.classification import peek_derived
from sync.codec import encode
from sync.document import ShootDocument
from sync.errors import LimitExceeded, SyncError
from sync.leaderboard import Leaderboard
from sync.limits import MAX_WRITE_UPDATE_BYTES, SizeBudget
from sync.models import Shoot
from sync.notifications import Notice as Notification
from sync.register import Applied, Duplicate, Outcome, Register
from sync.relay_state import ShootState, write_answer, write_refusal
from sync.wall import system_wall_ms

from .callbacks import weakly
from .config import Settings
from .durability import Durability, Held
from .fanout import HeldUpdates, fan_out, welcome
from .lease import client_id_for
from .messages import (
    Access,
    AddArcher,
    CheckAccess,
    ForgetArcher,
    Message,
    Read,
    ShootView,
    Submit,
    Subscribe,
    Unsubscribe,
    WriteResult,
)
from .metrics import Metrics
from .standings import Standings
from .store import ArcherRecord, Owner, RedisStore, StoredShoot
from .subscriber import Subscriber

__all__ = ["NoticeSink", "OwnedShoot"]

#: Where notices go besides the sessions: ``(shoot, notice, leaderboard now)``.
NoticeSink = Callable[[Shoot, Notification, Leaderboard], None]


class OwnedShoot:
    """One live shoot's document, archers and subscribers, and the handling of one message.

    Constructing it loads the document (pure, but it runs on data from Redis: the
    registry builds it inside its supervision boundary).

    Args:
        stored: The shoot as loaded from Redis.
        store: Where updates go.
        owner: The shoot's lease, taken before loading: every write is fenced by it, and
            the document's Yjs client id derives from its epoch (new for every owner).
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
        settings: Settings,
        metrics: Metrics,
        *,
        owner: Owner,
        on_notice: NoticeSink | None = None,
        on_notice_frame: Callable[[bytes], None] = lambda frame: None,
        now_ms: Callable[[], int] = system_wall_ms,
    ) -> None:
        self.shoot = stored.shoot
        self._settings = settings
        self._metrics = metrics
        self._now_ms = now_ms
        self._on_notice = on_notice
        self._on_notice_frame = on_notice_frame
        client_id = client_id_for(owner.epoch)
        self.doc = ShootDocument.load(stored.updates, client_id=client_id, derive=peek_derived)
        self._archers = dict(stored.archers)
        self.subscribers: set[Subscriber] = set()
        # The parts call the shoot back through weak references (see relay.callbacks).
        self._standings = Standings(self.doc, weakly(self.projected))
        self.projector = self._standings.projector
        """Fills the projection tables off the event loop; runs beside the actor."""
        self._stopped = False
        """Set once the actor has stopped: projections filled after that are dropped."""
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
            on_durable=weakly(self._release_notices),
            owner=owner,
            on_deposed=weakly(self.depose),
        )
        self._size = SizeBudget(settings.max_document_bytes, self._measure())
        self._updates = HeldUpdates(
            weakly(self._fan_out),
            lambda received: metrics.fanout_latency.observe(time.perf_counter() - received),
        )
        if self.doc.meta is None:
            self._record(self.doc.set_meta(self.shoot))

    def depose(self) -> None:
        """Redis refused a write because another instance took the shoot over: the actor
        (:class:`relay.actor.ShootActor`) stops."""
        raise NotImplementedError

    @property
    def unpersisted(self) -> int:
        """Updates applied in memory that Redis does not have yet (0 once flushed)."""
        return self._durability.applied - self._durability.durable

    @property
    def degraded(self) -> bool:
        """Whether updates are waiting for Redis, which is away."""
        return self._durability.degraded

    # -- messages ------------------------------------------------------------------------

    def _dispatch(self, message: Message) -> None:
        """Do what one message asks and answer it (a refusal is :meth:`_refuse`'s)."""
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
            if not self._more_queued():
                # The end of the run: its update goes out now, not after the board and
                # the notices are worked out, which no subscriber needs to wait for.
                self._updates.flush()
            self._announce(submit.register)

    def _more_queued(self) -> bool:
        """Whether messages wait behind the one being handled (the actor's inbox): a
        write with more behind it leaves its update to go out with theirs."""
        return False

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

    # -- fan-out, standings and notices --------------------------------------------------

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
