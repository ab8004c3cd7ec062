"""Opening the WebSocket to the relay (trio-websocket), with the TCP stream owned here.

trio-websocket's ``open_websocket_url`` leaves the TCP socket open when the peer drops
the connection without a close handshake (a relay crash or restart): its ``aclose``
returns early for a connection it already marked closed, and the socket is only
reclaimed by the garbage collector, with a ``ResourceWarning``. So this module opens the
stream itself, wraps it with ``wrap_client_stream``, and always closes it.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import trio
import trio_websocket

__all__ = ["open_socket"]

#: Seconds a close handshake may take before the socket is simply closed.
CLOSE_TIMEOUT_S = 2.0


def _only_cancelled(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[1] is None
    return isinstance(exc, trio.Cancelled)


async def _close(ws: Any) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
        await ws.aclose()


@asynccontextmanager
async def open_socket(
    ws_url: str, *, connect_timeout: float, max_message_size: int
) -> AsyncIterator[Any]:
    """A ``trio_websocket.WebSocketConnection`` to ``ws_url``, closed on exit.

    Raises:
        OSError, trio.TooSlowError, trio_websocket.HandshakeError: the connection could
            not be opened (translated by :func:`clients._errors.translate`).
    """
    parts = urlsplit(ws_url)
    secure = parts.scheme == "wss"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if secure else 80)
    resource = parts.path or "/"
    host_header = parts.netloc
    async with trio.open_nursery() as nursery:
        with trio.fail_after(connect_timeout):
            stream: trio.SocketStream | trio.SSLStream[trio.SocketStream]
            if secure:
                stream = await trio.open_ssl_over_tcp_stream(
                    host, port, ssl_context=ssl.create_default_context()
                )
            else:
                stream = await trio.open_tcp_stream(host, port)
        try:
            with trio.fail_after(connect_timeout):
                ws = await trio_websocket.wrap_client_stream(
                    nursery, stream, host_header, resource, max_message_size=max_message_size
                )
            try:
                yield ws
            except BaseException as exc:
                # Cancelled, the reader task is gone too: a close handshake would only
                # wait out its timeout, so the socket is just closed below.
                if not _only_cancelled(exc):
                    await _close(ws)
                raise
            else:
                await _close(ws)
        finally:
            await trio.aclose_forcefully(stream)
            nursery.cancel_scope.cancel()
