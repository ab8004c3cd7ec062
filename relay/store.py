"""Persistence of shoots in Redis, through redis-py on worker threads.

Key layout. Every key of a code carries the code as its hash tag, so a Redis Cluster keeps
a shoot's keys (and the claim that fences them) on one slot, and one Lua script may touch
them all::

    shoot:{1234}:meta            JSON of the live Shoot: the code's claim (SET NX), until its end
    shoot:{1234}:latest          JSON of the newest shoot that had this code, until end + 24 h
    shoot:{1234}:<id>:archers    hash  archer id -> JSON {token_sha256, name, created_ms}, until end
    shoot:{1234}:<id>:names      hash  normalised display name -> "<archer id> <claimed ms>",
                                 until end (:mod:`relay.names`)
    shoot:{1234}:<id>:snapshot   the compacted Yjs state, until end + 24 h
    shoot:{1234}:<id>:log        stream of Yjs updates appended since the snapshot (field "u")
    shoot:{1234}:<id>:lease      "<epoch>:<instance>" of the shoot's owner (PX, renewed)
    shoot:{1234}:<id>:epoch      the last epoch handed out (only grows)
    shoot:{1234}:<id>:inbox      stream of requests followers forward to the owner
    shoot:{1234}:<id>:replies:<instance>  stream of the owner's answers to one follower

The key names are made in :mod:`relay.keys`, the scripts are in :mod:`relay.scripts`, and
what the store returns and raises is in :mod:`relay.records`; this module makes the calls
that claim codes and load, append to and compact a shoot's document. The rest are mixed in
from modules of their own: the lease calls (who owns a shoot) from
:mod:`relay.store_leases`, the archers' records and name claims from
:mod:`relay.store_archers`, and the calls only followers and forwarded requests need from
:mod:`relay.store_streams`, whose blocking reads (tailing logs, owners' inboxes) use
connections of their own (:mod:`relay.streams`, :mod:`relay.hub`).

A shoot's data is keyed by its shoot id, not only its code: codes are reused (9,000 of
them), and a write of a shoot that has ended must never land in the next shoot with the
same code. On top of that, every append and compaction runs as a Lua script that first
checks, atomically, that the code's claim still names this shoot id
(:data:`relay.scripts.FENCE`); the script answers "fenced" instead of writing when it does
not, so an actor that outlived its shoot stops writing at once. The fence also checks the
writer's lease and epoch (the ownership of a shoot, see :mod:`relay.store_leases`): a
deposed owner has every append and compaction refused with reason ``deposed``.

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
pipeline, so one thread hop carries a whole batch (about 130 µs per hop; a script is
cheaper than a MULTI pipeline from 10 entries up). The exception is the append, the one
call every write makes: :meth:`RedisStore.append_now` sends the same script from the
event loop (:mod:`relay.redis_wire`) when Redis is one plain server, which takes the hop
and redis-py's machinery off every write. Connection failures surface as
:class:`StoreUnavailable`, the one Redis error type the rest of the relay knows.

An owner's start of a shoot (its meta, lease, document and inbox) is one such blocking
call as well, so one hop: :mod:`relay.store_start`.

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
from dataclasses import asdict
from typing import Any, Final, ParamSpec, TypeVar, cast

import redis
import trio
from redis.exceptions import NoScriptError

from sync.models import Shoot

from . import scripts
from .keys import code_key as _key
from .keys import data_key as _data_key
from .keys import fence_keys
from .keys import kept_until as _kept_until
from .records import (
    ArcherRecord,
    Durability,
    LeaseHeld,
    NoCodeAvailable,
    Owner,
    ShootFenced,
    StoredShoot,
    StoreUnavailable,
    parse_version,
)
from .redis_client import is_cluster_url, open_redis, script_then_waitaof
from .redis_wire import Arg, Wire
from .store_archers import ArcherCalls
from .store_leases import LeaseCalls
from .store_start import StartCalls
from .store_streams import EMPTY_UPDATE, INBOX_CONSUMER, INBOX_GROUP, StreamCalls

__all__ = [
    "INBOX_CONSUMER",
    "INBOX_GROUP",
    "ArcherRecord",
    "Durability",
    "LeaseHeld",
    "NoCodeAvailable",
    "Owner",
    "RedisStore",
    "ShootFenced",
    "StoreUnavailable",
    "StoredShoot",
    "parse_version",
]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

CODES: Final = range(1000, 10000)
RANDOM_ATTEMPTS: Final = 16
#: How long an append waits for Redis to confirm the fsync (``WAITAOF``), in ms.
WAITAOF_TIMEOUT_MS: Final = 1_000
#: How long connecting to Redis, and each command, may take.
REDIS_TIMEOUT_S: Final = 2.0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: Any) -> dict[bytes, bytes]:
    """A log entry's fields: redis-py's dict, or the raw ``[field, value, ...]`` list a
    Redis Cluster transaction returns (redis-py does not parse replies there)."""
    if isinstance(raw, dict):
        return raw
    return dict(zip(raw[::2], raw[1::2], strict=True))


async def _scripted(wire: Wire, source: str, commands: list[list[Arg]]) -> list[Any]:
    """Send ``commands`` (``EVALSHA`` of ``source``'s script, and what follows it) on the
    wire. A restarted Redis has lost its scripts and ran none of them: the script is
    loaded, and the commands sent again."""
    answers = await wire.execute(commands)
    if any(isinstance(answer, NoScriptError) for answer in answers):
        await wire.execute([["SCRIPT", "LOAD", source]])
        answers = await wire.execute(commands)
    return answers


class RedisStore(LeaseCalls, ArcherCalls, StartCalls, StreamCalls):
    """Blocking Redis calls, each run on a worker thread by :meth:`call`.

    Attributes:
        cluster: Whether Redis is a cluster, where one command may name keys of one slot
            only: then each shoot's streams are read by a reader of its own
            (:mod:`relay.hub`) rather than one per instance.

    Args:
        url: A ``redis://`` URL, or ``redis+cluster://`` for a Redis Cluster
            (:mod:`relay.redis_client`).
    """

    cluster: bool = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.cluster = is_cluster_url(url)
        # A Redis Cluster's client answers the same commands, each routed to its key's node.
        self._redis = cast(
            redis.Redis,
            open_redis(
                url,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
                health_check_interval=10,
            ),
        )
        self._append = self._redis.register_script(scripts.APPEND)
        self._compact = self._redis.register_script(scripts.COMPACT)
        self._claim_script = self._redis.register_script(scripts.CLAIM)
        self._leases_init()
        self._archers_init()
        self._streams_init()
        # The append goes out from the event loop where it can (:meth:`append_now`).
        self._wire = None if self.cluster else Wire.from_url(url, timeout_s=REDIS_TIMEOUT_S)
        self.durability: Durability | None = None
        """What Redis promises: asked at start (:meth:`learn_durability`), or at the first
        append if Redis was down then (the relay starts anyway)."""

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
        if self._wire is not None:
            self._wire.close()

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

    def learn_durability(self) -> Durability:
        """What Redis promises, asked once and logged once. Asked at start, so the first
        appends of many shoots do not each ask it, and each go through a thread to do so
        (:meth:`append_now` sends from the event loop only once it is known)."""
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
        return self.load_document(shoot)

    def load_document(self, shoot: Shoot) -> StoredShoot:
        """:meth:`load_shoot` for a shoot whose meta the caller has read already."""
        code = shoot.code
        pipe = self._redis.pipeline(transaction=True)
        for key in (_data_key(shoot, "snapshot"), _key(code, "snapshot")):
            pipe.get(key)
        for key in (_data_key(shoot, "log"), _key(code, "log")):
            pipe.xrange(key)
        for key in (_data_key(shoot, "archers"), _key(code, "archers")):
            pipe.hgetall(key)
        snapshot, old_snapshot, entries, old_entries, archers, old_archers = pipe.execute()
        entries = [(_text(entry_id), _fields(raw)) for entry_id, raw in entries]
        # Markers (compaction's "c", a released lease's "r", a notice "n") hold no update.
        log = [
            (entry_id, fields[b"u"])
            for entry_id, fields in entries
            if not (b"c" in fields or b"r" in fields or b"n" in fields)
        ]
        log_end = entries[-1][0] if entries else "0-0"
        # Data written before it was keyed by shoot id (shoot:{code}:snapshot|log|archers)
        # belongs to the live shoot with this code: the code could not be reused before
        # those keys expired with it. Read it too until the last such shoot has ended
        # (a day after this layout was deployed); Yjs updates applied twice change nothing.
        old = [(f"old-{_text(entry_id)}", _fields(raw)[b"u"]) for entry_id, raw in old_entries]
        if old_snapshot is not None:
            old.insert(0, ("old-snapshot", old_snapshot))
        records = {
            aid.decode(): ArcherRecord(**json.loads(raw))
            for aid, raw in {**old_archers, **archers}.items()
        }
        return StoredShoot(shoot, snapshot, old + log, records, log_end)

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
        waitaof = self.learn_durability().waitaof  # asked before writing, so a failure here
        keys, args = self._append_call(shoot, owner, updates)  # leaves nothing behind
        if not waitaof:
            return self._appended(shoot, self._append(keys=keys, args=args), None)
        result, waited = script_then_waitaof(
            self._redis, self._append, keys, args, WAITAOF_TIMEOUT_MS
        )
        return self._appended(shoot, result, waited)

    async def append_now(
        self, shoot: Shoot, owner: Owner, updates: Sequence[bytes]
    ) -> tuple[str, int]:
        """:meth:`append`, called from the event loop: sent from there when the store has
        a :class:`~relay.redis_wire.Wire` (one plain server) and knows what Redis promises
        (the first append asks it, on a worker thread), else on a worker thread.

        Raises:
            ShootFenced: as :meth:`append`.
            StoreUnavailable: as :meth:`append`, and for any Redis error.
        """
        wire, durability = self._wire, self.durability
        if wire is None or durability is None:
            return await self.call(self.append, shoot, owner, updates)
        keys, args = self._append_call(shoot, owner, updates)
        command: list[Arg] = ["EVALSHA", self._append.sha, len(keys), *keys, *args]
        commands = [command]
        if durability.waitaof:
            commands.append(["WAITAOF", 1, 0, WAITAOF_TIMEOUT_MS])
        answers = await _scripted(wire, scripts.APPEND, commands)
        try:
            waited = answers[1] if durability.waitaof else None
            return self._appended(shoot, answers[0], waited)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc

    async def renew_leases_now(
        self, leases: Sequence[tuple[Shoot, Owner]], lease_ms: int
    ) -> list[bool]:
        """:meth:`renew_leases`, called from the event loop: sent from there, as the
        append is, when the store has a :class:`~relay.redis_wire.Wire`, else on a worker
        thread. The relay renews every lease it holds three times a lease (every second by
        default): redis-py's pipeline on a thread took about 28 ms of CPU for 1,000
        leases, holding the interpreter's lock against the event loop; this about 9 ms
        (``benchmarks/README.md``).

        Raises:
            StoreUnavailable: Redis is out of reach, or refused a renewal.
        """
        wire = self._wire
        if wire is None:
            return await self.call(self.renew_leases, leases, lease_ms)
        commands: list[list[Arg]] = []
        for shoot, owner in leases:
            keys, args = self._renew_call(shoot, owner, lease_ms)
            commands.append(["EVALSHA", self._renew.sha, len(keys), *keys, *args])
        answers = await _scripted(wire, scripts.RENEW, commands)
        for answer in answers:
            if isinstance(answer, Exception):
                raise StoreUnavailable(f"Redis: {answer}")
        return [bool(answer) for answer in answers]

    def _append_call(
        self, shoot: Shoot, owner: Owner, updates: Sequence[bytes]
    ) -> tuple[list[str], list[Arg]]:
        keys = [*fence_keys(shoot), _data_key(shoot, "log")]
        args: list[Arg] = [shoot.shoot_id, owner.token, owner.epoch, _kept_until(shoot)]
        return keys, [*args, *updates]

    def _appended(self, shoot: Shoot, result: Any, waited: Any) -> tuple[str, int]:
        """The append script's answer (and ``WAITAOF``'s, if one was sent) as
        :meth:`append` returns it."""
        if isinstance(result, Exception):
            raise result
        if int(result[0]) != 1:
            raise ShootFenced(shoot.code, _text(result[1]))
        if waited is not None:
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
        """Replace the snapshot and drop log entries it covers (up to ``through_id``),
        leaving a marker entry that names ``through_id`` for followers tailing the log.

        Raises:
            ShootFenced: the shoot no longer holds its code, or ``owner`` was deposed;
                nothing was written.
        """
        keys = [*fence_keys(shoot), _data_key(shoot, "snapshot"), _data_key(shoot, "log")]
        args: list[str | int | bytes] = [shoot.shoot_id, owner.token, owner.epoch]
        args += [_kept_until(shoot), snapshot, through_id, EMPTY_UPDATE]
        result = self._compact(keys=keys, args=args)
        if int(result[0]) != 1:
            raise ShootFenced(shoot.code, _text(result[1]))
