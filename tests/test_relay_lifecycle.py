"""Relay lifecycle: graceful shutdown, code exhaustion, a crashing shoot left alone."""

from __future__ import annotations

import httpx
import pytest
import trio
import trio_websocket

from relay.actor import ShootActor
from relay.config import Settings
from relay.redis_client import open_redis
from relay.server import serve_relay
from sync.protocol import CLOSE_GOING_AWAY, Ack, Welcome
from tests.wire import Peer, create_shoot, join, peer, register


async def _read_until_closed(p: Peer) -> None:
    while True:
        await p.receive()


async def test_shutdown_closes_sessions_with_going_away(
    redis_url: str, nursery: trio.Nursery
) -> None:
    with trio.fail_after(15):
        shutdown = trio.Event()
        done = trio.Event()

        async def run(task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
            settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url)
            await serve_relay(settings, shutdown=shutdown, task_status=task_status)
            done.set()

        url: str = await nursery.start(run)
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
        async with peer(url, code) as viewer:
            await viewer.expect(Welcome)
            shutdown.set()
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await viewer.receive()
            assert closed.value.reason.code == CLOSE_GOING_AWAY
        await done.wait()


async def test_no_free_code_is_a_clear_error(relay_url: str, redis_url: str) -> None:
    client = open_redis(redis_url)
    pipe = client.pipeline(transaction=False)
    for code in range(1000, 10000):
        pipe.set(f"shoot:{{{code}}}:meta", "{}", px=60_000)
    pipe.execute()
    client.close()
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            response = await http.post("/api/shoots", json={"creator": "Sam"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_code_available"


async def test_a_crashing_shoot_restarts_from_redis_and_others_never_notice(
    relay_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            doomed, calm = (await create_shoot(http))["code"], (await create_shoot(http))["code"]
            chris, chris_token = await join(http, doomed, "Chris")
            alex, alex_token = await join(http, calm, "Alex")
            async with (
                peer(relay_url, doomed, archer=chris, token=chris_token) as a,
                peer(relay_url, calm, archer=alex, token=alex_token) as b,
            ):
                await a.expect(Welcome)
                await b.expect(Welcome)
                await a.write(1, register(chris, (9,) * 6, device="a"))
                await a.expect(Ack)

                original = ShootActor._submit

                def crash_on_m(self: ShootActor, submit: object) -> None:
                    if self.shoot.code == doomed and "M" in submit.register.state.arrows:  # type: ignore[attr-defined]
                        raise RuntimeError("a bug in one shoot")
                    original(self, submit)  # type: ignore[arg-type]

                monkeypatch.setattr(ShootActor, "_submit", crash_on_m)
                await a.write(2, register(chris, (9,) * 6 + ("M",), device="a"))
                with pytest.raises(trio_websocket.ConnectionClosed):
                    await _read_until_closed(a)

                # The other shoot carries on, undisturbed.
                await b.write(1, register(alex, (7,) * 6, device="b", name="Alex"))
                assert (await b.expect(Ack)).id == 1

                # The crashed shoot comes back from Redis with its acknowledged write.
                monkeypatch.setattr(ShootActor, "_submit", original)
                body = (await http.get(f"/api/shoots/{doomed}")).json()
                assert body["archers"][chris]["arrows"] == [9] * 6
                metrics = (await http.get("/metrics")).text
                assert "fastshoot_actor_crashes_total 1" in metrics
