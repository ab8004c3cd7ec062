"""Bad input gets a clear error, changes nothing, and the relay survives it."""

from __future__ import annotations

import json

import cbor2
import httpx
import pytest
import trio
import trio_websocket

from relay.redis_client import open_redis
from sync.codec import decode_server, encode
from sync.protocol import (
    MAX_CLIENT_FRAME_BYTES,
    Ack,
    Error,
    Hello,
    Welcome,
)
from tests.wire import create_shoot, join, now_ms, peer, register


async def _closed_with(ws: trio_websocket.WebSocketConnection) -> tuple[list[Error], int | None]:
    errors: list[Error] = []
    try:
        while True:
            message = decode_server(await ws.get_message())
            if isinstance(message, Error):
                errors.append(message)
    except trio_websocket.ConnectionClosed as closed:
        return errors, closed.reason.code


async def _shoot(http: httpx.AsyncClient) -> tuple[str, str, str]:
    code = (await create_shoot(http))["code"]
    archer, token = await join(http, code, "Chris")
    return code, archer, token


@pytest.mark.parametrize(
    ("frame", "error_code", "close_code"),
    [
        (b"\xff\x00garbage", "malformed", 1002),
        (cbor2.dumps({"v": 1, "type": "launch_missiles"}), "unknown_type", 1002),
        (cbor2.dumps({"v": 2, "type": "hello"}), "unsupported_version", 1002),
        (
            cbor2.dumps({"v": 1, "type": "hello", "shoot": "12", "role": "viewer"}),
            "invalid_field",
            1002,
        ),
    ],
)
async def test_malformed_first_frames_are_refused(
    relay_url: str, frame: bytes, error_code: str, close_code: int
) -> None:
    with trio.fail_after(10):
        async with trio_websocket.open_websocket_url(relay_url.replace("http", "ws") + "/ws") as ws:
            await ws.send_message(frame)
            errors, code = await _closed_with(ws)
        assert [e.code for e in errors] == [error_code]
        assert errors[0].fatal
        assert errors[0].message
        assert code == close_code
        async with httpx.AsyncClient(base_url=relay_url) as http:
            assert (await http.get("/health")).status_code == 200


async def test_text_frames_are_malformed_and_close_with_1002(relay_url: str) -> None:
    with trio.fail_after(10):
        ws_url = relay_url.replace("http", "ws") + "/ws"
        async with trio_websocket.open_websocket_url(ws_url) as ws:
            await ws.send_message("hello")
            errors, code = await _closed_with(ws)
        assert [(e.code, e.fatal) for e in errors] == [("malformed", True)]
        assert code == 1002
        # The same inside a session, after the welcome.
        async with httpx.AsyncClient(base_url=relay_url) as http:
            shoot = (await create_shoot(http))["code"]
        async with peer(relay_url, shoot) as viewer:
            await viewer.expect(Welcome)
            await viewer.ws.send_message('{"v": 1, "type": "ping", "nonce": 1}')
            errors, code = await _closed_with(viewer.ws)
        assert [(e.code, e.fatal) for e in errors] == [("malformed", True)]
        assert code == 1002


async def test_a_connection_without_hello_in_time_gets_timeout_then_1008(
    redis_url: str, nursery: trio.Nursery
) -> None:
    """The hello's deadline is the session machine's timer, which the driver must run."""
    from relay.config import Settings
    from relay.server import serve_relay

    settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url, hello_timeout_s=0.3)
    with trio.fail_after(10):
        url: str = await nursery.start(serve_relay, settings)
        async with trio_websocket.open_websocket_url(url.replace("http", "ws") + "/ws") as ws:
            errors, code = await _closed_with(ws)  # says nothing, only waits
        assert [(e.code, e.fatal, e.id) for e in errors] == [("timeout", True, None)]
        assert code == 1008


