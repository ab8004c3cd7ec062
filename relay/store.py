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
shoot stops writing at once.

Ownership. Several relays may share one Redis, so one shoot may be wanted by several
processes; only one at a time may write its document. Each live shoot has a lease
(``shoot:{1234}:<id>:lease``, ``SET PX``, renewed while the shoot is live, see
:mod:`relay.lease`) holding the token ``"<epoch>:<instance>"``, where the epoch comes from
``INCR shoot:{1234}:<id>:epoch`` in the same script that takes the lease, so it only ever
grows. The fence also checks that the writer's epoch is the current one and that nobody
else holds the lease: a deposed owner (paused past its lease, or cut off from Redis while
another took over) has every append and compaction refused with reason ``deposed``, even
one a worker thread sends long after its actor has stopped. A lease that merely lapsed
while its owner could not reach Redis is no threat: nobody else took it, the epoch is
unchanged, and the owner's writes still go through (and its keeper takes the lease back).

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
``WAITAOF 1 0`` on the same connection (one pipeline; on a cluster, to the node of the
shoot's slot: :func:`~relay.redis_client.script_then_waitaof`), so the answer waits for
the fsync whatever the fsync policy.
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

from .redis_client import open_redis, script_then_waitaof

__all__ = [
    "ArcherRecord",
    "Durability",
    "LeaseHeld",
    "NoCodeAvailable",
    "Owner",
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


# The claim check, shared by every script that writes a shoot's data: KEYS[1] is the
# code's claim and ARGV[1] the writer's shoot id. Answers nil when the shoot still holds
# its code, else why not.
_CLAIMED: Final = """
local function unclaimed()
  local meta = redis.call('GET', KEYS[1])
  if not meta then return 'ended' end
  local ok, shoot = pcall(cjson.decode, meta)
  if not ok or type(shoot) ~= 'table' or shoot['shoot_id'] ~= ARGV[1] then
    return 'replaced'
  end
  return nil
end
"""

# The fence of every write of a shoot's document: the claim check, then ownership.
# KEYS[2] is the lease, KEYS[3] the epoch; ARGV[2] the writer's token, ARGV[3] its epoch.
# A lease held by someone else, or an epoch that moved on, means the writer was deposed.
_FENCE: Final = (
    _CLAIMED
    + """
local function fenced()
  local refused = unclaimed()
  if refused then return refused end
  local holder = redis.call('GET', KEYS[2])
  if holder ~= ARGV[2] and (holder or redis.call('GET', KEYS[3]) ~= ARGV[3]) then
    return 'deposed'
  end
  return nil
end
"""
)

# KEYS: claim, lease, epoch, log.  ARGV: shoot id, token, epoch, keep-until (ms), update...
_APPEND: Final = (
    _FENCE
    + """
local refused = fenced()
if refused then return {0, refused} end
local id
for i = 5, #ARGV do id = redis.call('XADD', KEYS[4], '*', 'u', ARGV[i]) end
redis.call('PEXPIREAT', KEYS[4], ARGV[4])
return {1, id, redis.call('XLEN', KEYS[4])}
"""
)

# KEYS: claim, lease, epoch, snapshot, log.
# ARGV: shoot id, token, epoch, keep-until (ms), snapshot, through id.
_COMPACT: Final = (
    _FENCE
    + """
local refused = fenced()
if refused then return {0, refused} end
redis.call('SET', KEYS[4], ARGV[5], 'PXAT', ARGV[4])
redis.call('XTRIM', KEYS[5], 'MINID', ARGV[6])
redis.call('XDEL', KEYS[5], ARGV[6])
return {1}
"""
)

# KEYS: claim, lease, epoch.  ARGV: shoot id, instance, lease ms, keep-until (ms).
# Answers {1, epoch} when taken, {2, holder, pttl} when someone holds it, {0, why} when
# the shoot no longer holds its code. The INCR and the SET are one step: a separate INCR
# then SET NX can move the epoch backwards.
_ACQUIRE: Final = (
    _CLAIMED
    + """
local refused = unclaimed()
if refused then return {0, refused} end
local holder = redis.call('GET', KEYS[2])
if holder then return {2, holder, redis.call('PTTL', KEYS[2])} end
local epoch = redis.call('INCR', KEYS[3])
redis.call('PEXPIREAT', KEYS[3], ARGV[4])
redis.call('SET', KEYS[2], epoch .. ':' .. ARGV[2], 'PX', ARGV[3])
return {1, epoch}
"""
)

# KEYS: lease, epoch.  ARGV: token, epoch, lease ms. Extends the lease, or takes it back
# when it lapsed and nobody took it since (the epoch is still ours); 0 when deposed.
_RENEW: Final = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if not holder and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0
"""

# KEYS: lease.  ARGV: token.
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: claim, latest.  ARGV: shoot JSON, end (ms), keep-until (ms).
_CLAIM: Final = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PXAT', ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PXAT', ARGV[3])
return 1
"""


@dataclass(frozen=True, slots=True)
class Owner:
    """Who may write a shoot: the epoch of its lease and the instance holding it."""

    epoch: int
    instance: str

    @property
    def token(self) -> str:
        """What the lease key holds while this owner has it."""
        return f"{self.epoch}:{self.instance}"


@dataclass(frozen=True, slots=True)
class LeaseHeld:
    """Another instance holds the shoot's lease (``holder``) for ``pttl_ms`` more."""

    holder: str
    pttl_ms: int


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _update(fields: Any) -> bytes:
    """The update in a log entry's fields: a dict, or the raw ``[field, value, ...]``
    list a Redis Cluster transaction returns (redis-py does not parse replies there)."""
    if isinstance(fields, dict):
        return bytes(fields[b"u"])
    pairs = dict(zip(fields[::2], fields[1::2], strict=True))
    return bytes(pairs[b"u"])


class RedisStore:
    """Blocking Redis calls, each run on a worker thread by :meth:`call`.

    Args:
        url: A ``redis://`` URL, or ``redis+cluster://`` for a Redis Cluster
            (:mod:`relay.redis_client`).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._redis = open_redis(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=10
        )
        self._append = self._redis.register_script(_APPEND)
        self._compact = self._redis.register_script(_COMPACT)
        self._claim_script = self._redis.register_script(_CLAIM)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
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
        log = [(_text(entry_id), _update(fields)) for entry_id, fields in entries]
        # Data written before it was keyed by shoot id (shoot:{code}:snapshot|log|archers)
        # belongs to the live shoot with this code: the code could not be reused before
        # those keys expired with it. Read it too until the last such shoot has ended
        # (a day after this layout was deployed); Yjs updates applied twice change nothing.
        old = [(f"old-{_text(entry_id)}", _update(fields)) for entry_id, fields in old_entries]
        if old_snapshot is not None:
            old.insert(0, ("old-snapshot", old_snapshot))
        records = {
            aid.decode(): ArcherRecord(**json.loads(raw))
            for aid, raw in {**old_archers, **archers}.items()
        }
        return StoredShoot(shoot, snapshot, old + log, records)

    def _fence_keys(self, shoot: Shoot) -> list[str]:
        return [_key(shoot.code, "meta"), _data_key(shoot, "lease"), _data_key(shoot, "epoch")]

    def acquire_lease(self, shoot: Shoot, instance: str, lease_ms: int) -> Owner | LeaseHeld:
        """Take the shoot's lease with the next epoch, unless someone holds it.

        Raises:
            ShootFenced: the shoot no longer holds its code.
        """
        args: list[str | int] = [shoot.shoot_id, instance, lease_ms, _kept_until(shoot)]
        result = self._acquire(keys=self._fence_keys(shoot), args=args)
        if int(result[0]) == 1:
            return Owner(int(result[1]), instance)
        if int(result[0]) == 2:
            return LeaseHeld(_text(result[1]), int(result[2]))
        raise ShootFenced(shoot.code, _text(result[1]))

    def renew_lease(self, shoot: Shoot, owner: Owner, lease_ms: int) -> bool:
        """Extend the lease (or take it back if it lapsed untaken); False once deposed."""
        keys = [_data_key(shoot, "lease"), _data_key(shoot, "epoch")]
        return bool(self._renew(keys=keys, args=[owner.token, owner.epoch, lease_ms]))

    def release_lease(self, shoot: Shoot, owner: Owner) -> None:
        """Give the lease up (if still ours), so the next owner need not wait for it."""
        self._release(keys=[_data_key(shoot, "lease")], args=[owner.token])

    def lease_holder(self, shoot: Shoot) -> str | None:
        """The token of whoever holds the shoot's lease, if anyone does."""
        raw = self._redis.get(_data_key(shoot, "lease"))
        return None if raw is None else _text(raw)

    def append(self, shoot: Shoot, owner: Owner, updates: Sequence[bytes]) -> tuple[str, int]:
        """Append updates to the shoot's log in one round trip, fenced by its shoot id and
        its owner's lease (see the module docstring).

        Returns:
            The last entry's id and the log's length.

        Raises:
            ShootFenced: the shoot no longer holds its code, or ``owner`` was deposed;
                nothing was written.
            StoreUnavailable: Redis did not confirm the fsync in time (``WAITAOF``); the
                entries may be there, and a retry appends them again, which is harmless
                (applying a Yjs update twice changes nothing).
        """
        waitaof = self._durability().waitaof  # asked before writing, so a failure here
        keys = [*self._fence_keys(shoot), _data_key(shoot, "log")]  # leaves nothing behind
        fence: list[str | int | bytes] = [shoot.shoot_id, owner.token, owner.epoch]
        args = [*fence, _kept_until(shoot), *updates]
        if not waitaof:
            result = self._append(keys=keys, args=args)
        else:
            result, waited = script_then_waitaof(
                self._redis, self._append, keys, args, WAITAOF_TIMEOUT_MS
            )
            if isinstance(result, Exception):
                raise result
        if int(result[0]) != 1:
            raise ShootFenced(shoot.code, _text(result[1]))
        if waitaof:
            self._check_fsync(waited)
        return _text(result[1]), int(result[2])

    def _check_fsync(self, waited: Any) -> None:
        if isinstance(waited, redis.ResponseError):
            # The append itself went through. A server swapped for one without WAITAOF,
            # or with the append-only file turned off, must not make us append again.
            log.warning("WAITAOF refused (%s); acks no longer wait for the fsync", waited)
            assert self.durability is not None
            self.durability = Durability(
                self.durability.version, False, self.durability.appendfsync, False
            )
            return
        if isinstance(waited, Exception):
            raise waited
        if int(waited[0]) < 1:
            raise StoreUnavailable("Redis did not confirm the write on disk in time.")

    def compact(self, shoot: Shoot, owner: Owner, snapshot: bytes, through_id: str) -> None:
        """Replace the snapshot and drop log entries it covers (up to ``through_id``).

        Raises:
            ShootFenced: the shoot no longer holds its code, or ``owner`` was deposed;
                nothing was written.
        """
        keys = [*self._fence_keys(shoot), _data_key(shoot, "snapshot"), _data_key(shoot, "log")]
        args: list[str | int | bytes] = [shoot.shoot_id, owner.token, owner.epoch]
        args += [_kept_until(shoot), snapshot, through_id]
        result = self._compact(keys=keys, args=args)
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
