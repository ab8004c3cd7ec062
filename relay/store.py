"""Persistence of shoots in Redis, through redis-py on worker threads.

Key layout (one hash tag per shoot, so a Redis Cluster keeps a shoot on one slot)::

    shoot:{1234}:meta       JSON of the Shoot; SET NX at creation (the code allocation)
    shoot:{1234}:archers    hash  archer id -> JSON {token_sha256, name, created_ms}
    shoot:{1234}:snapshot   the compacted Yjs state
    shoot:{1234}:log        stream of Yjs updates appended since the snapshot (field "u")
    shoot:{1234}:final      the tombstone: the whole Yjs state, kept a day past the end

Every key but the tombstone expires at the end of the creator's local day (``PEXPIREAT``),
which frees the code for another shoot. The tombstone outlives it by
:data:`FINAL_KEEP_MS`, so the final results can still be read (``GET /api/shoots/{code}``
answers ``410`` with them) after the shoot has ended; a later shoot on the same code
overwrites it once it persists.

redis.asyncio does not run under Trio, so each method below is a plain blocking function
called through ``trio.to_thread.run_sync``; the methods that write batch their commands
into one pipeline, so one thread hop carries a whole batch (FACTS: ~130 µs per hop, ~10 µs
per pipelined command). Connection failures surface as :class:`StoreUnavailable`, the one
Redis error type the rest of the relay knows.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Final, ParamSpec, TypeVar

import redis
import trio

from sync.models import Shoot

__all__ = [
    "FINAL_KEEP_MS",
    "ArcherRecord",
    "NoCodeAvailable",
    "RedisStore",
    "StoreUnavailable",
    "StoredShoot",
]

P = ParamSpec("P")
T = TypeVar("T")

CODES: Final = range(1000, 10000)
#: How long the final results of a shoot are kept after its day ends.
FINAL_KEEP_MS: Final = 24 * 60 * 60 * 1000
RANDOM_ATTEMPTS: Final = 16


class StoreUnavailable(Exception):
    """Redis could not be reached or failed; the caller may retry later."""


class NoCodeAvailable(Exception):
    """All 9,000 join codes are taken by live shoots."""


@dataclass(frozen=True, slots=True)
class ArcherRecord:
    """What the relay keeps about an archer beside their register: their secret."""

    token_sha256: str
    name: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class StoredShoot:
    """A shoot as loaded from Redis."""

    shoot: Shoot
    snapshot: bytes | None
    log: list[tuple[str, bytes]]
    """``(stream id, update)`` pairs in order."""
    archers: dict[str, ArcherRecord] = field(default_factory=dict)
    """Who may write, so a loaded shoot can admit its archers while Redis is away."""


def _key(code: str, part: str) -> str:
    return f"shoot:{{{code}}}:{part}"


class RedisStore:
    """Blocking Redis calls, each run on a worker thread by :meth:`call`.

    Args:
        url: A ``redis://`` URL.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._redis = redis.Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=10
        )

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one of this store's blocking methods on a worker thread.

        Raises:
            StoreUnavailable: for any Redis connection or server error.
        """

        def run() -> T:
            try:
                return fn(*args, **kwargs)
            except redis.RedisError as exc:
                raise StoreUnavailable(f"Redis: {exc}") from exc

        return await trio.to_thread.run_sync(run, abandon_on_cancel=True)

    def close(self) -> None:
        self._redis.close()

    # -- blocking operations (call them through .call) ----------------------------------

    def ping(self) -> bool:
        return bool(self._redis.ping())

    def create_shoot(self, make: Callable[[str], Shoot]) -> Shoot:
        """Atomically claim a free code and store the shoot made for it.

        Tries random codes first (cheap while few are taken), then sweeps all of them, so
        a free code is always found if one exists.

        Raises:
            NoCodeAvailable: when every code is in use.
        """
        for number in random.sample(CODES, RANDOM_ATTEMPTS):
            shoot = self._claim(make, str(number))
            if shoot is not None:
                return shoot
        codes = [str(c) for c in CODES]
        for start in range(0, len(codes), 500):
            batch = codes[start : start + 500]
            pipe = self._redis.pipeline(transaction=False)
            for code in batch:
                pipe.exists(_key(code, "meta"))
            for code, taken in zip(batch, pipe.execute(), strict=True):
                if not taken:
                    shoot = self._claim(make, code)
                    if shoot is not None:
                        return shoot
        raise NoCodeAvailable("Every shoot code is in use right now; try again later.")

    def _claim(self, make: Callable[[str], Shoot], code: str) -> Shoot | None:
        shoot = make(code)
        meta = json.dumps(asdict(shoot))
        if self._redis.set(_key(code, "meta"), meta, nx=True, pxat=shoot.expires_ms):
            return shoot
        return None

    def load_shoot(self, code: str) -> StoredShoot | None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(_key(code, "meta"))
        pipe.get(_key(code, "snapshot"))
        pipe.xrange(_key(code, "log"))
        pipe.hgetall(_key(code, "archers"))
        meta, snapshot, entries, archers = pipe.execute()
        if meta is None:
            return None
        shoot = Shoot(**json.loads(meta))
        log = [(entry_id.decode(), fields[b"u"]) for entry_id, fields in entries]
        records = {aid.decode(): ArcherRecord(**json.loads(raw)) for aid, raw in archers.items()}
        return StoredShoot(shoot, snapshot, log, records)

    def load_meta(self, code: str) -> Shoot | None:
        meta = self._redis.get(_key(code, "meta"))
        return None if meta is None else Shoot(**json.loads(meta))

    def append(
        self, shoot: Shoot, updates: Sequence[bytes], final: bytes | None = None
    ) -> tuple[str, int]:
        """Append updates to the shoot's log in one round trip.

        Args:
            final: When given, the whole document, stored as the tombstone in the same
                round trip (the actor refreshes it now and then, not on every batch).

        Returns:
            The last entry's id and the log's length.
        """
        log = _key(shoot.code, "log")
        pipe = self._redis.pipeline(transaction=True)
        for update in updates:
            pipe.xadd(log, {"u": update})
        if final is not None:
            pipe.set(_key(shoot.code, "final"), final, pxat=shoot.expires_ms + FINAL_KEEP_MS)
        pipe.pexpireat(log, shoot.expires_ms)
        pipe.xlen(log)
        results = pipe.execute()
        return results[len(updates) - 1].decode(), int(results[-1])

    def compact(self, shoot: Shoot, snapshot: bytes, through_id: str) -> None:
        """Replace the snapshot and drop log entries it covers (up to ``through_id``)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(_key(shoot.code, "snapshot"), snapshot, pxat=shoot.expires_ms)
        pipe.xtrim(_key(shoot.code, "log"), minid=through_id)
        pipe.xdel(_key(shoot.code, "log"), through_id)
        pipe.execute()

    def write_final(self, shoot: Shoot, snapshot: bytes) -> None:
        """Store the whole document as the shoot's tombstone (see the module docstring)."""
        self._redis.set(_key(shoot.code, "final"), snapshot, pxat=shoot.expires_ms + FINAL_KEEP_MS)

    def load_final(self, code: str) -> bytes | None:
        """The tombstone of the last shoot that had this code, if still kept."""
        raw = self._redis.get(_key(code, "final"))
        return raw if isinstance(raw, bytes) else None

    def has_final(self, code: str) -> bool:
        """Whether a shoot that had this code has ended within the last day."""
        return bool(self._redis.exists(_key(code, "final")))

    def add_archer(self, shoot: Shoot, archer_id: str, record: ArcherRecord) -> None:
        key = _key(shoot.code, "archers")
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, archer_id, json.dumps(asdict(record)))
        pipe.pexpireat(key, shoot.expires_ms)
        pipe.execute()

    def get_archer(self, code: str, archer_id: str) -> ArcherRecord | None:
        raw = self._redis.hget(_key(code, "archers"), archer_id)
        return None if raw is None else ArcherRecord(**json.loads(raw))
