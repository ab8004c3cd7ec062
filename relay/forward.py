"""A follower's requests to the shoot's owner: sent through Redis, answered through Redis.

Theory of operation
-------------------
A follower (:mod:`relay.follower`) may not write the shoot's document, so what its clients
ask of the owner (a write, admitting a new archer, forgetting one) goes into the shoot's
inbox stream ``shoot:{C}:<id>:inbox`` as an entry with a *forward id*, the follower's
instance name and the request (a write travels as the client's own ``write`` frame, so
the owner validates it with the same codec and limits as a frame from a socket). The
owner (:mod:`relay.inbox`) answers into ``shoot:{C}:<id>:replies:<instance>``, which the
follower tails beside the log; the answer is the very frame the owner would have sent its
own client (``ack`` only once the write is durable, ``superseded``, ``error``), and the
follower passes it on unchanged.

Nothing here is lost by a crash or a change of owner: a request stays *pending* until
its answer comes, and is sent again when the lease changes hands or when no answer came
within ``resend_after_s``; that rule is :class:`sync.forwarding.Forwarding`'s, and this
module fires its timer and sends what it says.
When this follower itself becomes the owner, it hands its pending requests to the new
actor (:meth:`Forwarder.take`), which answers them directly.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from dataclasses import dataclass
from typing import Final

import trio

from sync.codec import decode_server, encode
from sync.errors import ProtocolError, SyncError
from sync.forwarding import Forwarding
from sync.models import Shoot
from sync.protocol import Ack, Error, Write
from sync.protocol import Superseded as SupersededFrame
from sync.register import Applied, Superseded

from .messages import AddArcher, ForgetArcher, ShootUnavailable, Submit, WriteResult
from .store import RedisStore, StoreUnavailable

__all__ = ["Forwardable", "Forwarder"]

log = logging.getLogger(__name__)

Forwardable = Submit | AddArcher | ForgetArcher

#: Pauses between attempts to send while Redis refuses them.
RETRY_MIN_S: Final = 0.05
RETRY_MAX_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class _Request:
    """What this relay keeps of a request awaiting its answer."""

    message: Submit | AddArcher
    fields: dict[str, str | bytes]


def request_fields(message: Forwardable, forward_id: str, instance: str) -> dict[str, str | bytes]:
    """The inbox entry for a request (see :mod:`relay.inbox` for how it is read)."""
    fields: dict[str, str | bytes] = {"i": forward_id, "f": instance}
    match message:
        case Submit(register, request_id):
            fields |= {"k": "w", "p": encode(Write(request_id, register))}
        case AddArcher(archer_id, record):
            fields |= {
                "k": "a",
                "a": archer_id,
                "h": record.token_sha256,
                "n": record.name,
                "c": str(record.created_ms),
            }
        case ForgetArcher(archer_id):
            fields |= {"k": "x", "a": archer_id}
    return fields


def _write_result(submit: Submit, frame: bytes) -> WriteResult:
    """An owner's answer frame as the result an HTTP write waits for."""
    match decode_server(frame):
        case Ack():
            return WriteResult(Applied(submit.register))
        case SupersededFrame(_, winner):
            return WriteResult(Superseded(winner))
        case Error(code, message):
            return WriteResult(None, SyncError(code, message))
    raise ProtocolError("unexpected", "The owner answered a write with something else.")


