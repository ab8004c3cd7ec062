"""A fix for hypercorn 0.18's trio server: a close racing a send must not kill the relay.

hypercorn's ``TCPServer`` serialises frame sends with a lock, but its ``_close()`` sends
EOF on the socket without that lock. When a client closes a WebSocket at the moment the
relay closes it too (a browser dropping the socket on the relay's fatal ``error`` frame
just before the ``4410`` close arrives, say), the reader task's close reply finds the
stream busy with the EOF and raises ``trio.BusyResourceError``. hypercorn handles that
error only in ``_close()`` itself, so it escapes the connection's handler, then
``trio.serve_listeners``, and ends the whole relay process: every shoot goes down
because of one socket's goodbye.

The stream is closing whenever this happens (only ``_close()`` sends outside the lock),
so the frame is dropped, as hypercorn drops frames to a broken stream. The other task
finishes the close.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import trio
from hypercorn.trio.tcp_server import TCPServer

__all__ = ["patch_hypercorn"]


def patch_hypercorn() -> None:
    """Make frame sends that meet a closing stream drop the frame (idempotent)."""
    original = TCPServer.protocol_send
    if getattr(original, "_fast_shoot_patched", False):
        return

    async def protocol_send(self: Any, event: Any) -> None:
        # A busy stream here means _close() is sending EOF: the connection is going away.
        with suppress(trio.BusyResourceError):
            await original(self, event)

    protocol_send._fast_shoot_patched = True  # type: ignore[attr-defined]
    TCPServer.protocol_send = protocol_send  # type: ignore[method-assign]
