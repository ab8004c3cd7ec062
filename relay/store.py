"""Persistence of shoots in Redis, through redis-py on worker threads.

Key layout. Every key of a code carries the code as its hash tag, so a Redis Cluster keeps
a shoot's keys (and the claim that fences them) on one slot, and one Lua script may touch
them all::

    shoot:{1234}:meta            JSON of the live Shoot: the code's claim (SET NX), until its end
    shoot:{1234}:latest          JSON of the newest shoot that had this code, until end + 24 h
    shoot:{1234}:<id>:archers    hash  archer id -> JSON {token_sha256, name, created_ms}, until end
    shoot:{1234}:<id>:snapshot   the compacted Yjs state, until end + 24 h
    shoot:{1234}:<id>:log        stream of Yjs updates appended since the snapshot (field "u")

A shoot's data is keyed by its shoot id, not only its code: codes are reused (9,000 of
them), and a write of a shoot that has ended must never land in the next shoot with the
same code. On top of that, every append and compaction runs as a Lua script that first
checks, atomically, that the code's claim still names this shoot id (:data:`_FENCE`); the
script answers "fenced" instead of writing when it does not, so an actor that outlived its
shoot stops writing at once. An ownership lease (several relays on one Redis) will add its
epoch check to the same fence.

Shoots stored before this layout kept their data at ``shoot:{1234}:snapshot|log|archers``;
:meth:`RedisStore.load_shoot` and :meth:`RedisStore.get_archer` still read those keys too,
so a relay upgraded in the middle of a day keeps the shoots that are live. They expire
with their shoots, at the latest a day after the upgrade; the reads can go after that.

After the end, the claim expires and the code is free for a new shoot; the ended shoot's
document stays readable for :data:`~sync.models.ENDED_KEPT_MS` (the final results, read
only), found through ``latest`` until a newer shoot takes the code. Write tokens are not
kept past the end.

redis.asyncio does not run under Trio, so each method below is a plain blocking function
called through ``trio.to_thread.run_sync``; the methods that write send one script or one
pipeline, so one thread hop carries a whole batch (FACTS: ~130 µs per hop; a script is
cheaper than a MULTI pipeline from 10 entries up). Connection failures surface as
:class:`StoreUnavailable`, the one Redis error type the rest of the relay knows.

Durability: what an append promises depends on the server (:class:`Durability`). With
``appendfsync always`` (the embedded Redis) an entry is on disk before the script returns.
On Redis 7.2 and later with the append-only file on, each append is followed by
``WAITAOF 1 0``, so the answer waits for the fsync whatever the fsync policy.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, ParamSpec, TypeVar

import redis
import trio

from sync.models import ENDED_KEPT_MS, Shoot

__all__ = [
    "ArcherRecord",
    "Durability",
    "NoCodeAvailable",
    "RedisStore",
    "ShootFenced",
    "StoreUnavailable",
    "StoredShoot",
]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

CODES: Final = range(1000, 10000)
RANDOM_ATTEMPTS: Final = 16
#: How long an append waits for Redis to confirm the fsync (``WAITAOF``), in ms.
WAITAOF_TIMEOUT_MS: Final = 1_000


class StoreUnavailable(Exception):
    """Redis could not be reached or failed; the caller may retry later."""


class NoCodeAvailable(Exception):
    """All 9,000 join codes are taken by live shoots."""


class ShootFenced(Exception):
    """Redis refused a write: the shoot no longer holds its code (it ended, or a newer
    shoot has the code). Retrying cannot help; what was not written is dropped."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"shoot {code}: {reason}")
        self.reason = reason


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


@dataclass(frozen=True, slots=True)
class Durability:
    """What the Redis behind the store does with a write before answering."""

    version: str
    aof: bool
    """The append-only file is on."""
    appendfsync: str | None
    """``always``, ``everysec`` or ``no``; ``None`` where ``CONFIG GET`` is not allowed."""
    waitaof: bool
    """Appends wait for ``WAITAOF 1 0`` (Redis >= 7.2 with the append-only file on)."""

    def describe(self) -> str:
        if self.waitaof:
            promise = "each ack waits until Redis has fsynced the write (WAITAOF)"
        elif self.aof and self.appendfsync == "always":
            promise = "each ack waits until Redis has fsynced the write (appendfsync always)"
        elif self.aof:
            policy = self.appendfsync or "unknown"
            promise = f"a Redis crash can lose the last second of acks (appendfsync {policy})"
        else:
            promise = "acks are in Redis's memory only (no append-only file)"
        return f"Redis {self.version}: {promise}"


