"""The ASGI application: ``/ws`` to the session driver, everything else to the HTTP API.

A WebSocket handshake anywhere but ``/ws`` is answered 404, and 503 while the relay shuts
down, with the HTTP API's JSON error body.

hypercorn's trio worker runs it. WebSocket scopes are handled here without a framework
(the hot path: one dict per frame in each direction); HTTP goes to Starlette.

hypercorn traps handled here (see the design notes): after the peer is gone,
``websocket.send`` silently does nothing, so the adapter remembers the disconnect and
the session watches ``receive()``; the lifespan scope is answered by hand.

One more: hypercorn hands received messages to the app through a queue of 10 and stops
reading the socket while it is full, and nothing empties it once the app has returned.
A client that kept sending after the relay's close would then never have its close
handshake read: its connection (socket, buffers, task) would stay forever, since even the
end of its TCP stream is never read. So after a session the app keeps receiving, and
dropping, until hypercorn reports the disconnect: the peer's close, the end of its
stream, or hypercorn's read timeout for a silent peer. Dropping costs what reading any
connected client costs, one message at a time (each at most
:data:`~sync.protocol.HARD_MAX_CLIENT_FRAME_BYTES`).
"""

from __future__ import annotations

import json
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

    async def drain(self) -> None:
        """Receive and drop messages until the peer has gone (see the module's notes)."""
        while not self.gone:
            event = await self._receive()
            if event["type"] == "websocket.disconnect":
                self.gone = True


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer the server's lifespan scope; the relay sets itself up outside ASGI."""
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _refuse_handshake(send: Send, status: int, code: str, message: str) -> None:
    """Answer a WebSocket handshake with an HTTP error in the API's JSON format.

    Uses the ASGI WebSocket denial response, which hypercorn supports; a bare close here
    would become an empty 403.
    """
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


def build_app(relay: RelayContext) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    http = build_http_app(relay)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            connect = await receive()
            if connect["type"] != "websocket.connect":
                return
            if scope["path"] != "/ws":
                await _refuse_handshake(send, 404, "not_found", "There is nothing at this address.")
                return
            if relay.closing:
                await _refuse_handshake(
                    send, 503, "unavailable", "The relay is shutting down; try again soon."
                )
                return
            await send({"type": "websocket.accept"})
            socket = AsgiSocket(scope, receive, send)
            await serve_session(socket, relay)
            await socket.drain()
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
