"""A workaround for a race in hypercorn's trio worker that stops the whole server.

hypercorn (0.18) serialises a connection's writes with a lock, but closes the connection
(``TCPServer._close``: ``send_eof`` then ``aclose``) without it. trio's ``send_eof``
holds the stream's send side across a checkpoint, so a write that starts in that moment
raises ``trio.BusyResourceError``, which nothing in hypercorn catches: it leaves the
connection's handler, then ``serve_listeners``, and hypercorn stops serving everyone.

Any client can be in that moment: the relay closes a session (an unknown code, a refused
token, shutdown) while the reader task answers the client's own close frame or ping.
The test suite hit it about once in ten runs of a CLI test that sends a hello for an
unknown shoot.

The fix treats that collision as what it is, the connection being closed: the write is
dropped and the protocol told the connection is gone, exactly as hypercorn already does
when the write finds the stream broken or closed. Taking the lock in ``_close`` instead
would not do: a write blocked on a peer that stopped reading holds the lock for ever (it
is shielded), and ``_close``'s ``aclose`` is what frees it when the peer is evicted.
"""

from __future__ import annotations

from typing import Any

import trio
from hypercorn.events import Closed, RawData
from hypercorn.trio.tcp_server import TCPServer

__all__ = ["apply_hypercorn_fixes"]

_original_protocol_send = TCPServer.protocol_send


async def _protocol_send(self: Any, event: Any) -> None:
    try:
        await _original_protocol_send(self, event)
    except trio.BusyResourceError:
        if not isinstance(event, RawData):
            raise
        # The connection is being closed by another task (see the module's notes).
        await self.protocol.handle(Closed())


def apply_hypercorn_fixes() -> None:
    """Install the workaround (idempotent); the relay calls it before serving."""
    TCPServer.protocol_send = _protocol_send  # type: ignore[method-assign]