def parse_version(text: str) -> tuple[int, ...]:
    """``"7.0.15"`` -> ``(7, 0, 15)``; parts that are not numbers end the tuple."""
    parts: list[int] = []
    for part in text.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def _key(code: str, part: str) -> str:
    return f"shoot:{{{code}}}:{part}"


def _data_key(shoot: Shoot, part: str) -> str:
    return f"shoot:{{{shoot.code}}}:{shoot.shoot_id}:{part}"


def _kept_until(shoot: Shoot) -> int:
    return shoot.expires_ms + ENDED_KEPT_MS


# The fence, shared by every script that writes a shoot's data: KEYS[1] is the code's
# claim and ARGV[1] the writer's shoot id. Answers nil when the write may go ahead, else
# why not. An ownership lease adds its check here (one more KEYS/ARGV pair: the lease key
# and the writer's "epoch:instance" token), and every writer is fenced by it at once.
_FENCE: Final = """
local function fenced()
  local meta = redis.call('GET', KEYS[1])
  if not meta then return 'ended' end
  local ok, shoot = pcall(cjson.decode, meta)
  if not ok or type(shoot) ~= 'table' or shoot['shoot_id'] ~= ARGV[1] then
    return 'replaced'
  end
  return nil
end
"""

# KEYS: claim, log.  ARGV: shoot id, keep-until (ms), update...
_APPEND: Final = (
    _FENCE
    + """
local refused = fenced()
if refused then return {0, refused} end
local id
for i = 3, #ARGV do id = redis.call('XADD', KEYS[2], '*', 'u', ARGV[i]) end
redis.call('PEXPIREAT', KEYS[2], ARGV[2])
return {1, id, redis.call('XLEN', KEYS[2])}
"""
)

# KEYS: claim, snapshot, log.  ARGV: shoot id, keep-until (ms), snapshot, through id.
_COMPACT: Final = (
    _FENCE
    + """
local refused = fenced()
if refused then return {0, refused} end
redis.call('SET', KEYS[2], ARGV[3], 'PXAT', ARGV[2])
redis.call('XTRIM', KEYS[3], 'MINID', ARGV[4])
redis.call('XDEL', KEYS[3], ARGV[4])
return {1}
"""
)

