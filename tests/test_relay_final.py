"""The final results of an ended shoot: the tombstone the relay keeps for a day.

When a shoot's day ends its keys expire (the code is free for another shoot), but
``GET /api/shoots/{code}`` still answers with the final board, as ``410 expired`` plus
``final``, for a day more. These tests run a real relay on a real Redis.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import redis
import trio
import trio_websocket

from relay.store import FINAL_KEEP_MS
from sync.codec import decode_server
from sync.protocol import Ack, Error, Welcome
from tests.wire import create_shoot, join, now_ms, peer, register

SIX_NINES = (9,) * 6


def _meta(redis_url: str, code: str) -> dict[str, Any]:
    client = redis.Redis.from_url(redis_url)
    try:
        meta: dict[str, Any] = json.loads(client.get(f"shoot:{{{code}}}:meta"))  # type: ignore[arg-type]
        return meta
    finally:
        client.close()


def _end_day_at(redis_url: str, code: str, expires_ms: int) -> None:
    meta = _meta(redis_url, code)
    meta["expires_ms"] = expires_ms
    client = redis.Redis.from_url(redis_url)
    client.set(f"shoot:{{{code}}}:meta", json.dumps(meta))
    client.close()


async def _closed_with(ws: trio_websocket.WebSocketConnection) -> tuple[list[Error], int | None]:
    errors: list[Error] = []
    try:
        while True:
            message = decode_server(await ws.get_message())
            if isinstance(message, Error):
                errors.append(message)
    except trio_websocket.ConnectionClosed as closed:
        return errors, closed.reason.code


async def _until_closed(ws: trio_websocket.WebSocketConnection) -> None:
    await _closed_with(ws)


async def _final(http: httpx.AsyncClient, code: str, arrows: int) -> dict[str, Any]:
    """Poll until the relay answers with a final board holding ``arrows`` arrows in all.

    The actor writes its last tombstone as it stops, just after closing the sessions.
    """
    while True:
        response = await http.get(f"/api/shoots/{code}")
        body: dict[str, Any] = response.json()
        if response.status_code == 410 and "final" in body:
            shot = sum(len(a["state"]["arrows"]) for a in body["final"]["archers"].values())
            if shot == arrows:
                return body
        await trio.sleep(0.05)  # polling with the caller's deadline


async def test_an_ended_shoot_reads_as_410_with_its_final_board(
    relay_url: str, redis_url: str
) -> None:
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http, title="Club night"))["code"]
            _end_day_at(redis_url, code, now_ms() + 2_000)
            chris, token = await join(http, code, "Chris")
            await join(http, code, "Alex", "wa720_70")
            async with peer(relay_url, code, archer=chris, token=token) as p:
                await p.expect(Welcome)
                await p.write(1, register(chris, SIX_NINES, device="a"))
                await p.expect(Ack)
                # While the shoot runs, the tombstone is there but the shoot reads live.
                client = redis.Redis.from_url(redis_url)
                assert client.exists(f"shoot:{{{code}}}:final")
                assert (await http.get(f"/api/shoots/{code}")).status_code == 200
                await _until_closed(p.ws)  # the day ends

            body = await _final(http, code, arrows=6)
            assert body["error"]["code"] == "expired"
            final = body["final"]
            assert final["shoot"]["code"] == code
            assert final["shoot"]["title"] == "Club night"
            by_name = {a["state"]["name"]: a for a in final["archers"].values()}
            assert by_name.keys() == {"Chris", "Alex"}
            assert by_name["Chris"]["state"]["arrows"] == list(SIX_NINES)
            assert by_name["Chris"]["derived"]["classification"] is not None
            assert by_name["Alex"]["state"]["round"] == "wa720_70"

            # Redis drops the live keys at the end of the day; the final board stays.
            expires_ms = _meta(redis_url, code)["expires_ms"]
            client.delete(f"shoot:{{{code}}}:meta")
            again = await http.get(f"/api/shoots/{code}")
            assert again.status_code == 410
            assert again.json()["final"] == final
            # Its link is not a guessed code: joining or watching says "ended", not "unknown".
            joined = await http.post(f"/api/shoots/{code}/join", json={"name": "Pat"})
            assert joined.status_code == 410
            async with peer(relay_url, code) as late:
                errors, close = await _closed_with(late.ws)
            assert ([e.code for e in errors], close) == (["expired"], 4410)
            kept_ms = client.pttl(f"shoot:{{{code}}}:final")
            client.close()
            assert expires_ms + FINAL_KEEP_MS - now_ms() - 60_000 < kept_ms
            assert kept_ms <= expires_ms + FINAL_KEEP_MS - now_ms() + 1_000


async def test_a_shoot_nobody_joined_leaves_no_final_board(relay_url: str, redis_url: str) -> None:
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
            _end_day_at(redis_url, code, now_ms() + 1_000)
            async with peer(relay_url, code) as viewer:
                await viewer.expect(Welcome)
                await _until_closed(viewer.ws)
            response = await http.get(f"/api/shoots/{code}")
            assert response.status_code == 410
            assert "final" not in response.json()
            client = redis.Redis.from_url(redis_url)
            client.delete(f"shoot:{{{code}}}:meta")
            assert not client.exists(f"shoot:{{{code}}}:final")
            client.close()
            assert (await http.get(f"/api/shoots/{code}")).status_code == 404
