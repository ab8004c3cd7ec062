"""What followers and forwarded requests need from Redis: the log after an entry, the
owner's inbox and the answers, notices for followers, blocking readers.

A part of :class:`relay.store.RedisStore` (which mixes it in), kept apart because it is
used by the scale-out modules only (:mod:`relay.follower`, :mod:`relay.forward`,
:mod:`relay.inbox`, :mod:`relay.notices`). Every call names keys of one shoot only.
"""

from __future__ import annotations

from typing import Any, Final

import redis
import trio
from redis.cluster import RedisCluster

from sync.models import Shoot

from . import scripts
from .keys import data_key as _data_key
from .keys import kept_until as _kept_until
from .keys import reply_key
from .redis_client import node_url
from .streams import Entry, StreamReader

__all__ = ["INBOX_CONSUMER", "INBOX_GROUP", "StreamCalls"]

#: Blocking readers (followers' tails, owners' inboxes) waiting at once, at most.
MAX_READERS: Final = 20_000
#: The consumer group owners read a shoot's inbox as; every owner is the one consumer
#: ``owner``, so a new owner finds its dead predecessor's pending requests.
INBOX_GROUP: Final = "owners"
INBOX_CONSUMER: Final = "owner"
#: How long an instance's reply stream is kept after the owner's last answer in it.
REPLIES_KEPT_MS: Final = 600_000
#: A Yjs update that changes nothing: the ``u`` of the log's marker entries.
EMPTY_UPDATE: Final = b"\x00\x00"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(entry_id: Any, fields: Any) -> Entry:
    return _text(entry_id), {_text(k): bytes(v) for k, v in (fields or {}).items()}


def _pending(raw: Any) -> list[Entry]:
    """``XREADGROUP``'s answer (a dict in RESP3, a list in RESP2) as entries."""
    pairs = raw.items() if isinstance(raw, dict) else (raw or [])
    return [
        _entry(entry_id, fields)
        for _, entries in pairs
        for entry_id, fields in entries
        if fields  # an entry deleted while pending comes back without fields
    ]


def _queue_open_inbox(pipe: Any, shoot: Shoot) -> None:
    """Queue on ``pipe`` what makes the inbox's consumer group (reading from its start) and
    keeps the inbox as long as the shoot: answered by :func:`_check_opened`."""
    key = _data_key(shoot, "inbox")
    pipe.xgroup_create(key, INBOX_GROUP, id="0", mkstream=True)
    pipe.pexpireat(key, _kept_until(shoot))


def _check_opened(made: Any, expiring: Any) -> None:
    """Raise the error of :func:`_queue_open_inbox`'s commands, if any; a group that is
    there already is not one."""
    if isinstance(made, redis.ResponseError) and "BUSYGROUP" in str(made):
        made = None
    for answer in (made, expiring):
        if isinstance(answer, Exception):
            raise answer


class StreamCalls:
    """The scale-out calls of :class:`~relay.store.RedisStore` (blocking, like its others:
    run them through ``store.call``)."""

    url: str
    _redis: redis.Redis

    def _streams_init(self) -> None:
        self._forward = self._redis.register_script(scripts.FORWARD)
        self._answer = self._redis.register_script(scripts.ANSWER)
        self._notice = self._redis.register_script(scripts.NOTICE)
        self._readers: trio.CapacityLimiter | None = None

    def reader(self, key: str | None = None) -> StreamReader:
        """A blocking reader on a connection of its own (:mod:`relay.streams`); call it
        from Trio (the readers share one thread limiter, made at the first call).

        On a Redis Cluster a reader serves one shoot: ``key``, one of its keys, says which
        node it connects to (and sends ``CLIENT UNBLOCK`` to)."""
        if self._readers is None:
            self._readers = trio.CapacityLimiter(MAX_READERS)
        if key is not None and isinstance(self._redis, RedisCluster):
            node = self._redis.get_node_from_key(key)
            unblocker = node.redis_connection
            url = node_url(self.url, node.host, node.port)
            return StreamReader(url, unblocker, self._readers)
        return StreamReader(self.url, self._redis, self._readers)

    def log_key(self, shoot: Shoot) -> str:
        return _data_key(shoot, "log")

    def inbox_key(self, shoot: Shoot) -> str:
        return _data_key(shoot, "inbox")

    def log_after(self, shoot: Shoot, after_id: str) -> list[Entry]:
        """The log's entries after ``after_id`` (no wait), for a follower catching up."""
        raw: Any = self._redis.xrange(_data_key(shoot, "log"), min=f"({after_id}")
        return [_entry(entry_id, fields) for entry_id, fields in raw]

    def forward(self, shoot: Shoot, fields: dict[str, str | bytes]) -> str:
        """Queue a request for the shoot's owner in its inbox; the entry's id."""
        args: list[str | bytes | int] = [_kept_until(shoot)]
        for name, value in fields.items():
            args += [name, value]
        return _text(self._forward(keys=[_data_key(shoot, "inbox")], args=args))

    def open_inbox(self, shoot: Shoot) -> None:
        """Make the inbox's consumer group (reading from its start) if it is not there."""
        pipe = self._redis.pipeline(transaction=False)
        _queue_open_inbox(pipe, shoot)
        _check_opened(*pipe.execute(raise_on_error=False))

    def post_notice(self, shoot: Shoot, frame: bytes) -> None:
        """Append a notice frame to the log for the followers (:mod:`relay.notices`)."""
        self._notice(keys=[_data_key(shoot, "log")], args=[EMPTY_UPDATE, frame])

    def inbox_pending(self, shoot: Shoot) -> list[Entry]:
        """The inbox entries read but never answered by whoever owned the shoot (no wait)."""
        key = _data_key(shoot, "inbox")
        return _pending(self._redis.xreadgroup(INBOX_GROUP, INBOX_CONSUMER, {key: "0"}, count=500))

    def open_inbox_pending(self, shoot: Shoot) -> list[Entry]:
        """:meth:`open_inbox`, then :meth:`inbox_pending`, in one round trip: what a new
        owner starts serving its inbox from."""
        pipe = self._redis.pipeline(transaction=False)
        _queue_open_inbox(pipe, shoot)
        pipe.xreadgroup(INBOX_GROUP, INBOX_CONSUMER, {_data_key(shoot, "inbox"): "0"}, count=500)
        made, expiring, raw = pipe.execute(raise_on_error=False)
        _check_opened(made, expiring)
        if isinstance(raw, Exception):
            raise raw
        return _pending(raw)

    def answer(
        self, shoot: Shoot, entry_id: str, instance: str, fields: dict[str, str | bytes]
    ) -> None:
        """Answer a forwarded request into its instance's reply stream and take it off the
        inbox, in one script."""
        keys = [_data_key(shoot, "inbox"), reply_key(shoot, instance)]
        args: list[str | bytes | int] = [entry_id, REPLIES_KEPT_MS]
        for name, value in fields.items():
            args += [name, value]
        self._answer(keys=keys, args=args)
