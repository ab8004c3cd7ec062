"""One shoot's bad input, bad data or bug never reaches another shoot, and no waiter hangs.

Each test runs a real relay on a real redis-server and keeps a bystander (a viewer or an
archer of a healthy shoot) watching: it must stay connected and keep receiving updates.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from relay.actor import ShootActor
from relay.config import Settings
from relay.redis_client import open_redis
from relay.server import serve_relay
from sync.codec import decode_server
from sync.protocol import Ack, Error, Update, Welcome
from tests.wire import Peer, create_shoot, join, peer, register


async def _closed_with(p: Peer) -> tuple[list[str], int | None]:
    """Read until the relay closes: the error codes it sent, and the close code."""
    codes: list[str] = []
    try:
        while True:
            message = decode_server(await p.ws.get_message())
            if isinstance(message, Error):
                assert message.fatal, message
                codes.append(message.code)
    except trio_websocket.ConnectionClosed as closed:
        return codes, closed.reason.code


async def _health(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/health")
    body: dict[str, Any] = response.json()
    return body


async def _still_live(archer: Peer, watcher: Peer, archer_id: str, request_id: int) -> None:
    """The archer's write is acknowledged and reaches the watcher: the shoot is fine."""
    arrows = (9,) * (6 * request_id)
    await archer.write(request_id, register(archer_id, arrows, device="a", ms=request_id))
    assert (await archer.expect(Ack)).id == request_id
    while watcher.doc.register(archer_id) is None or (
        watcher.doc.register(archer_id).state.arrows != arrows  # type: ignore[union-attr]
    ):
        await watcher.expect(Update)


@pytest.mark.parametrize(
    "state_vector",
    [
        b"\x01\x80",  # a var-uint that never ends (the reported crash)
        b"\x05",  # five entries promised, none there
        b"\x01\x01",  # a client id without its clock
        b"\x00\x00",  # trailing bytes
    ],
)
async def test_a_malformed_state_vector_is_refused_and_the_shoot_goes_on(
    relay_url: str, state_vector: bytes
) -> None:
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
            chris, token = await join(http, code, "Chris")
            async with (
                peer(relay_url, code, archer=chris, token=token) as archer,
                peer(relay_url, code) as bystander,
            ):
                await archer.expect(Welcome)
                await bystander.expect(Welcome)
                async with peer(relay_url, code, sv=state_vector) as attacker:
                    assert await _closed_with(attacker) == (["invalid_state_vector"], 1002)
                # Same shoot, same actor: nobody else noticed.
                await _still_live(archer, bystander, chris, 1)
                # The attacker's session ended: no task is left waiting for an answer.
                with trio.fail_after(5):
                    while (await _health(http))["connections"] != 2:
                        await trio.sleep(0.02)
                metrics = (await http.get("/metrics")).text
                assert "fastshoot_actor_crashes_total 0" in metrics


