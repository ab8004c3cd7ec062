"""A shoot's start by its owner: one thread hop, and every rule of the steps it replaced."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

from relay.config import Settings
from relay.messages import Read
from relay.metrics import Metrics
from relay.redis_client import open_redis
from relay.registry import ShootExpired, ShootRegistry, UnknownShoot, open_registry
from relay.store import INBOX_CONSUMER, INBOX_GROUP, LeaseHeld, Owner, RedisStore, ShootFenced
from relay.store_start import Started
from sync.models import Shoot
from tests.wire import now_ms

LEASE_MS = 60_000


def _shoot(code: str) -> Shoot:
    now = now_ms()
    return Shoot(code, uuid.uuid4().hex, "", "Sam", now, now + 3_600_000, "UTC")


def _count_calls(store: RedisStore) -> list[str]:
    """Record the name of every blocking method run through ``store.call`` (each is one
    hop to a worker thread) from now on."""
    calls: list[str] = []
    real_call = store.call

    async def counted(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(fn.__name__)
        return await real_call(fn, *args, **kwargs)

    store.call = counted  # type: ignore[method-assign]
    return calls


async def _read(registry: ShootRegistry, shoot: Shoot) -> None:
    read = Read()
    await registry.send(shoot.code, read)
    assert (await read.reply.wait()).shoot.shoot_id == shoot.shoot_id


async def test_an_owner_starts_a_shoot_in_one_thread_hop(redis_url: str) -> None:
    """The regression guard of the reconnect storm's CPU: a relay taking back a shoot
    gets meta, lease, document and inbox in one call, and nothing the actor or its inbox
    server does at start adds one."""
    store = RedisStore(redis_url)
    try:
        shoot = store.create_shoot(_shoot)
        settings = Settings(redis_url=redis_url, lease_s=60.0)  # no renewal during the test
        with trio.fail_after(10):
            # The first start writes the shoot's meta into its document (an append).
            async with open_registry(store, settings, Metrics()) as registry:
                await _read(registry, shoot)
            async with open_registry(store, settings, Metrics()) as registry:
                calls = _count_calls(store)
                await _read(registry, shoot)
                assert registry.owns(shoot.code)
                await trio.testing.wait_all_tasks_blocked()  # the inbox server has started
                assert calls == ["take_shoot"]
                holder = store.lease_holder(shoot)
                assert holder is not None
                assert holder.endswith(f":{registry.instance}")
    finally:
        store.close()


def test_a_held_lease_is_answered_without_loading_or_opening_anything(redis_url: str) -> None:
    store = RedisStore(redis_url)
    client = open_redis(redis_url)
    try:
        shoot = store.create_shoot(_shoot)
        taken, started = store.take_shoot(shoot.code, "a", LEASE_MS, now_ms())
        assert taken == shoot
        assert isinstance(started, Started)
        assert started.owner == Owner(1, "a")
        assert started.inbox_pending == []
        assert started.stored.shoot == shoot
        client.delete(store.inbox_key(shoot))
        followed, held = store.take_shoot(shoot.code, "b", LEASE_MS, now_ms())
        assert followed == shoot
        assert isinstance(held, LeaseHeld)
        assert held.holder == "1:a"
        assert 0 < held.pttl_ms <= LEASE_MS
        assert not client.exists(store.inbox_key(shoot))  # a follower has no inbox to open
    finally:
        client.close()
        store.close()


def test_unknown_ended_and_fenced_shoots_take_no_lease(redis_url: str) -> None:
    store = RedisStore(redis_url)
    client = open_redis(redis_url)
    try:
        with pytest.raises(UnknownShoot):
            store.take_shoot("1234", "a", LEASE_MS, now_ms())
        shoot = store.create_shoot(_shoot)
        with pytest.raises(ShootExpired):
            store.take_shoot(shoot.code, "a", LEASE_MS, shoot.expires_ms)
        assert store.lease_holder(shoot) is None
        # Only ``latest`` is left once the claim is gone: the lease script refuses it.
        client.delete(f"shoot:{{{shoot.code}}}:meta")
        with pytest.raises(ShootFenced):
            store.take_shoot(shoot.code, "a", LEASE_MS, now_ms())
        assert store.lease_holder(shoot) is None
    finally:
        client.close()
        store.close()


def test_a_shoot_whose_data_does_not_decode_gives_its_lease_back(redis_url: str) -> None:
    """The error goes up (the registry refuses the shoot as unreadable), and the lease won
    on the way is released at once rather than blocking other instances until it expires."""
    store = RedisStore(redis_url)
    client = open_redis(redis_url)
    try:
        shoot = store.create_shoot(_shoot)
        client.hset(f"shoot:{{{shoot.code}}}:{shoot.shoot_id}:archers", "a1", "{not json")
        with pytest.raises(json.JSONDecodeError):
            store.take_shoot(shoot.code, "a", LEASE_MS, now_ms())
        assert store.lease_holder(shoot) is None
    finally:
        client.close()
        store.close()


def test_a_new_owner_starts_from_what_the_old_one_read_and_never_answered(
    redis_url: str,
) -> None:
    store = RedisStore(redis_url)
    client = open_redis(redis_url)
    try:
        shoot = store.create_shoot(_shoot)
        _, first = store.take_shoot(shoot.code, "a", LEASE_MS, now_ms())
        assert isinstance(first, Started)
        entry_id = store.forward(shoot, {"k": "x", "i": "f1", "f": "b", "a": "a1"})
        key = store.inbox_key(shoot)
        client.xreadgroup(INBOX_GROUP, INBOX_CONSUMER, {key: ">"})  # read, never answered
        store.release_lease(shoot, first.owner)
        _, second = store.take_shoot(shoot.code, "b", LEASE_MS, now_ms())
        assert isinstance(second, Started)
        assert second.owner == Owner(2, "b")
        assert [pending_id for pending_id, _ in second.inbox_pending] == [entry_id]
        # Taking over from a follower (the lease already won) reads the same.
        again = store.load_owned(shoot.code, second.owner, now_ms())
        assert again.inbox_pending == second.inbox_pending
        assert again.stored == second.stored
    finally:
        client.close()
        store.close()
