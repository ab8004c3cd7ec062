"""One shoot's actor: the single task that owns the shoot's document.

Theory of operation
-------------------
Everything that reads or changes a live shoot is a message in the actor's inbox (a
bounded Trio channel, so a flood of writes waits at the door instead of growing memory).
The actor handles messages one at a time, which is what makes it the document's single
writer: the last-writer-wins decision and the Yjs write happen with nothing in between.

What a message does to the shoot (a write's way to Redis, the subscribers and the notices;
a join; a read) is :class:`relay.owned_shoot.OwnedShoot`'s, which the actor is; this module
is the task around it: the inbox, the runs of writes queued behind one another (handled
together, their updates sent as one: :meth:`ShootActor._handle_queued`), the answer every
message gets, and the actor's lifetime.

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

from collections.abc import Callable

import trio

from sync.codec import encode
from sync.errors import SyncError
from sync.protocol import (
    CLOSE_GOING_AWAY,
    Update,
)
from sync.wall import system_wall_ms

from .callbacks import nothing
from .config import Settings
from .fanout import expire
from .messages import (
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
from .owned_shoot import NoticeSink, OwnedShoot
from .store import Owner, RedisStore, StoredShoot
from .subscriber import Subscriber

__all__ = [
    "INBOX_SIZE",
    "AddArcher",
    "CheckAccess",
    "ForgetArcher",
    "Message",
    "NoticeSink",
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


#: The relay's wall clock (:mod:`sync.wall`), under the name the relay's modules import.
wall_ms = system_wall_ms


class ShootActor(OwnedShoot):
    """The owner of one live shoot: the task that hands it its messages.

    Constructing it loads the document (pure, but it runs on data from Redis: the
    registry builds it inside its supervision boundary).

    Args:
        inbox: The receiving end of the actor's inbox; the actor closes it when it stops.
        on_close: Called the moment the inbox closes, with no checkpoint in between.

    The other arguments are :class:`~relay.owned_shoot.OwnedShoot`'s. When Redis refuses
    a write because another instance took the shoot over, the actor stops
    (:meth:`depose`).
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
        self._inbox = inbox
        self._on_close = on_close
        self._serving = trio.CancelScope()
        self.deposed = False
        self._adopted: tuple[set[Subscriber], bytes, list[Message]] | None = None
        super().__init__(
            stored,
            store,
            settings,
            metrics,
            owner=owner,
            on_notice=on_notice,
            on_notice_frame=on_notice_frame,
            now_ms=now_ms,
        )

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
        on_close, self._on_close = self._on_close, nothing
        on_close()  # once; and kept no longer: it may refer to what refers to the actor

    def _expire(self) -> None:
        expire(self.subscribers)

    # -- messages ------------------------------------------------------------------------

    def _handle_queued(self, first: Message) -> None:
        """Handle ``first`` and the writes already queued behind it as one run, whose
        updates go out as one (:class:`~relay.fanout.HeldUpdates`): the run's last write
        sends them before its leaderboard and notices are worked out
        (:meth:`_more_queued`). Each write is still decided, persisted and answered on its
        own; answers wait for Redis, so they follow the update that carries their write.
        Anything but a write ends the run, after the updates before it are sent (a welcome
        or a reply sees them out)."""
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

    def _more_queued(self) -> bool:
        return self._inbox.statistics().current_buffer_used > 0

    @staticmethod
    def _abandon(message: Message, error: Exception) -> None:
        """Answer a message the actor will not handle (connections need no answer: the
        actor closes them, and their devices resend)."""
        abandon(message, error)