async def test_a_bug_in_one_message_restarts_only_that_shoot_and_answers_its_sender(
    relay_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hello that hits a bug gets ``unavailable`` (1013, try again), not silence."""
    original = ShootActor._access

    def buggy(self: ShootActor, archer_id: str | None, token: str | None) -> Any:
        if token == "trigger-the-bug":
            raise RuntimeError("a bug in one message")
        return original(self, archer_id, token)

    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            doomed, calm = (await create_shoot(http))["code"], (await create_shoot(http))["code"]
            chris, _ = await join(http, doomed, "Chris")
            alex, alex_token = await join(http, calm, "Alex")
            async with (
                peer(relay_url, calm, archer=alex, token=alex_token) as archer,
                peer(relay_url, calm) as bystander,
            ):
                await archer.expect(Welcome)
                await bystander.expect(Welcome)
                monkeypatch.setattr(ShootActor, "_access", buggy)
                async with peer(relay_url, doomed, archer=chris, token="trigger-the-bug") as p:
                    assert await _closed_with(p) == (["unavailable"], 1013)
                await _still_live(archer, bystander, alex, 1)
                metrics = (await http.get("/metrics")).text
                assert "fastshoot_actor_crashes_total 1" in metrics
                # The crashed shoot starts again from Redis on the next request.
                assert (await http.get(f"/api/shoots/{doomed}")).status_code == 200


def _poison(redis_url: str, code: str, kind: str) -> None:
    client = open_redis(redis_url)
    try:
        if kind == "log-garbage":
            client.xadd(f"shoot:{{{code}}}:log", {"u": b"\x01\x80garbage"})
        elif kind == "log-no-update":
            client.xadd(f"shoot:{{{code}}}:log", {"x": b"1"})
        elif kind == "snapshot-garbage":
            client.set(f"shoot:{{{code}}}:snapshot", b"\xff" * 40)
        elif kind == "meta-garbage":
            client.set(f"shoot:{{{code}}}:meta", b"\x00not json", keepttl=True)
        elif kind == "archer-garbage":
            client.hset(f"shoot:{{{code}}}:archers", "mallory", "{not json")
        elif kind == "archer-fields":
            client.hset(f"shoot:{{{code}}}:archers", "mallory", json.dumps({"who": 1}))
        else:
            raise AssertionError(kind)
    finally:
        client.close()


@pytest.mark.parametrize(
    "kind",
    [
        "log-garbage",
        "log-no-update",
        "snapshot-garbage",
        "meta-garbage",
        "archer-garbage",
        "archer-fields",
    ],
)
async def test_poison_data_in_redis_refuses_that_shoot_and_nothing_else(
    relay_url: str, redis_url: str, kind: str
) -> None:
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            poisoned, calm = (await create_shoot(http))["code"], (await create_shoot(http))["code"]
            alex, alex_token = await join(http, calm, "Alex")
            _poison(redis_url, poisoned, kind)
            async with (
                peer(relay_url, calm, archer=alex, token=alex_token) as archer,
                peer(relay_url, calm) as bystander,
            ):
                await archer.expect(Welcome)
                await bystander.expect(Welcome)

                async with peer(relay_url, poisoned) as victim:
                    assert await _closed_with(victim) == (["shoot_unreadable"], 1011)
                read = await http.get(f"/api/shoots/{poisoned}")
                assert read.status_code == 500
                assert read.json()["error"]["code"] == "shoot_unreadable"
                joined = await http.post(
                    f"/api/shoots/{poisoned}/join", json={"name": "Sam", "round": "national"}
                )
                assert joined.status_code == 500
                assert joined.json()["error"]["code"] == "shoot_unreadable"

                await _still_live(archer, bystander, alex, 1)
                health = await http.get("/health")
                assert health.status_code == 200
                metrics = (await http.get("/metrics")).text
                assert "fastshoot_shoots_unreadable_total 0" not in metrics  # logged, counted
                assert "fastshoot_actor_crashes_total 0" in metrics
        client = open_redis(redis_url)
        assert client.hlen(f"shoot:{{{poisoned}}}:archers") == (1 if "archer" in kind else 0)
        client.close()


async def test_requests_buffered_behind_a_crash_are_all_answered(
    relay_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads queued behind a message that crashes the actor get an answer (the view from
    the restarted shoot, or 503 to retry), never silence."""
    crashes = 0
    original = ShootActor._dispatch

    def crash_once(self: ShootActor, message: Any) -> None:
        nonlocal crashes
        if crashes == 0 and type(message).__name__ == "Read":
            crashes += 1
            raise RuntimeError("a bug in one message")
        original(self, message)

    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
            await join(http, code, "Chris")
            monkeypatch.setattr(ShootActor, "_dispatch", crash_once)
            statuses: list[int] = []

            async def read() -> None:
                response = await http.get(f"/api/shoots/{code}")
                assert response.headers["content-type"] == "application/json"
                statuses.append(response.status_code)

            async with trio.open_nursery() as nursery:
                for _ in range(12):
                    nursery.start_soon(read)
        assert crashes == 1
        assert len(statuses) == 12
        assert set(statuses) <= {200, 503}


async def test_http_requests_to_a_stuck_shoot_time_out_with_a_json_error(
    redis_url: str, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def stuck(self: ShootActor) -> None:
        await trio.sleep_forever()

    settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url, answer_timeout_s=0.5)
    url: str = await nursery.start(serve_relay, settings)
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            monkeypatch.setattr(ShootActor, "_serve", stuck)
            response = await http.get(f"/api/shoots/{code}")  # no answer would hang here
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "unavailable"


async def test_a_repaired_shoot_is_served_again(
    relay_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("relay.registry.UNREADABLE_RETRY_S", 2.0)
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
            _poison(redis_url, code, "log-garbage")
            assert (await http.get(f"/api/shoots/{code}")).status_code == 500
            # Within the retry interval the verdict stands without loading again...
            client = open_redis(redis_url)
            client.delete(f"shoot:{{{code}}}:log")  # the operator repairs it
            client.close()
            assert (await http.get(f"/api/shoots/{code}")).status_code == 500
            # ...and after it the shoot loads from Redis as usual.
            while (await http.get(f"/api/shoots/{code}")).status_code != 200:
                await trio.sleep(0.05)
            async with peer(relay_url, code) as viewer:
                await viewer.expect(Welcome)
