"""Many streams read by one blocking reader: the followers' logs, the owners' inboxes.

Every follower tails its shoot's log and every owner reads its shoot's inbox. A blocking
reader per shoot would cost a thread, a connection and a wake-up per block time each
(measured: 100 idle per-shoot readers at a 1 s block took 10.6 % of a core; one reader
over all 100 keys 0.4 %). So one :class:`StreamHub` reads all of an instance's watched
streams in one ``XREAD`` (or, for inboxes, one ``XREADGROUP``), and hands each stream's
entries to its :class:`Watch`. When a stream is added, the read in progress is ended
early (``CLIENT UNBLOCK``) and issued again with the new set, so a new watch waits
milliseconds, not a block time.

Backpressure: the hub never waits for a watcher. A watch holds a bounded queue of batches;
when it is full, the batch is dropped and the watch marked :attr:`Watch.missed`, and its
reader catches up from Redis by itself (the log is still there; an inbox's entries are
still pending).

Redis Cluster: one command may only name keys of one slot, so there each shoot needs a hub
of its own (a hub for a single shoot's keys is what :func:`relay.follower` and
:func:`relay.inbox` make when they are not given a shared one).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Final

import trio

from .records import StoreUnavailable
from .streams import Entry, StreamReader

__all__ = ["StreamHub", "Watch"]

log = logging.getLogger(__name__)

#: Entries read per stream in one round.
COUNT: Final = 500
#: Batches a watch holds before the hub drops them (its reader then catches up).
WATCH_BATCHES: Final = 64
#: How long the hub gathers changes of its stream set before ending the read in progress:
#: a reconnect storm loads hundreds of shoots at once, and each read names every stream.
GATHER_CHANGES_S: Final = 0.005
RETRY_MIN_S: Final = 0.05
RETRY_MAX_S: Final = 2.0


class Watch:
    """One stream read for one reader: batches of entries arrive in :attr:`batches`."""

    def __init__(
        self, hub: StreamHub, key: str, after: str, repair: Callable[[], Awaitable[None]] | None
    ) -> None:
        self.key = key
        self.after = after
        """The last id handed over (plain reads); the next read starts after it."""
        self.repair = repair
        """Recreates the stream's consumer group when Redis lost it (group reads)."""
        self.missed = False
        """Set when a batch was dropped: the reader must catch up from Redis."""
        self._hub = hub
        self._send, self.batches = trio.open_memory_channel[list[Entry]](WATCH_BATCHES)

    def deliver(self, entries: list[Entry]) -> None:
        try:
            self._send.send_nowait(entries)
        except trio.WouldBlock:
            self.missed = True
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the reader has gone; the hub forgets the watch at its close

    def close(self) -> None:
        """Stop reading this stream."""
        self._hub.unwatch(self)
        self._send.close()


class StreamHub:
    """Reads many streams with one blocking reader (see the module docstring).

    Args:
        reader: The blocking reader, on a connection of its own.
        group: ``(group, consumer)`` to read with ``XREADGROUP ... >``; ``None`` for
            ``XREAD`` after each watch's last id.
    """

    def __init__(self, reader: StreamReader, group: tuple[str, str] | None = None) -> None:
        self._reader = reader
        self._group = group
        self._watches: dict[str, Watch] = {}
        self._changed = trio.Event()
        self._added = trio.Event()
        self._round = 0
        self._reading = False

    @property
    def watching(self) -> int:
        return len(self._watches)

    def watch(
        self, key: str, after: str = "0-0", repair: Callable[[], Awaitable[None]] | None = None
    ) -> Watch:
        """Start reading ``key`` (after ``after``, for plain reads)."""
        watch = Watch(self, key, after, repair)
        self._watches[key] = watch
        self._changed.set()
        self._added.set()
        return watch

    def unwatch(self, watch: Watch) -> None:
        if self._watches.get(watch.key) is watch:
            del self._watches[watch.key]

    async def run(self) -> None:
        """Read until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._end_stale_reads)
                await self._read_forever()
        finally:
            await self._reader.aclose()

    async def _read_forever(self) -> None:
        delay = RETRY_MIN_S
        while True:
            if not self._watches:
                await self._added.wait()
                self._added = trio.Event()
                continue
            watches = dict(self._watches)
            self._round += 1
            self._reading = True
            try:
                if self._group is None:
                    ids = {key: watch.after for key, watch in watches.items()}
                    found = await self._reader.read(ids, COUNT)
                else:
                    group, consumer = self._group
                    found = await self._reader.read_groups(list(watches), group, consumer, COUNT)
            except StoreUnavailable as exc:
                if "NOGROUP" in str(exc):
                    await self._repair(watches)
                    continue
                log.warning("cannot read %d streams: %s", len(watches), exc)
                await trio.sleep(delay)  # backoff between retries, not synchronisation
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            finally:
                self._reading = False
            delay = RETRY_MIN_S
            for key, entries in found.items():
                watch = watches.get(key)
                if watch is None or not entries:
                    continue
                watch.after = entries[-1][0]
                watch.deliver(entries)

    async def _repair(self, watches: dict[str, Watch]) -> None:
        """A stream lost its consumer group (its key expired or was deleted): make the
        groups again (cheap when they exist)."""
        for watch in watches.values():
            if watch.repair is not None:
                with suppress(StoreUnavailable):  # the next read fails again and retries
                    await watch.repair()

    async def _end_stale_reads(self) -> None:
        """When the set of streams changes, end the read in progress so the next one
        includes the new streams."""
        while True:
            await self._changed.wait()
            await trio.sleep(GATHER_CHANGES_S)  # a batching window, see GATHER_CHANGES_S
            self._changed = trio.Event()
            started = self._round
            # A read may be on its way to Redis and not blocked there yet: ask again until
            # Redis unblocked it or a new read (with the new set) began.
            while self._reading and self._round == started:
                if await self._reader.unblock():
                    break
                await trio.sleep(0.002)  # the read is about to block; try again
