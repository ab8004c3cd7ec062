"""The ASGI application: ``/ws`` to the session driver, everything else to the HTTP API.

hypercorn's trio worker runs it. WebSocket scopes are handled here without a framework
(the hot path: one dict per frame in each direction); HTTP goes to Starlette.

hypercorn traps handled here (see the design notes): after the peer is gone,
``websocket.send`` silently does nothing, so the adapter remembers the disconnect and
the session watches ``receive()``; the lifespan scope is answered by hand.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .connection import serve_session
from .context import RelayContext
from .http import build_http_app
from .proxy import ClientAddressFromProxy

__all__ = ["AsgiSocket", "build_app", "serve_lifespan"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class AsgiSocket:
    """A :class:`relay.connection.FrameSocket` over an ASGI WebSocket scope."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client") or ("unknown", 0)
        self.client_address = str(client[0])
        self._receive = receive
        self._send = send
        self.gone = False
        self._closed = False

    async def receive(self) -> bytes | str | None:
        while not self.gone:
            event = await self._receive()
            kind = event["type"]
            if kind == "websocket.receive":
                data = event.get("bytes")
                return data if data is not None else str(event.get("text") or "")
            if kind == "websocket.disconnect":
                self.gone = True
        return None

    async def send(self, frame: bytes) -> None:
        if not self.gone and not self._closed:
            await self._send({"type": "websocket.send", "bytes": frame})

    async def close(self, code: int, reason: str) -> None:
        if not self.gone and not self._closed:
            self._closed = True
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer the server's lifespan scope; the relay sets itself up outside ASGI."""
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build_app(relay: RelayContext) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    http = build_http_app(relay)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            connect = await receive()
            if connect["type"] != "websocket.connect":
                return
            if scope["path"] != "/ws" or relay.closing:
                await send({"type": "websocket.close", "code": 1008})
                return
            await send({"type": "websocket.accept"})
            await serve_session(AsgiSocket(scope, receive, send), relay)
        elif kind == "lifespan":
            await serve_lifespan(receive, send)
        else:
            await http(scope, receive, send)

    header = relay.settings.proxy_client_header
    if header is not None:  # only when configured: any client can send such headers
        settings = relay.settings
        return ClientAddressFromProxy(
            app, header, settings.proxy_hops, settings.proxy_trusted_peers
        )
    return app
