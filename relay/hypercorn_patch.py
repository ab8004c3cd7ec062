"""Fixes for hypercorn 0.18's trio server: no single connection may end the relay.

hypercorn runs each connection's ``TCPServer.run`` in the nursery that ``serve`` owns, so
any exception that escapes one connection's handler (hypercorn handles only ``OSError``
there) cancels every other connection and ends :func:`relay.server.serve_relay`: every
shoot goes down because of one socket. Two patches:

1. **The close race.** ``TCPServer`` serialises frame sends with a lock, but its
   ``_close()`` sends EOF on the socket without that lock. When a client closes a
   WebSocket at the moment the relay closes it too (a browser dropping the socket on the
   relay's fatal ``error`` frame just before the ``4410`` close arrives, say), the reader
   task's close reply finds the stream busy with the EOF and raises
   ``trio.BusyResourceError``. The stream is closing whenever this happens (only
   ``_close()`` sends outside the lock), so the frame is dropped, as hypercorn drops
   frames to a broken stream. The other task finishes the close.
2. **A fence around each connection.** Whatever else escapes one connection's handler
   (a bug in hypercorn, in wsproto or h11, or in our app that slipped past hypercorn's own
   guard) is logged with its traceback and ends only that connection; hypercorn's
   ``finally`` has already closed its socket. Cancellation still propagates, so shutdown
   is unchanged.

Both touch hypercorn's private ``TCPServer``; ``tests/test_hypercorn_patch.py`` checks
the seam, so a hypercorn upgrade that moves it fails a test instead of the relay.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

import trio
from hypercorn.trio.tcp_server import TCPServer

__all__ = ["patch_hypercorn"]

log = logging.getLogger("relay.connections")


def patch_hypercorn() -> None:
    """Drop frames that meet a closing stream; fence each connection's failure (idempotent)."""
    original_send = TCPServer.protocol_send
    if getattr(original_send, "_fast_shoot_patched", False):
        return

    async def protocol_send(self: Any, event: Any) -> None:
        # A busy stream here means _close() is sending EOF: the connection is going away.
        with suppress(trio.BusyResourceError):
            await original_send(self, event)

    original_run = TCPServer.run

    async def run(self: Any) -> None:
        try:
            await original_run(self)
        except* Exception as failure:
            # `except*` keeps any Cancelled in the group propagating: only errors stop here.
            log.error(
                "one connection failed and was closed; the relay goes on",
                exc_info=failure,
            )

    protocol_send._fast_shoot_patched = True  # type: ignore[attr-defined]
    TCPServer.protocol_send = protocol_send  # type: ignore[method-assign]
    TCPServer.run = run  # type: ignore[method-assign]
