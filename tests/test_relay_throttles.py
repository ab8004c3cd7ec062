"""Per-address throttles against a real relay: creation, failed guesses, proxies, fairness."""

from __future__ import annotations

from typing import Any

import httpx
import trio
import trio_websocket

from relay.config import Settings
from relay.server import serve_relay
from sync.codec import decode_server, encode
from sync.protocol import Error, Hello, Welcome
from tests.wire import create_shoot, join


async def _relay(nursery: trio.Nursery, redis_url: str, **tuning: Any) -> str:
    settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url, **tuning)
    url: str = await nursery.start(serve_relay, settings)
    return url


def _from(address: str) -> httpx.AsyncHTTPTransport:
    """A transport whose connections really come from another loopback address."""
    return httpx.AsyncHTTPTransport(local_address=address)


async def _hello(
    relay_url: str,
    hello: Hello,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[str, int | None]:
    """Send a hello; ``("welcome", None)`` or the error code and the close code."""
    ws_url = relay_url.replace("http://", "ws://") + "/ws"
    async with trio_websocket.open_websocket_url(ws_url, extra_headers=headers or []) as ws:
        await ws.send_message(encode(hello))
        try:
            while True:
                frame = await ws.get_message()
                assert isinstance(frame, bytes)
                message = decode_server(frame)
                if isinstance(message, Welcome):
                    return "welcome", None
                if isinstance(message, Error):
                    error = message.code
        except trio_websocket.ConnectionClosed as closed:
            return error, closed.reason.code if closed.reason else None


async def _use_up_failures(http: httpx.AsyncClient, **kwargs: Any) -> None:
    """Ten guesses at codes that do not exist: the burst of failures an address gets.

    Codes are random, so a guess can hit a live shoot (the test's own, or another test's
    on the same Redis): that is a success, not a failure, and the next code is tried.
    """
    guesses = iter(range(1000, 1100))
    failures = 0
    while failures < 10:
        response = await http.get(f"/api/shoots/{next(guesses)}", **kwargs)
        if response.status_code == 200:
            continue
        assert response.status_code == 404, response.text
        failures += 1
    throttled = await http.get(f"/api/shoots/{next(guesses)}", **kwargs)
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "throttled"


async def _keep_throttled(http: httpx.AsyncClient, **kwargs: Any) -> None:
    """Spend what the bucket refilled since (one token per 2 s): guess until a 429.

    Called right before each check that needs the address throttled, so a slow moment on
    a loaded machine cannot turn an expected 429 into a 404.
    """
    for guess in range(1100, 1120):
        if (await http.get(f"/api/shoots/{guess}", **kwargs)).status_code == 429:
            return
    raise AssertionError("the address was never throttled")


async def test_creating_shoots_is_throttled_per_address(relay_url: str) -> None:
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            for _ in range(5):  # refused requests create nothing and cost nothing
                bad = await http.post("/api/shoots", json={"creator": ""})
                assert bad.status_code == 400
            codes = [(await create_shoot(http))["code"] for _ in range(10)]  # the burst
            refused = await http.post("/api/shoots", json={"creator": "Sam"})
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "throttled"
            assert "shoots created" in refused.json()["error"]["message"]
            # 20 an hour: the next one in about three minutes.
            assert 150 <= int(refused.headers["Retry-After"]) <= 180
            # Joining is a separate budget: the shoots made can still be joined.
            await join(http, codes[0], "Chris")
        async with httpx.AsyncClient(base_url=relay_url, transport=_from("127.0.0.2")) as other:
            await create_shoot(other)  # another address is not affected


async def test_proxy_headers_are_ignored_unless_configured(relay_url: str) -> None:
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            await _use_up_failures(http, headers={"X-Forwarded-For": "203.0.113.7"})
            for header in ("X-Forwarded-For", "Fly-Client-IP", "X-Real-IP"):
                await _keep_throttled(http)
                forged = await http.get("/api/shoots/1011", headers={header: "203.0.113.8"})
                assert forged.status_code == 429, header


async def test_a_trusted_proxy_header_gives_each_phone_its_own_throttles(
    redis_url: str, nursery: trio.Nursery
) -> None:
    with trio.fail_after(20):
        url = await _relay(
            nursery, redis_url, proxy_client_header="X-Forwarded-For", shoot_creates_burst=1
        )
        phone_a = {"X-Forwarded-For": "203.0.113.7"}
        async with httpx.AsyncClient(base_url=url) as proxy:  # every request from one peer
            await _use_up_failures(proxy, headers=phone_a)
            # Another phone behind the same proxy has its own budget ...
            other = await proxy.get("/api/shoots/1011", headers={"X-Forwarded-For": "203.0.113.8"})
            assert other.status_code == 404
            # ... and what a phone writes left of our proxy's entry changes nothing.
            forged = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
            await _keep_throttled(proxy, headers=phone_a)
            assert (await proxy.get("/api/shoots/1011", headers=forged)).status_code == 429
            # A request the proxy did not label falls back to the peer's own address.
            assert (await proxy.get("/api/shoots/1011")).status_code == 404

            # The WebSocket door sees the same addresses.
            viewer = Hello("1011", "viewer", b"\x00", None, None)
            a_headers = [(b"x-forwarded-for", b"203.0.113.7")]
            await _keep_throttled(proxy, headers=phone_a)
            assert await _hello(url, viewer, a_headers) == ("throttled", 4429)
            b_headers = [(b"x-forwarded-for", b"203.0.113.9")]
            assert await _hello(url, viewer, b_headers) == ("unknown_shoot", 4404)

            # Creating shoots too (a burst of one here).
            body = {"creator": "Sam"}
            assert (await proxy.post("/api/shoots", json=body, headers=phone_a)).status_code == 201
            again = await proxy.post("/api/shoots", json=body, headers=phone_a)
            assert again.status_code == 429
            phone_b = {"X-Forwarded-For": "203.0.113.8"}
            assert (await proxy.post("/api/shoots", json=body, headers=phone_b)).status_code == 201


async def test_the_header_is_believed_only_from_the_trusted_proxy_peers(
    redis_url: str, nursery: trio.Nursery
) -> None:
    with trio.fail_after(20):
        url = await _relay(
            nursery,
            redis_url,
            proxy_client_header="X-Forwarded-For",
            proxy_trusted_peers=("127.0.0.2/32",),
        )
        phone_a = {"X-Forwarded-For": "203.0.113.7"}
        phone_b = {"X-Forwarded-For": "203.0.113.8"}
        async with httpx.AsyncClient(base_url=url) as direct:  # not the proxy: 127.0.0.1
            await _use_up_failures(direct, headers=phone_a)
            await _keep_throttled(direct, headers=phone_a)
            # The header was ignored: every request counted against 127.0.0.1 itself.
            assert (await direct.get("/api/shoots/1011", headers=phone_b)).status_code == 429
        async with httpx.AsyncClient(base_url=url, transport=_from("127.0.0.2")) as proxy:
            await _use_up_failures(proxy, headers=phone_a)  # phone A's own, fresh budget
            assert (await proxy.get("/api/shoots/1011", headers=phone_b)).status_code == 404


async def test_a_fly_style_single_header_is_read_when_configured(
    redis_url: str, nursery: trio.Nursery
) -> None:
    with trio.fail_after(15):
        url = await _relay(nursery, redis_url, proxy_client_header="Fly-Client-IP")
        async with httpx.AsyncClient(base_url=url) as proxy:
            await _use_up_failures(proxy, headers={"Fly-Client-IP": "2001:db8:1:2::7"})
            # The same /64 is the same subscriber; the next /64 is someone else.
            same = {"Fly-Client-IP": "2001:db8:1:2:ffff::1"}
            await _keep_throttled(proxy, headers=same)
            assert (await proxy.get("/api/shoots/1011", headers=same)).status_code == 429
            other = {"Fly-Client-IP": "2001:db8:1:3::7"}
            assert (await proxy.get("/api/shoots/1011", headers=other)).status_code == 404
            # X-Forwarded-For is not the configured header: ignored.
            xff = {"X-Forwarded-For": "203.0.113.7", **same}
            await _keep_throttled(proxy, headers=same)
            assert (await proxy.get("/api/shoots/1011", headers=xff)).status_code == 429


async def test_club_wifi_successful_joins_never_use_up_the_throttle(relay_url: str) -> None:
    """Thirty archers behind one address; one of them mistypes the code ten times."""
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
            archers = [await join(http, code, f"Archer {n}") for n in range(30)]
            for _ in range(30):  # reading the board a lot is not guessing either
                assert (await http.get(f"/api/shoots/{code}")).status_code == 200
            # Successes left the whole burst of failures in place.
            await _use_up_failures(http)

            # Now the address is out of failures. Anything without credentials is refused,
            # a real code exactly like a wrong one, so a guesser learns nothing ...
            await _keep_throttled(http)
            new = await http.post(
                f"/api/shoots/{code}/join", json={"name": "X", "round": "national"}
            )
            assert new.status_code == 429
            await _keep_throttled(http)
            assert (await http.get(f"/api/shoots/{code}")).status_code == 429
            viewer = Hello(code, "viewer", b"\x00", None, None)
            await _keep_throttled(http)
            assert await _hello(relay_url, viewer) == ("throttled", 4429)

            # ... but an archer's own devices, proving themselves with their token, get in.
            archer_id, token = archers[0]
            second_device = {"archer_id": archer_id, "token": token}
            await _keep_throttled(http)
            added = await http.post(f"/api/shoots/{code}/join", json=second_device)
            assert added.status_code == 200, added.text
            assert added.json()["archer_id"] == archer_id
            for archer_id, token in archers[:5]:
                hello = Hello(code, "archer", b"\x00", archer_id, token)
                await _keep_throttled(http)
                assert await _hello(relay_url, hello) == ("welcome", None)

            # A wrong token, or credentials for a code that does not exist, get 429 (not
            # 401 or 404) while the address is throttled.
            wrong = {"archer_id": archer_id, "token": "not-the-token"}
            await _keep_throttled(http)
            assert (await http.post(f"/api/shoots/{code}/join", json=wrong)).status_code == 429
            missing = "1000" if code != "1000" else "1001"
            await _keep_throttled(http)
            response = await http.post(f"/api/shoots/{missing}/join", json=second_device)
            assert response.status_code == 429
            forged = Hello(code, "archer", b"\x00", archer_id, "not-the-token")
            await _keep_throttled(http)
            assert await _hello(relay_url, forged) == ("throttled", 4429)
            elsewhere = Hello(missing, "archer", b"\x00", archer_id, token)
            await _keep_throttled(http)
            assert await _hello(relay_url, elsewhere) == ("throttled", 4429)