@pytest.mark.parametrize("in_session", [False, True], ids=["first-frame", "in-session"])
async def test_an_oversized_frame_gets_frame_too_large_then_1009(
    relay_url: str, in_session: bool
) -> None:
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            shoot = (await create_shoot(http))["code"]
        ws_url = relay_url.replace("http", "ws") + "/ws"
        async with trio_websocket.open_websocket_url(ws_url) as ws:
            if in_session:
                await ws.send_message(encode(Hello(shoot, "viewer")))
                assert isinstance(decode_server(await ws.get_message()), Welcome)
            # A hello padded with an unknown field: well-formed, one byte over the limit.
            hello = cbor2.loads(encode(Hello(shoot, "viewer")))
            hello["pad"] = b""
            hello["pad"] = b"\x00" * (MAX_CLIENT_FRAME_BYTES + 1 - len(cbor2.dumps(hello)) - 2)
            oversized = cbor2.dumps(hello)
            assert len(oversized) == MAX_CLIENT_FRAME_BYTES + 1
            await ws.send_message(oversized)
            errors, code = await _closed_with(ws)
        assert [(e.code, e.fatal, e.id) for e in errors] == [("frame_too_large", True, None)]
        assert str(MAX_CLIENT_FRAME_BYTES) in errors[0].message
        assert code == 1009


async def test_a_frame_far_over_the_limit_is_refused_without_being_held(relay_url: str) -> None:
    # hypercorn could only close at once over its message cap; the relay's own reader stops
    # collecting at the limit, answers `frame_too_large` and drops the rest as it arrives.
    with trio.fail_after(10):
        ws_url = relay_url.replace("http", "ws") + "/ws"
        async with trio_websocket.open_websocket_url(ws_url) as ws:
            await ws.send_message(b"\x00" * (16 * MAX_CLIENT_FRAME_BYTES))
            errors, code = await _closed_with(ws)
        assert [(e.code, e.fatal) for e in errors] == [("frame_too_large", True)]
        assert code == 1009
        async with httpx.AsyncClient(base_url=relay_url) as http:
            assert (await http.get("/health")).status_code == 200


async def test_writes_that_break_rules_change_nothing(relay_url: str) -> None:
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code, chris, token = await _shoot(http)
            alex, _ = await join(http, code, "Alex")
            async with (
                peer(relay_url, code, archer=chris, token=token) as a,
                peer(relay_url, code) as viewer,
            ):
                await a.expect(Welcome)
                await viewer.expect(Welcome)
                bad = [
                    (1, register(alex, (9,), device="a"), "not_your_register"),
                    (2, register(chris, (10,), device="a"), "invalid_arrow"),
                    (3, register(chris, (9,) * 73, device="a"), "too_many_arrows"),
                    (4, register(chris, (9,), device="a", round="no_such_round"), "unknown_round"),
                    (5, register(chris, (9,), device="a", ms=now_ms() + 86_400_000), "clock_skew"),
                ]
                for request_id, reg, expected in bad:
                    await a.write(request_id, reg)
                    error = await a.expect(Error)
                    assert (error.id, error.code, error.fatal) == (request_id, expected, False)
                    assert error.message
                assert error.server_ms is not None  # the clock_skew refusal says the time
                # The session survives, and a good write still works.
                await a.write(6, register(chris, (9, 7), device="a"))
                assert (await a.expect(Ack)).id == 6
                body = (await http.get(f"/api/shoots/{code}")).json()
                assert body["archers"][chris]["arrows"] == [9, 7]
                assert body["archers"][alex]["arrows"] == []

                await viewer.write(7, register(chris, (9,), device="v"))
                assert (await viewer.expect(Error)).code == "read_only"


async def test_write_floods_are_rate_limited(relay_url: str) -> None:
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code, chris, token = await _shoot(http)
        async with peer(relay_url, code, archer=chris, token=token) as a:
            await a.expect(Welcome)
            for n in range(1, 31):
                await a.write(n, register(chris, (9,) * (n % 6 + 1), device="a", ms=n))
            answers = [await a.expect(Ack | Error) for _ in range(30)]  # type: ignore[arg-type]
            limited = [m for m in answers if isinstance(m, Error)]
            assert limited
            assert all(m.code == "rate_limited" for m in limited)
            assert len(limited) >= 30 - 22