# KEYS: claim, latest.  ARGV: shoot JSON, end (ms), keep-until (ms).
_CLAIM: Final = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PXAT', ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PXAT', ARGV[3])
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
        self._append = self._redis.register_script(_APPEND)
        self._compact = self._redis.register_script(_COMPACT)
        self._claim_script = self._redis.register_script(_CLAIM)
        self.durability: Durability | None = None
        """What Redis promises, found out at the first append (Redis may be down at
        start, and the relay must start anyway)."""

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

    def detect_durability(self) -> Durability:
        """Ask the server what it does with a write (version, AOF, fsync policy)."""
        server = self._redis.info("server")
        persistence = self._redis.info("persistence")
        version = str(server.get("redis_version", "0"))
        aof = bool(int(persistence.get("aof_enabled", 0)))
        try:
            policy: str | None = _text(self._redis.config_get("appendfsync")["appendfsync"])
        except (redis.ResponseError, KeyError):  # CONFIG disabled (managed Redis)
            policy = None
        waitaof = aof and parse_version(version) >= (7, 2)
        return Durability(version, aof, policy, waitaof)

    def _durability(self) -> Durability:
        if self.durability is None:
            self.durability = self.detect_durability()
            log.info("%s", self.durability.describe())
        return self.durability

    def create_shoot(self, make: Callable[[str], Shoot]) -> Shoot:
        """Atomically claim a free code and store the shoot made for it.

        Tries random codes first (cheap while few are taken), then sweeps all of them, so
        a free code is always found if one exists. A code is free once its live shoot has
        ended, even while that shoot's final results are still kept.

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
        keys = [_key(code, "meta"), _key(code, "latest")]
        if self._claim_script(keys=keys, args=[meta, shoot.expires_ms, _kept_until(shoot)]):
            return shoot
        return None

    def load_meta(self, code: str) -> Shoot | None:
        """The live shoot with this code, else the newest ended one still kept, else None.

        Callers tell the two apart by ``expires_ms``.
        """
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(_key(code, "meta"))
        pipe.get(_key(code, "latest"))
        live, latest = pipe.execute()
        raw = live if live is not None else latest
        return None if raw is None else Shoot(**json.loads(raw))

    def load_shoot(self, code: str) -> StoredShoot | None:
        """The shoot :meth:`load_meta` finds, with its document and archers."""
        shoot = self.load_meta(code)
        if shoot is None:
            return None
        pipe = self._redis.pipeline(transaction=True)
        for key in (_data_key(shoot, "snapshot"), _key(code, "snapshot")):
            pipe.get(key)
        for key in (_data_key(shoot, "log"), _key(code, "log")):
            pipe.xrange(key)
        for key in (_data_key(shoot, "archers"), _key(code, "archers")):
            pipe.hgetall(key)
        snapshot, old_snapshot, entries, old_entries, archers, old_archers = pipe.execute()
        log = [(entry_id.decode(), fields[b"u"]) for entry_id, fields in entries]
        # Data written before it was keyed by shoot id (shoot:{code}:snapshot|log|archers)
        # belongs to the live shoot with this code: the code could not be reused before
        # those keys expired with it. Read it too until the last such shoot has ended
        # (a day after this layout was deployed); Yjs updates applied twice change nothing.
        old = [(f"old-{entry_id.decode()}", fields[b"u"]) for entry_id, fields in old_entries]
        if old_snapshot is not None:
            old.insert(0, ("old-snapshot", old_snapshot))
        records = {
            aid.decode(): ArcherRecord(**json.loads(raw))
            for aid, raw in {**old_archers, **archers}.items()
        }
        return StoredShoot(shoot, snapshot, old + log, records)

    def append(self, shoot: Shoot, updates: Sequence[bytes]) -> tuple[str, int]:
        """Append updates to the shoot's log in one round trip, fenced by its shoot id.

        Returns:
            The last entry's id and the log's length.

        Raises:
            ShootFenced: the shoot no longer holds its code; nothing was written.
            StoreUnavailable: Redis did not confirm the fsync in time (``WAITAOF``); the
                entries may be there, and a retry appends them again, which is harmless
                (applying a Yjs update twice changes nothing).
        """
        waitaof = self._durability().waitaof  # asked before writing, so a failure here
        keys = [_key(shoot.code, "meta"), _data_key(shoot, "log")]  # leaves nothing behind
        result = self._append(keys=keys, args=[shoot.shoot_id, _kept_until(shoot), *updates])
        if int(result[0]) != 1:
            raise ShootFenced(shoot.code, _text(result[1]))
        if waitaof:
            self._wait_for_fsync()
        return _text(result[1]), int(result[2])

    def _wait_for_fsync(self) -> None:
        try:
            local, _ = self._redis.execute_command(  # type: ignore[no-untyped-call]
                "WAITAOF", 1, 0, WAITAOF_TIMEOUT_MS
            )
        except redis.ResponseError as exc:
            # The append itself went through. A server swapped for one without WAITAOF,
            # or with the append-only file turned off, must not make us append again.
            log.warning("WAITAOF refused (%s); acks no longer wait for the fsync", exc)
            assert self.durability is not None
            self.durability = Durability(
                self.durability.version, False, self.durability.appendfsync, False
            )
            return
        if int(local) < 1:
            raise StoreUnavailable("Redis did not confirm the write on disk in time.")

    def compact(self, shoot: Shoot, snapshot: bytes, through_id: str) -> None:
        """Replace the snapshot and drop log entries it covers (up to ``through_id``).

        Raises:
            ShootFenced: the shoot no longer holds its code; nothing was written.
        """
        keys = [
            _key(shoot.code, "meta"),
            _data_key(shoot, "snapshot"),
            _data_key(shoot, "log"),
        ]
        result = self._compact(
            keys=keys, args=[shoot.shoot_id, _kept_until(shoot), snapshot, through_id]
        )
        if int(result[0]) != 1:
            raise ShootFenced(shoot.code, _text(result[1]))

    def add_archer(self, shoot: Shoot, archer_id: str, record: ArcherRecord) -> None:
        key = _data_key(shoot, "archers")
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, archer_id, json.dumps(asdict(record)))
        pipe.pexpireat(key, shoot.expires_ms)
        pipe.execute()

    def get_archer(self, shoot: Shoot, archer_id: str) -> ArcherRecord | None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(_data_key(shoot, "archers"), archer_id)
        pipe.hget(_key(shoot.code, "archers"), archer_id)  # the layout before shoot ids
        raw, old = pipe.execute()
        raw = raw if raw is not None else old
        return None if raw is None else ArcherRecord(**json.loads(raw))
