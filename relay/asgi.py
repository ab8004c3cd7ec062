"""The ASGI application hypercorn serves: the HTTP API and pages, and refused handshakes.

WebSocket sessions never come here: the relay's door (:mod:`relay.door`) keeps every
``GET /ws`` upgrade for itself and hands everything else to hypercorn. So a WebSocket
scope here is a handshake the relay does not serve: anywhere but ``/ws`` it is answered
404 with the HTTP API's JSON error body, and at ``/ws`` 503 ``unavailable``, so the client
retries on a new connection. (A ``/ws`` upgrade on a kept-alive HTTP connection is taken
back by :mod:`relay.handoff`; one arrives here only on a connection the door stopped
following, after an upgrade of another kind or a request it could not parse.)
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .context import RelayContext
from .http import build_http_app
from .proxy import ClientAddressFromProxy

__all__ = ["build_app", "proxy_for"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _refuse_handshake(send: Send, status: int, code: str, message: str) -> None:
    """Answer a WebSocket handshake with an HTTP error in the API's JSON format.

    Uses the ASGI WebSocket denial response, which hypercorn supports; a bare close here
    would become an empty 403.
    """
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


def proxy_for(relay: RelayContext, app: App) -> ClientAddressFromProxy | None:
    """The proxy-header rule the operator configured, wrapping ``app``; ``None`` without
    one (any client can send such headers, so they are read only when configured)."""
    settings = relay.settings
    if settings.proxy_client_header is None:
        return None
    return ClientAddressFromProxy(
        app, settings.proxy_client_header, settings.proxy_hops, settings.proxy_trusted_peers
    )


def build_app(relay: RelayContext) -> App:
    http = build_http_app(relay)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            connect = await receive()
            if connect["type"] != "websocket.connect":
                return
            if scope["path"] != "/ws":
                await _refuse_handshake(send, 404, "not_found", "There is nothing at this address.")
            else:
                await _refuse_handshake(
                    send, 503, "unavailable", "Open the WebSocket on a new connection."
                )
        elif kind == "http":
            await http(scope, receive, send)

    return proxy_for(relay, app) or app