class Forwarder:
    """One follower's requests in flight to the owner of ``shoot``.

    Args:
        instance: This relay's name; the owner answers into its reply stream.
        resend_after_s: A request unanswered this long is sent again.
    """

    def __init__(
        self, store: RedisStore, shoot: Shoot, instance: str, resend_after_s: float
    ) -> None:
        self._store = store
        self._shoot = shoot
        self._instance = instance
        self._prefix = secrets.token_hex(4)
        self._ids = itertools.count(1)
        self._pending: Forwarding[_Request] = Forwarding(resend_after_s, trio.current_time())
        # Requests to send, by forward id: a request queued again before it went out is
        # sent once, so the queue never holds more than the requests themselves.
        self._queue: dict[str, dict[str, str | bytes]] = {}
        self._wanted = trio.Event()

    @property
    def pending(self) -> int:
        """Requests waiting for their answer."""
        return len(self._pending)

    def forward(self, message: Forwardable) -> None:
        """Send ``message`` to the owner; its answer comes through :meth:`answered`."""
        forward_id = f"{self._prefix}-{next(self._ids)}"
        fields = request_fields(message, forward_id, self._instance)
        if not isinstance(message, ForgetArcher):  # needs no answer
            self._pending.sent(forward_id, _Request(message, fields), trio.current_time())
        self._send(fields)

    def resend_all(self) -> None:
        """The lease changed hands: send every unanswered request again."""
        for request in self._pending.owner_changed(trio.current_time()):
            self._send(request.fields)

    def answered(self, fields: dict[str, bytes]) -> None:
        """An entry of this instance's reply stream: answer the request it names (an
        answer to a request no longer pending, e.g. a repeat's, is ignored)."""
        forward_id = fields.get("i", b"").decode(errors="replace")
        pending = self._pending.answered(forward_id)
        if pending is None:
            return
        message = pending.message
        frame, error = fields.get("p"), fields.get("e")
        try:
            if isinstance(message, Submit):
                if frame is None:  # the owner could not read the request
                    code = (error or b"malformed").decode(errors="replace")
                    text = "The shoot's owner could not read this write."
                    frame = encode(Error(code, text, id=message.request_id))
                if message.subscriber is not None:
                    message.subscriber.answer(frame)
                if message.reply is not None:
                    message.reply.set(_write_result(message, frame))
            elif isinstance(message, AddArcher):
                if error is None:
                    message.reply.set(None)
                else:
                    text = fields.get("m", b"").decode(errors="replace")
                    message.reply.fail(SyncError(error.decode(errors="replace"), text))
        except SyncError as exc:  # an answer this relay cannot read: the owner is newer
            log.warning("shoot %s: unreadable answer from the owner: %s", self._shoot.code, exc)
            self._fail(message, ShootUnavailable("the shoot's owner answered unreadably"))

    def take(self) -> list[Submit | AddArcher]:
        """Every unanswered request, for the actor that takes over from this follower."""
        return [request.message for request in self._pending.take()]

    def fail_all(self, error: Exception) -> None:
        """The follower is stopping: fail what waits (connections need no answer: they
        are closed, and their devices resend)."""
        for request in self._pending.take():
            self._fail(request.message, error)

    @staticmethod
    def _fail(message: Submit | AddArcher, error: Exception) -> None:
        if message.reply is not None:
            message.reply.fail(error)

    def _send(self, fields: dict[str, str | bytes]) -> None:
        self._queue[str(fields["i"])] = fields
        self._wanted.set()

    async def run(self) -> None:
        """Send what is queued, and resend what went unanswered; runs until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._resend_unanswered)
            delay = RETRY_MIN_S
            while True:
                await self._wanted.wait()
                self._wanted = trio.Event()
                while self._queue:
                    forward_id, fields = next(iter(self._queue.items()))
                    try:
                        await self._store.call(self._store.forward, self._shoot, fields)
                    except StoreUnavailable as exc:
                        log.warning("shoot %s: cannot forward: %s", self._shoot.code, exc)
                        await trio.sleep(delay)  # backoff between retries, not synchronisation
                        delay = min(delay * 2, RETRY_MAX_S)
                        continue
                    delay = RETRY_MIN_S
                    if self._queue.get(forward_id) is fields:
                        del self._queue[forward_id]

    async def _resend_unanswered(self) -> None:
        while True:
            await trio.sleep_until(self._pending.next_timer)
            for request in self._pending.timer_fired(trio.current_time()):
                self._send(request.fields)
