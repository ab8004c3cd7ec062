"""Stopping without losing anything: shutdown flushes to Redis, and a shoot that stops
while Redis is away does not leave ``/health`` degraded for ever."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from relay.actor import ShootActor
from relay.config import Settings
from relay.redis_client import open_redis
from relay.redis_server import RedisServer
from relay.server import serve_relay
from relay.store import RedisStore
from sync.document import ShootDocument
from sync.protocol import CLOSE_GOING_AWAY, Ack, Update, Welcome
from tests.wire import Peer, create_shoot, join, peer, register


async def _until_closed(p: Peer) -> int | None:
    try:
        while True:
            await p.receive()
    except trio_websocket.ConnectionClosed as closed:
        return closed.reason.code


def _persisted_arrows(redis_url: str, code: str, archer: str) -> tuple[Any, ...]:
    store = RedisStore(redis_url)
    stored = store.load_shoot(code)
    store.close()
    assert stored is not None
    updates = ([stored.snapshot] if stored.snapshot else []) + [u for _, u in stored.log]
    register_ = ShootDocument.load(updates).register(archer)
    assert register_ is not None
    return register_.state.arrows


def _refuse_writes(redis_url: str, refuse: bool) -> None:
    """Make Redis refuse (or accept again) every write, as a master does that lost its
    replicas: appends fail at once with NOREPLICAS, and no retry can sneak one in."""
    client = open_redis(redis_url)
    client.config_set("min-replicas-to-write", 1 if refuse else 0)
    client.close()


async def test_shutdown_flushes_writes_applied_just_before_it(
    own_redis: RedisServer, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """Writes applied while Redis refused them reach it during shutdown: the actors flush
    after the server stops, with their persisters still running."""
    caplog.set_level(logging.INFO, logger="relay")
    shutdown, stopped = trio.Event(), trio.Event()

    async def run(task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        settings = Settings(host="127.0.0.1", port=0, redis_url=own_redis.url, shutdown_grace_s=10)
        await serve_relay(settings, shutdown=shutdown, task_status=task_status)
        stopped.set()

    with trio.fail_after(40):
        url: str = await nursery.start(run)
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            chris, token = await join(http, code, "Chris")
        async with peer(url, code, archer=chris, token=token) as archer:
            await archer.expect(Welcome)
            await archer.write(1, register(chris, (9,) * 6, device="a", ms=1))
            await archer.expect(Ack)
            _refuse_writes(own_redis.url, True)
            await archer.write(2, register(chris, (9,) * 12, device="a", ms=2))
            while archer.doc.register(chris).state.arrows != (9,) * 12:  # type: ignore[union-attr]
                await archer.expect(Update)  # applied and fanned out, not durable
            shutdown.set()
            assert await _until_closed(archer) == CLOSE_GOING_AWAY
        # Redis takes writes again only once the server has stopped and the relay has moved
        # on to its shoots (it logs that): what reaches Redis now is the actors' own flush.
        while not any("flushing" in r.getMessage() for r in caplog.records):
            await trio.sleep(0.02)
        assert _persisted_arrows(own_redis.url, code, chris) == (9,) * 6
        _refuse_writes(own_redis.url, False)
        await stopped.wait()
    assert _persisted_arrows(own_redis.url, code, chris) == (9,) * 12


async def test_health_recovers_after_a_degraded_shoot_crashes(
    own_redis: RedisServer, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(host="127.0.0.1", port=0, redis_url=own_redis.url, shutdown_grace_s=0.3)
    url: str = await nursery.start(serve_relay, settings)
    original = ShootActor._access

    def buggy(self: ShootActor, archer_id: str | None, token: str | None) -> Any:
        if token == "trigger-the-bug":
            raise RuntimeError("a bug in one message")
        return original(self, archer_id, token)

    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            chris, token = await join(http, code, "Chris")
            async with peer(url, code, archer=chris, token=token) as archer:
                await archer.expect(Welcome)
                await trio.to_thread.run_sync(own_redis.stop)
                await archer.write(1, register(chris, (9,) * 6, device="a"))
                await archer.expect(Update)
                while (await http.get("/health")).json()["degraded_shoots"] != 1:
                    await trio.sleep(0.02)
                monkeypatch.setattr(ShootActor, "_access", buggy)
                async with peer(url, code, archer=chris, token="trigger-the-bug") as p:
                    await _until_closed(p)
                assert await _until_closed(archer) == CLOSE_GOING_AWAY
            await trio.to_thread.run_sync(own_redis.start)
            while (await http.get("/health")).status_code != 200:
                await trio.sleep(0.05)
            body = (await http.get("/health")).json()
            assert body["degraded_shoots"] == 0
            assert "fastshoot_actor_crashes_total 1" in (await http.get("/metrics")).text


async def test_an_idle_shoot_waiting_for_redis_stays_loaded_and_keeps_answering(
    own_redis: RedisServer, nursery: trio.Nursery
) -> None:
    """An idle shoot with writes Redis has not taken is neither unloaded (the writes would
    be gone) nor deaf while it waits: a viewer arriving meanwhile is welcomed at once."""
    settings = Settings(host="127.0.0.1", port=0, redis_url=own_redis.url, idle_timeout_s=0.1)
    url: str = await nursery.start(serve_relay, settings)
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            chris, token = await join(http, code, "Chris")
            async with peer(url, code, archer=chris, token=token) as archer:
                # Subscribed, the shoot stays loaded however long Redis then refuses.
                await archer.expect(Welcome)
                _refuse_writes(own_redis.url, True)
                await archer.write(1, register(chris, (9,) * 6, device="a"))
                await archer.expect(Update)
            # The behaviour under test: idle timeouts pass with the write still waiting.
            deferred = 0
            while deferred < 3:
                text = (await http.get("/metrics")).text
                found = re.search(r"^fastshoot_unloads_deferred_total (\d+)$", text, re.M)
                assert found is not None
                deferred = int(found[1])
                await trio.sleep(0.02)  # polling interval, not synchronisation
            with trio.fail_after(3):
                async with peer(url, code) as viewer:
                    await viewer.expect(Welcome)
                    assert viewer.doc.register(chris).state.arrows == (9,) * 6  # type: ignore[union-attr]
            assert (await http.get("/health")).json()["live_shoots"] == 1
            _refuse_writes(own_redis.url, False)
            while (await http.get("/health")).json()["live_shoots"] != 0:
                await trio.sleep(0.05)
    assert _persisted_arrows(own_redis.url, code, chris) == (9,) * 6


@pytest.mark.parametrize("cluster", [False, True], ids=["one pipeline", "one call each (cluster)"])
async def test_a_stopping_relay_gives_up_the_lease_of_every_shoot_it_owns(
    redis_url: str, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch, cluster: bool
) -> None:
    """At shutdown every owned shoot's lease is given up, so the next relay takes each one
    at once; the shoots stopping together give theirs up together."""
    monkeypatch.setattr(RedisStore, "cluster", cluster)
    released: list[int] = []
    original = RedisStore.release_leases

    def counted(self: RedisStore, leases: Any) -> None:
        released.append(len(leases))
        original(self, leases)

    monkeypatch.setattr(RedisStore, "release_leases", counted)
    shutdown, stopped = trio.Event(), trio.Event()

    async def run(task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        settings = Settings(
            host="127.0.0.1", port=0, redis_url=redis_url, lease_s=30.0, shoot_creates_burst=8
        )
        await serve_relay(settings, shutdown=shutdown, task_status=task_status)
        stopped.set()

    with trio.fail_after(30):
        url: str = await nursery.start(run)
        async with httpx.AsyncClient(base_url=url) as http:
            codes = [(await create_shoot(http))["code"] for _ in range(8)]
            for code in codes:
                await join(http, code, "Chris")  # the relay loads the shoot: it owns it
        shutdown.set()
        await stopped.wait()
    store = RedisStore(redis_url)
    try:
        shoots = [store.load_meta(code) for code in codes]
        assert all(shoot is not None and store.lease_holder(shoot) is None for shoot in shoots)
    finally:
        store.close()
    assert sum(released) == len(codes)
