"""The owner's notices, passed on to the shoot's followers through its log.

A notice (a lead change, a round's digest) goes out from the owner's actor once the
document update that remembers it is durable. The owner's own sessions get it from the
actor; :class:`NoticePoster` also appends it to the shoot's log as a marker entry
``{u: empty update, n: notice frame}``, after that update, so each follower tailing the log
sends the same frame to its sessions. Loaders skip such entries (their update is empty).

Best effort, like a notice itself: a notice Redis does not take in time is dropped (the
owner's own sessions have it), and the queue is bounded so an outage cannot grow it.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Final

import trio

from sync.models import Shoot

from .store import RedisStore, StoreUnavailable

__all__ = ["NoticePoster"]

log = logging.getLogger(__name__)

#: Notices waiting for Redis at most; older ones are dropped.
QUEUED_NOTICES: Final = 64


class NoticePoster:
    """Appends one shoot's notices to its log for its followers (see the module)."""

    def __init__(self, store: RedisStore, shoot: Shoot) -> None:
        self._store = store
        self._shoot = shoot
        self._queue: deque[bytes] = deque(maxlen=QUEUED_NOTICES)
        self._wanted = trio.Event()

    def post(self, frame: bytes) -> None:
        """Queue a notice frame (never waits: the actor calls it)."""
        self._queue.append(frame)
        self._wanted.set()

    async def run(self) -> None:
        """Append queued notices until cancelled."""
        store = self._store
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            while self._queue:
                frame = self._queue.popleft()
                try:
                    await store.call(store.post_notice, self._shoot, frame)
                except StoreUnavailable as exc:
                    log.warning(
                        "shoot %s: a notice did not reach followers: %s", self._shoot.code, exc
                    )
