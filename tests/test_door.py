"""The relay's one port: WebSocket sessions on the relay's own sockets, HTTP through hypercorn.

The door reads each request head and hands anything but a ``GET /ws`` upgrade to
hypercorn's ``TCPServer`` with the bytes replayed. These tests speak raw HTTP/1.1 (h11)
and raw WebSocket (wsproto) to a real relay, so keep-alive, pipelining and the hand-off
are exercised as a client does them; and they pin the private hypercorn seam.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

import h11
import httpx
import pytest
import trio
import trio.testing
import trio_websocket
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import wrap_app
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Request

from relay.config import Settings
from relay.server import serve_relay
from sync.codec import decode_server, encode
from sync.protocol import CLOSE_GOING_AWAY, Hello, Welcome
from tests.wire import create_shoot, open_door


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


async def _read_responses(stream: trio.SocketStream, count: int) -> list[tuple[int, bytes]]:
    """Read ``count`` HTTP responses (status, body) from one connection, in order (the
    requests were written raw, pipelined or not: h11 only parses the answers)."""
    responses: list[tuple[int, bytes]] = []
    leftover = b""
    while len(responses) < count:
        parser = h11.Connection(h11.CLIENT)
        parser.send(h11.Request(method="GET", target="/", headers=[("Host", "relay")]))
        parser.send(h11.EndOfMessage())
        if leftover:  # (an empty feed would mean the end of the stream)
            parser.receive_data(leftover)
        status, body = 0, b""
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                parser.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"unexpected {event!r}")
        responses.append((status, body))
        leftover = parser.trailing_data[0]
    return responses


def _get(path: str, host: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def test_http_requests_keep_alive_and_pipelining_go_through_hypercorn(
    relay_url: str,
) -> None:
    host, port = _address(relay_url)
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            assert (await http.get("/health")).status_code == 200
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            # One request, then a second on the same (kept-alive) connection ...
            await stream.send_all(_get("/health", host))
            assert [s for s, _ in await _read_responses(stream, 1)] == [200]
            await stream.send_all(_get("/api/rounds", host))
            ((status, body),) = await _read_responses(stream, 1)
            assert status == 200
            assert json.loads(body)
            # ... then two pipelined in one write, answered in order.
            await stream.send_all(_get("/health", host) + _get("/no/such/page", host))
            assert [s for s, _ in await _read_responses(stream, 2)] == [200, 404]


async def test_a_request_head_in_small_pieces_is_routed_once_whole(relay_url: str) -> None:
    host, port = _address(relay_url)
    request = _get("/health", host)
    with trio.fail_after(15):
        async with await trio.open_tcp_stream(host, port) as stream:
            for n in range(0, len(request), 5):
                await stream.send_all(request[n : n + 5])
                await trio.testing.wait_all_tasks_blocked()
            assert [s for s, _ in await _read_responses(stream, 1)] == [200]


async def test_a_broken_or_oversized_head_is_answered_by_hypercorn(relay_url: str) -> None:
    host, port = _address(relay_url)
    with trio.fail_after(15):
        async with await trio.open_tcp_stream(host, port) as stream:
            await stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")
            data = await stream.receive_some(4096)
            assert data.startswith(b"HTTP/1.1 400")
        async with await trio.open_tcp_stream(host, port) as stream:
            await stream.send_all(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 40_000)
            data = await stream.receive_some(4096)
            assert data.startswith(b"HTTP/1.1 4")
        async with httpx.AsyncClient(base_url=relay_url) as http:
            assert (await http.get("/health")).status_code == 200


async def test_websocket_upgrades_elsewhere_or_without_upgrade_are_http(relay_url: str) -> None:
    with trio.fail_after(15):
        for path in ("/ws/", "/wss", "/api/shoots"):
            url = relay_url.replace("http://", "ws://") + path
            with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
                async with trio_websocket.open_websocket_url(url):
                    pass  # pragma: no cover - the handshake is refused
            assert rejected.value.status_code == 404
            assert b'"code": "not_found"' in rejected.value.body
        async with httpx.AsyncClient(base_url=relay_url) as http:
            plain = await http.get("/ws")  # no upgrade: an ordinary (unknown) page
        assert plain.status_code == 404
        assert plain.json()["error"]["code"] == "not_found"


async def test_a_broken_handshake_at_the_endpoint_is_a_400(relay_url: str) -> None:
    host, port = _address(relay_url)
    with trio.fail_after(15):
        async with await trio.open_tcp_stream(host, port) as stream:
            head = f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\r\n"
            await stream.send_all(head.encode())  # no Connection, key or version
            assert (await stream.receive_some(4096)).startswith(b"HTTP/1.1 400")


def test_the_private_hypercorn_seam_has_the_shape_the_door_uses() -> None:
    """Fails when a hypercorn upgrade changes what relay.door relies on."""
    assert version("hypercorn") == "0.18.0"  # pinned in pyproject.toml and the locks
    assert list(inspect.signature(TCPServer.__init__).parameters) == [
        "self",
        "app",
        "config",
        "context",
        "state",
        "stream",
    ]
    assert inspect.iscoroutinefunction(TCPServer.run)
    assert list(inspect.signature(wrap_app).parameters) == ["app", "wsgi_max_body_size", "mode"]
    context = WorkerContext(None)
    assert inspect.iscoroutinefunction(context.terminated.set)
    # TCPServer tells plain TCP from TLS by the stream's missing `do_handshake`, and reads
    # the peer's address from its `socket`: the door's replaying stream must look so.
    source = inspect.getsource(TCPServer.run)
    assert "self.stream.do_handshake()" in source
    assert "socket = self.stream.socket" in source


# -- the owned WebSocket side ------------------------------------------------------------


class RawClient:
    """A WebSocket client that answers pings only when told to."""

    def __init__(self, stream: trio.SocketStream, ws: WSConnection) -> None:
        self.stream, self.ws = stream, ws
        self.pings = 0
        self.closed: int | None = None
        self.messages: list[bytes] = []

    async def pump(self, answer_pings: bool) -> None:
        """Read until the connection ends; note pings, messages and the close."""
        while True:
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                data = b""
            self.ws.receive_data(data or None)
            for event in self.ws.events():
                if isinstance(event, Ping):
                    self.pings += 1
                    if answer_pings:
                        await self.stream.send_all(self.ws.send(event.response()))
                elif isinstance(event, BytesMessage):
                    self.messages.append(bytes(event.data))
                elif isinstance(event, CloseConnection):
                    self.closed = event.code
                    return


@asynccontextmanager
async def raw_client(
    url: str, headers: list[tuple[bytes, bytes]] | None = None
) -> AsyncIterator[RawClient]:
    host, port = _address(url)
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        ws = WSConnection(ConnectionType.CLIENT)
        request = Request(host=f"{host}:{port}", target="/ws", extra_headers=headers or [])
        await stream.send_all(ws.send(request))
        accepted = False
        while not accepted:
            ws.receive_data(await stream.receive_some(4096))
            accepted = any(isinstance(e, AcceptConnection) for e in ws.events())
        yield RawClient(stream, ws)


async def _relay(nursery: trio.Nursery, redis_url: str, **tuning: Any) -> str:
    settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url, **tuning)
    url: str = await nursery.start(serve_relay, settings)
    return url


async def test_a_peer_that_stops_answering_pings_is_closed(
    redis_url: str, nursery: trio.Nursery
) -> None:
    url = await _relay(nursery, redis_url, ws_ping_interval_s=0.2, read_timeout_s=0.6)
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
        hello = encode(Hello(code, "viewer"))
        # A peer that answers keeps its session through many pings ...
        async with raw_client(url) as polite:
            await polite.stream.send_all(polite.ws.send(BytesMessage(hello)))
            async with trio.open_nursery() as inner:
                inner.start_soon(polite.pump, True)
                while polite.pings < 8:  # 1.6 s: well past the 0.6 s time-out
                    await trio.sleep(0.05)
                assert polite.closed is None
                inner.cancel_scope.cancel()
        # ... one that reads everything but never answers is dropped (no close frame).
        async with raw_client(url) as mute:
            await mute.stream.send_all(mute.ws.send(BytesMessage(hello)))
            await mute.pump(answer_pings=False)
            assert mute.pings >= 1
            assert mute.closed == 1006  # the connection ended without a close frame
            assert isinstance(decode_server(mute.messages[0]), Welcome)


async def test_the_client_address_behind_a_proxy_reaches_the_hello_throttle(
    redis_url: str, nursery: trio.Nursery
) -> None:
    url = await _relay(nursery, redis_url, proxy_client_header="X-Forwarded-For")
    ws_url = url.replace("http://", "ws://") + "/ws"

    async def hello(address: str) -> str:
        headers = [(b"x-forwarded-for", address.encode())]
        async with trio_websocket.open_websocket_url(ws_url, extra_headers=headers) as ws:
            await ws.send_message(encode(Hello("1000", "viewer")))
            error: str = decode_server(await ws.get_message()).code  # type: ignore[union-attr]
            return error

    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=url) as http:
            for guess in range(1001, 1011):  # phone A's ten failures, over HTTP
                response = await http.get(
                    f"/api/shoots/{guess}", headers={"X-Forwarded-For": "203.0.113.7"}
                )
                assert response.status_code == 404
        # Every connection comes from 127.0.0.1: only the header tells the phones apart.
        assert await hello("203.0.113.7") == "throttled"
        assert await hello("203.0.113.8") == "unknown_shoot"


async def test_shutdown_closes_every_session_in_one_pass(redis_url: str) -> None:
    with trio.fail_after(30):
        async with open_door(redis_url) as opened:
            relay, door = opened.relay, opened.door
            async with httpx.AsyncClient(base_url=opened.url) as http:
                code = (await create_shoot(http))["code"]
            ws_url = opened.url.replace("http://", "ws://") + "/ws"
            closes: list[int | None] = []
            async with trio.open_nursery() as viewers:
                welcomed = trio.Semaphore(0)

                async def viewer() -> None:
                    async with trio_websocket.open_websocket_url(ws_url) as ws:
                        await ws.send_message(encode(Hello(code, "viewer")))
                        assert isinstance(decode_server(await ws.get_message()), Welcome)
                        welcomed.release()
                        try:
                            await ws.get_message()
                        except trio_websocket.ConnectionClosed as closed:
                            closes.append(closed.reason.code)

                for _ in range(20):
                    viewers.start_soon(viewer)
                for _ in range(20):
                    await welcomed.acquire()
                assert len(door.sessions) == 20
                relay.closing = True
                door.stop_accepting()
                door.close_sessions(CLOSE_GOING_AWAY, "relay shutting down")
                # One pass, no await: every close frame is already the kernel's.
                assert all(owned.close_sent for owned in door.sessions)
                await relay.no_sessions.wait()
            assert closes == [CLOSE_GOING_AWAY] * 20
            # The clients it closed reconnect at once: refused by the kernel, not served.
            with pytest.raises(OSError, match=r"(?i)connect"):
                await trio.open_tcp_stream(*_address(opened.url))


async def test_a_websocket_upgrade_on_a_kept_alive_http_connection_is_the_relays(
    redis_url: str, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node's WebSocket reuses a connection kept alive from an earlier HTTP request. The
    relay takes it back from hypercorn at once (not when hypercorn's keep-alive timeout,
    made long here, would let it go)."""
    monkeypatch.setattr("relay.door.KEEP_ALIVE_S", 120.0)
    relay_url = await _relay(nursery, redis_url)
    host, port = _address(relay_url)
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
        async with await trio.open_tcp_stream(host, port) as stream:
            await stream.send_all(_get("/health", host))
            assert [s for s, _ in await _read_responses(stream, 1)] == [200]
            ws = WSConnection(ConnectionType.CLIENT)
            await stream.send_all(ws.send(Request(host=f"{host}:{port}", target="/ws")))
            events: list[Any] = []
            while not any(isinstance(e, AcceptConnection) for e in events):
                ws.receive_data(await stream.receive_some(4096))
                events += list(ws.events())
            await stream.send_all(ws.send(BytesMessage(encode(Hello(code, "viewer")))))
            message = bytearray()
            while True:
                events = list(ws.events())
                for event in events:
                    if isinstance(event, BytesMessage):
                        message += event.data
                if message and any(
                    isinstance(e, BytesMessage) and e.message_finished for e in events
                ):
                    break
                ws.receive_data(await stream.receive_some(65536))
            assert isinstance(decode_server(bytes(message)), Welcome)
