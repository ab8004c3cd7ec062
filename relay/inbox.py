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
shared, so they are its own), then new ones. A request the old owner applied but did not
answer is applied again: a duplicate, acknowledged. A deposed owner cannot answer what
Redis refused it: its answers wait for durability, which the fence denies it.

Every field is bounded before it is used: a write is the client's own ``write`` frame and
goes through the same codec and limits; an entry that does not parse is answered with an
error (or, without a usable instance name, just removed), and changes nothing.
"""

from __future__ import annotations

import logging
import re
from typing import Final

import trio

from sync.codec import decode_client
from sync.errors import ProtocolError, SyncError
from sync.models import MAX_NAME_LENGTH, Shoot, validate_name
from sync.protocol import Write

from .messages import AddArcher, ForgetArcher, Message, Reply, ShootUnavailable, Submit, WriteResult
from .records import ArcherRecord
from .store import INBOX_CONSUMER, INBOX_GROUP, RedisStore, StoreUnavailable
from .streams import Entry
from .subscriber import Subscriber

__all__ = ["serve_inbox"]

log = logging.getLogger(__name__)

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
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the shoot's forwarded requests until cancelled or until the actor's inbox
    closes (see the module docstring)."""
    reader = store.reader()
    task_status.started()
    delay = RETRY_MIN_S
    after = "0"  # first the pending entries a previous owner left
    try:
        async with trio.open_nursery() as answering:
            while True:
                try:
                    if after == "0":
                        await store.call(store.open_inbox, shoot)
                    entries = await reader.read_group(
                        store.inbox_key(shoot), INBOX_GROUP, INBOX_CONSUMER, after
                    )
                except StoreUnavailable as exc:
                    log.warning("shoot %s: cannot read its inbox: %s", shoot.code, exc)
                    after = "0"  # the group may be gone with an expired key; make it again
                    await trio.sleep(delay)  # backoff between retries, not synchronisation
                    delay = min(delay * 2, RETRY_MAX_S)
                    continue
                delay = RETRY_MIN_S
                after = ">"
                for entry in entries:
                    if not await _take(store, shoot, entry, actor_inbox, answering):
                        return
    finally:
        await reader.aclose()


async def _take(
    store: RedisStore,
    shoot: Shoot,
    entry: Entry,
    actor_inbox: trio.MemorySendChannel[Message],
    answering: trio.Nursery,
) -> bool:
    """Hand one entry to the actor and start waiting for its answer; ``False`` once the
    actor has stopped (the entry stays pending for the next owner)."""
    entry_id, fields = entry
    instance = _text(fields, "f", _INSTANCE) or "invalid"
    forward_id = _text(fields, "i", _ID)
    kind = fields.get("k")
    message: Message
    reply: Reply[WriteResult] | Reply[None] | None = None
    answers: _Answers | None = None
    try:
        if forward_id is None:
            raise ProtocolError("malformed", "A forwarded request has no valid id.")
        if kind == b"w":
            write = decode_client(fields.get("p", b""))
            if not isinstance(write, Write):
                raise ProtocolError("malformed", "A forwarded write holds another message.")
            answers = _Answers()
            reply = Reply[WriteResult]()
            message = Submit(write.register, write.id, answers, reply)
        elif kind == b"a":
            admission = _admission(fields)
            if admission is None:
                raise ProtocolError("malformed", "A forwarded join is malformed.")
            message, reply = admission, admission.reply
        elif kind == b"x" and (archer_id := _text(fields, "a", _ID)) is not None:
            message = ForgetArcher(archer_id)
        else:
            raise ProtocolError("malformed", "A forwarded request of an unknown kind.")
    except ProtocolError as exc:
        log.warning("shoot %s: refused a forwarded request: %s", shoot.code, exc.message)
        await _answer(store, shoot, entry_id, instance, {"i": forward_id or "", "e": exc.code})
        return True
    try:
        await actor_inbox.send(message)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return False
    if reply is None:
        await _answer(store, shoot, entry_id, instance, {"i": forward_id})
    else:
        answering.start_soon(_answer_when_done, store, shoot, entry, instance, reply, answers)
    return True


async def _answer_when_done(
    store: RedisStore,
    shoot: Shoot,
    entry: Entry,
    instance: str,
    reply: Reply[WriteResult] | Reply[None],
    answers: _Answers | None,
) -> None:
    entry_id, fields = entry
    forward_id = fields["i"].decode()
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
    await _answer(store, shoot, entry_id, instance, answer)


async def _answer(
    store: RedisStore, shoot: Shoot, entry_id: str, instance: str, answer: dict[str, str | bytes]
) -> None:
    try:
        await store.call(store.answer, shoot, entry_id, instance, answer)
    except StoreUnavailable as exc:
        # The entry stays pending; the follower asks again, and a repeat is harmless.
        log.warning("shoot %s: cannot answer a forwarded request: %s", shoot.code, exc)
