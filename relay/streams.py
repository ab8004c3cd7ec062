"""Blocking reads of shoots' streams (the logs followers tail, the owners' inboxes).

A blocking ``XREAD``/``XREADGROUP`` holds its connection and its worker thread for as long
as it waits, so each reader here has a connection of its own (never one of the store's
pool) and takes its thread from a :class:`trio.CapacityLimiter` of its own: with trio's
default limiter (40 threads) a hundred tailers once starved the store's calls for
seconds. Its socket time-out is well above the block time and it never retries by
itself (redis-py's retries turned a 2 s time-out into 27 s).

Cancellation: a cancelled read is abandoned at once (``abandon_on_cancel``), and
:meth:`StreamReader.aclose` sends ``CLIENT UNBLOCK`` for it from the store's connection,
so the thread and the connection are free within milliseconds rather than at the end of
the block; the thread closes the connection when it returns.

A read may name the streams of many shoots (:mod:`relay.hub`), which only a standalone
Redis allows; on a Redis Cluster each reader reads one shoot's streams (one hash tag).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import suppress
from typing import Any, Final

import redis
import trio

from .records import StoreUnavailable

__all__ = ["BLOCK_MS", "Entry", "StreamReader", "id_key"]

#: How long one blocking read waits for an entry (a waiting reader costs a thread, a
#: connection, and a wake-up per block: at 4 s about 0.1 % of a core each).
BLOCK_MS: Final = 4_000

#: ``(entry id, fields)`` with the fields' names as text.
Entry = tuple[str, dict[str, bytes]]


def id_key(entry_id: str) -> tuple[int, int]:
    """A stream id (``"1795739171553-0"``) as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(raw: Any) -> dict[str, list[Entry]]:
    """redis-py's XREAD answer (a list of ``[key, entries]``, or a dict under RESP3) as
    ``{key: entries}``."""
    pairs = raw.items() if isinstance(raw, dict) else (raw or [])
    found: dict[str, list[Entry]] = {}
    for key, entries in pairs:
        if isinstance(raw, dict) and entries and not isinstance(entries[0], list | tuple):
            entries = entries[0]  # RESP3 wraps each stream's entries once more
        found[_text(key)] = [
            (_text(entry_id), {_text(k): bytes(v) for k, v in (fields or {}).items()})
            for entry_id, fields in entries
        ]
    return found


class StreamReader:
    """One blocking reader on a connection of its own (see the module docstring).

    Args:
        url: The store's Redis URL.
        unblocker: The store's client, used to ``CLIENT UNBLOCK`` this reader's connection.
        limiter: Where the reader's threads come from (shared by all readers).
    """

    def __init__(
        self,
        url: str,
        unblocker: redis.Redis,
        limiter: trio.CapacityLimiter,
        block_ms: int = BLOCK_MS,
    ) -> None:
        self._url = url
        self._redis: redis.Redis | None = None  # connected at the first read
        self._unblocker = unblocker
        self._limiter = limiter
        self._block_ms = block_ms
        self._client_id: int | None = None
        self._lock = threading.Lock()
        self._busy = False
        self._closed = False

    async def read(self, streams: Mapping[str, str], count: int) -> dict[str, list[Entry]]:
        """Up to ``count`` entries per stream after the given ids (``{key: last id
        read}``), waiting up to the block time for one; ``{}`` if none came (or the read
        was unblocked).

        Raises:
            StoreUnavailable: Redis could not be reached.
        """
        wanted: dict[Any, Any] = dict(streams)
        raw = await self._run(
            lambda: self._client().xread(wanted, count=count, block=self._block_ms)
        )
        return _entries(raw)

    async def read_groups(
        self, keys: list[str], group: str, consumer: str, count: int
    ) -> dict[str, list[Entry]]:
        """``XREADGROUP ... >``: new entries of each stream for the group's consumer (they
        become its pending entries), waiting up to the block time.

        Raises:
            StoreUnavailable: Redis could not be reached (or a stream lost its group:
                the message then says ``NOGROUP``).
        """
        wanted: dict[Any, Any] = dict.fromkeys(keys, ">")
        raw = await self._run(
            lambda: self._client().xreadgroup(
                group, consumer, wanted, count=count, block=self._block_ms
            )
        )
        return _entries(raw)

    async def unblock(self) -> bool:
        """End the blocking read in progress early (it returns nothing); ``False`` when
        Redis had no blocked read of ours (none yet, or it just ended)."""
        with self._lock:
            busy, client_id = self._busy, self._client_id
        if not busy or client_id is None:
            return False

        def unblock() -> bool:
            try:
                return bool(self._unblocker.client_unblock(client_id))
            except redis.RedisError:
                return False

        return await trio.to_thread.run_sync(unblock, abandon_on_cancel=True)

    def _client(self) -> redis.Redis:
        """The reader's connection (made on a worker thread: connecting blocks)."""
        if self._redis is None:
            self._redis = redis.Redis.from_url(
                self._url,
                socket_timeout=self._block_ms / 1000 + 5.0,
                socket_connect_timeout=2.0,
                single_connection_client=True,
            )
        return self._redis

    def _disconnect(self) -> None:
        if self._redis is not None:
            self._redis.close()

    async def _run(self, read: Any) -> Any:
        def blocking() -> Any:
            with self._lock:
                if self._closed:
                    return {}
                self._busy = True
            try:
                if self._client_id is None:
                    self._client_id = int(self._client().client_id())
                return read()
            except redis.RedisError as exc:
                self._client_id = None  # a new connection has a new id
                raise StoreUnavailable(f"Redis: {exc}") from exc
            finally:
                with self._lock:
                    self._busy = False
                    if self._closed:
                        self._disconnect()

        return await trio.to_thread.run_sync(
            blocking, abandon_on_cancel=True, limiter=self._limiter
        )

    async def aclose(self) -> None:
        """Stop this reader: unblock a read in progress (its thread then closes the
        connection), or close the connection now. Shielded and bounded: it runs while
        the reader's owner is being cancelled."""
        with self._lock:
            self._closed = True
            busy, client_id = self._busy, self._client_id
            if not busy:
                self._disconnect()
        if not busy or client_id is None:
            return

        def unblock() -> None:
            with suppress(redis.RedisError):
                self._unblocker.client_unblock(client_id)

        with trio.CancelScope(shield=True), trio.move_on_after(2.0):
            await trio.to_thread.run_sync(unblock, abandon_on_cancel=True)