async def test_wrong_codes_tokens_and_expired_shoots(relay_url: str, redis_url: str) -> None:
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code, chris, _ = await _shoot(http)
            async with peer(relay_url, code, archer=chris, token="not-the-token") as p:
                errors, close = await _closed_with(p.ws)
            assert ([e.code for e in errors], close) == (["unauthorized"], 4401)

            missing = "1000" if code != "1000" else "1001"
            async with peer(relay_url, missing) as p:
                errors, close = await _closed_with(p.ws)
            assert ([e.code for e in errors], close) == (["unknown_shoot"], 4404)
            response = await http.post(
                f"/api/shoots/{missing}/join", json={"name": "X", "round": "national"}
            )
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "unknown_shoot"

            # A shoot whose day is over (its keys not yet expired by Redis), loaded fresh:
            # it can be read (the final results, marked ended) but not joined.
            over = (await create_shoot(http))["code"]
            _set_expiry(redis_url, over, now_ms() - 1)
            read = await http.get(f"/api/shoots/{over}")
            assert (read.status_code, read.json()["ended"]) == (200, True)
            joined = await http.post(
                f"/api/shoots/{over}/join", json={"name": "X", "round": "national"}
            )
            assert (joined.status_code, joined.json()["error"]["code"]) == (410, "expired")
            async with peer(relay_url, over) as p:
                errors, close = await _closed_with(p.ws)
            assert ([e.code for e in errors], close) == (["expired"], 4410)


async def test_a_live_shoot_ends_its_sessions_when_its_day_ends(
    relay_url: str, redis_url: str
) -> None:
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
        _set_expiry(redis_url, code, now_ms() + 1_500)
        async with peer(relay_url, code) as viewer:
            await viewer.expect(Welcome)
            errors, close = await _closed_with(viewer.ws)
        assert ([e.code for e in errors], close) == (["expired"], 4410)


def _set_expiry(redis_url: str, code: str, expires_ms: int) -> None:
    client = open_redis(redis_url)
    key = f"shoot:{{{code}}}:meta"
    meta = json.loads(client.get(key))  # type: ignore[arg-type]
    meta["expires_ms"] = expires_ms
    client.set(key, json.dumps(meta))
    client.close()


async def test_guessing_codes_is_throttled(relay_url: str) -> None:
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            statuses = []
            for guess in range(1000, 1015):
                response = await http.post(
                    f"/api/shoots/{guess}/join", json={"name": "X", "round": "national"}
                )
                statuses.append(response.status_code)
            assert statuses[:10] == [404] * 10
            assert set(statuses[10:]) == {429}
            assert int(response.headers["Retry-After"]) >= 1
            # WebSocket hellos from the same address are throttled too.
            async with peer(relay_url, "1000") as p:
                errors, close = await _closed_with(p.ws)
            assert ([e.code for e in errors], close) == (["throttled"], 4429)


async def test_markup_is_stored_as_text_and_escaped_in_pages(relay_url: str) -> None:
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            shoot = await create_shoot(http, title="<script>alert(1)</script>")
            assert shoot["title"] == "<script>alert(1)</script>"
            # The join page is the web client's shell: it never embeds shoot data (the app
            # renders the title as text after reading it from the API).
            page = (await http.get(f"/join/{shoot['code']}")).text
            assert "<script>alert(1)</script>" not in page
            bad = await http.post("/api/shoots", json={"creator": "Sam", "title": "t" * 101})
            assert bad.status_code == 400
            assert bad.json()["error"]["code"] == "invalid_title"
            bad = await http.post("/api/shoots", json={"creator": "Sam", "time_zone": "Mars/Base"})
            assert bad.json()["error"]["code"] == "invalid_time_zone"
            bad = await http.post("/api/shoots", content=b"{not json")
            assert bad.json()["error"]["code"] == "malformed"


async def test_qr_codes_health_and_metrics(relay_url: str) -> None:
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
            svg = await http.get(f"/api/shoots/{code}/qr.svg")
            assert svg.headers["content-type"] == "image/svg+xml"
            assert svg.content.lstrip().startswith(b"<?xml")
            png = await http.get(f"/api/shoots/{code}/qr.png")
            assert png.content.startswith(b"\x89PNG")
            health = (await http.get("/health")).json()
            assert health["status"] == "ok"
            assert code not in json.dumps(health)
            metrics = (await http.get("/metrics")).text
            assert "fastshoot_connections" in metrics
            assert code not in metrics
            rounds = (await http.get("/api/rounds")).json()
            national = next(r for r in rounds if r["codename"] == "national")
            assert national["values"] == [9, 7, 5, 3, 1, "M"]
