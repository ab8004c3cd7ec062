"""What survives: relay restarts, Redis outages. Nothing acknowledged is ever lost."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from relay.config import Settings
from relay.redis_client import open_redis
from relay.redis_server import RedisServer
from relay.server import serve_relay
from relay.store import RedisStore
from sync.document import ShootDocument
from sync.protocol import Ack, Update, Welcome
from tests.wire import create_shoot, join, peer, register


async def _start(
    nursery: trio.Nursery, redis_url: str, port: int = 0, **tuning: Any
) -> tuple[str, trio.CancelScope]:
    scope = trio.CancelScope()

    async def run(task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            settings = Settings(host="127.0.0.1", port=port, redis_url=redis_url, **tuning)
            await serve_relay(settings, task_status=task_status)

    url: str = await nursery.start(run)
    return url, scope


async def test_relay_restart_brings_everything_back(redis_url: str, nursery: trio.Nursery) -> None:
    with trio.fail_after(20):
        url, scope = await _start(nursery, redis_url)
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            chris, token = await join(http, code, "Chris")
        async with peer(url, code, archer=chris, token=token) as archer:
            await archer.expect(Welcome)
            for n in range(1, 4):
                await archer.write(n, register(chris, (9,) * (6 * n), device="a", ms=1_000 * n))
                await archer.expect(Ack)
            replica_sv = archer.doc.state_vector()
            before = archer.doc.registers()
        scope.cancel()

        port = int(url.rsplit(":", 1)[1])
        url2, _ = await _start(nursery, redis_url, port)
        assert url2 == url
        async with peer(url, code, sv=replica_sv) as viewer:
            welcome = await viewer.expect(Welcome)
            assert welcome.reset is False  # everything it had was persisted
        async with peer(url, code) as fresh:
            await fresh.expect(Welcome)
            assert fresh.doc.registers() == before
            assert fresh.doc.register(chris).state.arrows == (9,) * 18  # type: ignore[union-attr]


async def test_redis_outage_keeps_the_shoot_live_and_loses_nothing(
    own_redis: RedisServer, nursery: trio.Nursery
) -> None:
    with trio.fail_after(30):
        url, _ = await _start(nursery, own_redis.url)
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            chris, token = await join(http, code, "Chris")
            async with (
                peer(url, code, archer=chris, token=token) as archer,
                peer(url, code) as viewer,
            ):
                await archer.expect(Welcome)
                await viewer.expect(Welcome)
                await archer.write(1, register(chris, (9,) * 6, device="a", ms=1_000))
                await archer.expect(Ack)

                await trio.to_thread.run_sync(own_redis.stop)
                await archer.write(2, register(chris, (9,) * 12, device="a", ms=2_000))
                await archer.write(3, register(chris, (9,) * 18, device="a", ms=3_000))
                # Fan-out goes on without Redis...
                while viewer.doc.register(chris).state.arrows != (9,) * 18:  # type: ignore[union-attr]
                    await viewer.expect(Update)
                # ...health says so, and no ack is given while nothing is durable.
                health = await http.get("/health")
                assert health.status_code == 503
                assert health.json()["redis"] is False
                assert not any(isinstance(m, Ack) and m.id > 1 for m in archer.seen)

                await trio.to_thread.run_sync(own_redis.start)
                acks = {(await archer.expect(Ack)).id, (await archer.expect(Ack)).id}
                assert acks == {2, 3}

                async def healthy() -> bool:
                    return (await http.get("/health")).status_code == 200

                with trio.fail_after(10):
                    while not await healthy():
                        await trio.sleep(0.05)

        store = RedisStore(own_redis.url)
        stored = store.load_shoot(code)
        store.close()
        assert stored is not None
        updates = ([stored.snapshot] if stored.snapshot else []) + [u for _, u in stored.log]
        persisted = ShootDocument.load(updates)
        assert persisted.register(chris).state.arrows == (9,) * 18  # type: ignore[union-attr]


async def test_archers_of_a_loaded_shoot_reconnect_while_redis_is_away(
    own_redis: RedisServer, nursery: trio.Nursery
) -> None:
    with trio.fail_after(20):
        url, _ = await _start(nursery, own_redis.url)
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            chris, token = await join(http, code, "Chris")
        await trio.to_thread.run_sync(own_redis.stop)
        async with peer(url, code, archer=chris, token=token) as archer:
            assert (await archer.expect(Welcome)).archer == chris
            await archer.write(1, register(chris, (9,) * 6, device="a"))
            await archer.expect(Update)
            async with peer(url, code, archer=chris, token="wrong") as intruder:
                with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                    await intruder.expect(Welcome)
                assert closed.value.reason.code == 4401
            await trio.to_thread.run_sync(own_redis.start)
            assert (await archer.expect(Ack)).id == 1


async def test_idle_shoots_are_unloaded_and_come_back(
    redis_url: str, nursery: trio.Nursery
) -> None:
    with trio.fail_after(20):
        url, _ = await _start(nursery, redis_url, idle_timeout_s=0.2)
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            chris, token = await join(http, code, "Chris")
            async with peer(url, code, archer=chris, token=token) as archer:
                await archer.expect(Welcome)
                await archer.write(1, register(chris, (9,) * 6, device="a"))
                await archer.expect(Ack)
                # A connected shoot stays loaded past the idle timeout.
                await trio.sleep(0.5)  # the behaviour under test is "nothing happens"
                assert (await http.get("/health")).json()["live_shoots"] == 1
            while (await http.get("/health")).json()["live_shoots"] != 0:
                await trio.sleep(0.05)
            body = (await http.get(f"/api/shoots/{code}")).json()
            assert body["archers"][chris]["arrows"] == [9] * 6


async def test_the_log_is_compacted_into_the_snapshot(
    redis_url: str, nursery: trio.Nursery
) -> None:
    with trio.fail_after(20):
        url, scope = await _start(nursery, redis_url, compact_every=5)
        async with httpx.AsyncClient(base_url=url) as http:
            created = await create_shoot(http)
            code, shoot_id = created["code"], created["shoot_id"]
            chris, token = await join(http, code, "Chris")
        async with peer(url, code, archer=chris, token=token) as archer:
            await archer.expect(Welcome)
            for n in range(1, 13):
                await archer.write(n, register(chris, (9,) * n, device="a", ms=n))
                await archer.expect(Ack)
        client = open_redis(redis_url)
        assert client.exists(f"shoot:{{{code}}}:{shoot_id}:snapshot")
        assert client.xlen(f"shoot:{{{code}}}:{shoot_id}:log") < 5
        assert client.pttl(f"shoot:{{{code}}}:{shoot_id}:snapshot") > 0  # expires in time
        client.close()
        scope.cancel()
        port = int(url.rsplit(":", 1)[1])
        await _start(nursery, redis_url, port)
        async with peer(url, code) as viewer:
            await viewer.expect(Welcome)
            assert viewer.doc.register(chris).state.arrows == (9,) * 12  # type: ignore[union-attr]
