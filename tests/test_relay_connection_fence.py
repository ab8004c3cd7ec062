"""No single connection's failure, HTTP or WebSocket, can end the relay.

A bug that escapes one connection's handler used to escape the server's nursery too and
end ``serve_relay``, taking every shoot down (the hypercorn close race was one such bug).
Here a fault is injected for connections that carry a marker header: in hypercorn's
per-connection data path (HTTP) and in the relay's own WebSocket reading. The relay must close only that connection and go on serving everyone else,
with no session left behind.
"""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
import trio
import trio_websocket
from hypercorn.events import RawData
from hypercorn.protocol import ProtocolWrapper
from wsproto import ConnectionType
from wsproto.connection import Connection

from relay import websocket
from relay.wshandshake import Handshake
from relay.wssocket import OwnedSocket
from sync.codec import decode_server, encode
from sync.protocol import Hello, Welcome
from tests.wire import create_shoot

MARKER = b"x-trigger-the-bug"


class Injected(RuntimeError):
    """The fault: stands for any bug below the app (hypercorn, h11, wsproto)."""


def _inject(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail a marked connection: an HTTP one at once, a WebSocket one when the relay first
    reads from it (in the socket the relay's handshake hands the connection to)."""
    original_http = ProtocolWrapper.handle
    original_open = websocket.open_socket
    raised: list[str] = []

    async def handle(self: ProtocolWrapper, event: Any) -> None:
        if isinstance(event, RawData) and MARKER in event.data.lower():
            raised.append("http")
            raise Injected("a bug while reading an HTTP request")
        await original_http(self, event)

    class Faulty(OwnedSocket):
        async def receive(self) -> bytes | str | None:
            raised.append("websocket")
            raise Injected("a bug while reading a WebSocket frame")

    def open_socket(sock: socket.socket, handshake: Handshake, peer: str) -> OwnedSocket:
        if any(name == MARKER for name, _ in handshake.headers):
            return Faulty(sock, Connection(ConnectionType.SERVER), peer, received=handshake.early)
        return original_open(sock, handshake, peer)

    monkeypatch.setattr(ProtocolWrapper, "handle", handle)
    monkeypatch.setattr(websocket, "open_socket", open_socket)
    return raised


async def _marked_session(ws_url: str, code: str) -> None:
    """A viewer on a marked connection: reads until the relay closes it."""
    headers = [(MARKER, b"1")]
    async with trio_websocket.open_websocket_url(ws_url, extra_headers=headers) as ws:
        await ws.send_message(encode(Hello(code, "viewer", b"\x00", None, None)))
        while True:
            await ws.get_message()


async def _health(http: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await http.get("/health")).json()
    return body


async def test_a_failing_connection_closes_alone_and_the_relay_goes_on(
    relay_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws_url = relay_url.replace("http://", "ws://") + "/ws"
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
            async with trio_websocket.open_websocket_url(ws_url) as bystander:
                await bystander.send_message(encode(Hello(code, "viewer", b"\x00", None, None)))
                assert isinstance(decode_server(await bystander.get_message()), Welcome)
                raised = _inject(monkeypatch)

                # An HTTP request whose connection fails: the client sees it dropped.
                async with httpx.AsyncClient(base_url=relay_url) as doomed_http:
                    with pytest.raises(httpx.TransportError):
                        await doomed_http.get("/health", headers={MARKER.decode(): "1"})

                # A WebSocket session whose connection fails mid-session.
                with pytest.raises(trio_websocket.ConnectionClosed):
                    await _marked_session(ws_url, code)
                assert raised == ["http", "websocket"]

                # Everyone else is still served: new HTTP, the bystander's session, and the
                # failed session was cleaned up (only the bystander is counted).
                while (await _health(http))["connections"] != 1:
                    await trio.sleep(0.02)
                await bystander.ping()
                async with trio_websocket.open_websocket_url(ws_url) as newcomer:
                    await newcomer.send_message(encode(Hello(code, "viewer", b"\x00", None, None)))
                    assert isinstance(decode_server(await newcomer.get_message()), Welcome)
