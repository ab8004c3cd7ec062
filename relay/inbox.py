"""The owner's side of forwarded requests: read the shoot's inbox, answer through Redis.

Theory of operation
-------------------
While an instance owns a shoot, :func:`serve_inbox` reads the shoot's inbox stream as the
one consumer ``owner`` of the group ``owners`` (:mod:`relay.forward` says what followers
put there). Each entry becomes the message its request stands for, sent to the shoot's
actor like a local client's; when the actor has answered (a write's answer only once it
is durable, exactly as for a local client), the answer goes into the asking instance's
reply stream and the entry is acknowledged and deleted, in one script
(:meth:`~relay.store.RedisStore.answer`).

Failover: an entry this owner read but did not answer stays *pending* in the group. A new
owner starts by reading the pending entries (``XREADGROUP ... 0``: the consumer name is
shared, so they are its own), then new ones. (An entry read by an owner that was being
deposed may stay pending until the next change of owner; the follower has sent it again
by then, as a new entry.) A request the old owner applied but did not
answer is applied again: a duplicate, acknowledged. A deposed owner cannot answer what
Redis refused it: its answers wait for durability, which the fence denies it.

Every field is bounded before it is used: a write is the client's own ``write`` frame and
goes through the same codec and limits; an entry that does not parse is answered with an
error (or, without a usable instance name, just removed), and changes nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import trio

from sync.codec import decode_client
from sync.errors import ProtocolError, SyncError
from sync.models import MAX_NAME_LENGTH, Shoot, validate_name
from sync.protocol import Write

from .hub import StreamHub
from .messages import AddArcher, ForgetArcher, Message, Reply, ShootUnavailable, Submit, WriteResult
from .records import ArcherRecord
from .store import INBOX_CONSUMER, INBOX_GROUP, RedisStore, StoreUnavailable
from .streams import Entry
from .subscriber import Subscriber

__all__ = ["serve_inbox"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Pauses between attempts while Redis is away.
RETRY_MIN_S: Final = 0.05
RETRY_MAX_S: Final = 2.0

_INSTANCE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class _Answers(Subscriber):
    """Stands in for the asking instance's client: the actor answers a forwarded write to
    it as to a connection, so the frame is exactly the one a local client would get."""

    def __init__(self) -> None:
        super().__init__(1)
        self.frame: bytes | None = None

    def answer(self, frame: bytes) -> bool:
        self.frame = frame
        return True


def _text(fields: dict[str, bytes], name: str, pattern: re.Pattern[str]) -> str | None:
    raw = fields.get(name)
    if raw is None or len(raw) > 256:
        return None
    text = raw.decode(errors="replace")
    return text if pattern.fullmatch(text) else None


def _admission(fields: dict[str, bytes]) -> AddArcher | None:
    archer_id = _text(fields, "a", _ID)
    token_sha256 = _text(fields, "h", _SHA256)
    name_raw, created_raw = fields.get("n", b""), fields.get("c", b"")
    if archer_id is None or token_sha256 is None or len(name_raw) > MAX_NAME_LENGTH * 4:
        return None
    if len(created_raw) > 20 or not created_raw.isdigit():
        return None
    try:
        name = validate_name(name_raw.decode())
    except (UnicodeDecodeError, SyncError):
        return None
    return AddArcher(archer_id, ArcherRecord(token_sha256, name, int(created_raw)))


async def serve_inbox(
    store: RedisStore,
    shoot: Shoot,
    actor_inbox: trio.MemorySendChannel[Message],
    hub: StreamHub | None = None,
    pending: list[Entry] | None = None,
) -> None:
    """Serve the shoot's forwarded requests until cancelled or until the actor's inbox
    closes (see the module docstring).

    Args:
        hub: The instance's reader of owned inboxes (:mod:`relay.hub`); ``None`` makes
            one for this shoot alone.
        pending: The inbox's pending entries, read after its consumer group was made, by
            the call that started the shoot (:mod:`relay.store_start`: a thread hop
            fewer for each); ``None`` makes the group and reads them here.
    """
    async with trio.open_nursery() as nursery:
        if hub is None:
            reader = store.reader(store.inbox_key(shoot))
            hub = StreamHub(reader, group=(INBOX_GROUP, INBOX_CONSUMER))
            nursery.start_soon(hub.run)
        taker = _Taker(store, shoot, actor_inbox, nursery)

        async def repair() -> None:
            await store.call(store.open_inbox, shoot)

        if pending is None:
            await _retrying(repair)
        watch = hub.watch(store.inbox_key(shoot), repair=repair)
        try:
            while True:
                # What an earlier owner (or this one, when the hub dropped a batch) read
                # and never answered; then new entries.
                if pending is None:
                    pending = await _retrying(lambda: store.call(store.inbox_pending, shoot))
                for entry in pending:
                    if not await taker.take(entry):
                        return
                pending = None
                watch.missed = False
                async for batch in watch.batches:
                    for entry in batch:
                        if not await taker.take(entry):
                            return
                    if watch.missed:
                        break
        finally:
            watch.close()
            nursery.cancel_scope.cancel()


async def _retrying(call: Callable[[], Awaitable[T]]) -> T:
    delay = RETRY_MIN_S
    while True:
        try:
            return await call()
        except StoreUnavailable as exc:
            log.warning("a shoot's inbox is unavailable: %s", exc)
            await trio.sleep(delay)  # backoff between retries, not synchronisation
            delay = min(delay * 2, RETRY_MAX_S)


class _Taker:
    """Hands inbox entries to the actor, each once while it is in flight (read again from
    the pending entries before its answer went out, it is not handed over twice)."""

    def __init__(
        self,
        store: RedisStore,
        shoot: Shoot,
        actor_inbox: trio.MemorySendChannel[Message],
        answering: trio.Nursery,
    ) -> None:
        self._store = store
        self._shoot = shoot
        self._actor_inbox = actor_inbox
        self._answering = answering
        self._in_flight: set[str] = set()

    async def take(self, entry: Entry) -> bool:
        """Hand one entry to the actor and start waiting for its answer; ``False`` once
        the actor has stopped (the entry stays pending for the next owner)."""
        entry_id, fields = entry
        if entry_id in self._in_flight:
            return True
        instance = _text(fields, "f", _INSTANCE) or "invalid"
        forward_id = _text(fields, "i", _ID)
        try:
            message, reply, answers = _request(fields, forward_id)
        except ProtocolError as exc:
            log.warning("shoot %s: refused a forwarded request: %s", self._shoot.code, exc.message)
            await self._answer(entry_id, instance, {"i": forward_id or "", "e": exc.code})
            return True
        try:
            await self._actor_inbox.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        assert forward_id is not None
        if reply is None:
            await self._answer(entry_id, instance, {"i": forward_id})
        else:
            self._in_flight.add(entry_id)
            self._answering.start_soon(
                self._answer_when_done, entry_id, forward_id, instance, reply, answers
            )
        return True

    async def _answer_when_done(
        self,
        entry_id: str,
        forward_id: str,
        instance: str,
        reply: Reply[WriteResult] | Reply[None],
        answers: _Answers | None,
    ) -> None:
        try:
            try:
                await reply.wait()
            except SyncError as exc:  # refused (e.g. the shoot is full): nothing changed
                answer: dict[str, str | bytes] = {"i": forward_id, "e": exc.code, "m": exc.message}
            except ShootUnavailable:
                return  # this actor stopped first: left pending, the next owner answers it
            else:
                answer = {"i": forward_id}
                if answers is not None:
                    if answers.frame is None:
                        return  # not answered to a connection: nothing to pass on
                    answer["p"] = answers.frame
            await self._answer(entry_id, instance, answer)
        finally:
            self._in_flight.discard(entry_id)

    async def _answer(self, entry_id: str, instance: str, answer: dict[str, str | bytes]) -> None:
        store = self._store
        try:
            await store.call(store.answer, self._shoot, entry_id, instance, answer)
        except StoreUnavailable as exc:
            # The entry stays pending; the follower asks again, and a repeat is harmless.
            log.warning("shoot %s: cannot answer a forwarded request: %s", self._shoot.code, exc)


def _request(
    fields: dict[str, bytes], forward_id: str | None
) -> tuple[Message, Reply[WriteResult] | Reply[None] | None, _Answers | None]:
    """The actor's message for an inbox entry, the reply to wait for (``None``: nothing
    to wait for) and, for a write, where the actor's answer frame lands.

    Raises:
        ProtocolError: the entry is malformed; nothing was done.
    """
    if forward_id is None:
        raise ProtocolError("malformed", "A forwarded request has no valid id.")
    kind = fields.get("k")
    if kind == b"w":
        write = decode_client(fields.get("p", b""))
        if not isinstance(write, Write):
            raise ProtocolError("malformed", "A forwarded write holds another message.")
        answers = _Answers()
        reply = Reply[WriteResult]()
        return Submit(write.register, write.id, answers, reply), reply, answers
    if kind == b"a":
        admission = _admission(fields)
        if admission is None:
            raise ProtocolError("malformed", "A forwarded join is malformed.")
        return admission, admission.reply, None
    archer_id = _text(fields, "a", _ID)
    if kind == b"x" and archer_id is not None:
        return ForgetArcher(archer_id), None, None
    raise ProtocolError("malformed", "A forwarded request of an unknown kind.")
