"""A fix for hypercorn 0.18's trio ``TCPServer``, which serves the relay's HTTP side.

**The close race.** ``TCPServer`` serialises sends with a lock, but its ``_close()`` sends
EOF on the socket without that lock. A response being sent when the connection closes
(the client half-closed its side after its request, say) then finds the stream busy with
the EOF and raises ``trio.BusyResourceError`` out of the connection. The stream is
closing whenever this happens (only ``_close()`` sends outside the lock), so the data is
dropped, as hypercorn drops data to a broken stream.

(WebSocket sessions, where the race was first seen, no longer run on hypercorn; the fence
that keeps one connection's failure from ending the relay is the door's,
:mod:`relay.door`.) This touches hypercorn's private ``TCPServer``;
``tests/test_hypercorn_patch.py`` checks the seam, so a hypercorn upgrade that moves it
fails a test instead of the relay.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import trio
from hypercorn.trio.tcp_server import TCPServer

__all__ = ["patch_hypercorn"]


def patch_hypercorn() -> None:
    """Drop data that meets a closing stream (idempotent)."""
    original_send = TCPServer.protocol_send
    if getattr(original_send, "_fast_shoot_patched", False):
        return

    async def protocol_send(self: Any, event: Any) -> None:
        # A busy stream here means _close() is sending EOF: the connection is going away.
        with suppress(trio.BusyResourceError):
            await original_send(self, event)

    protocol_send._fast_shoot_patched = True  # type: ignore[attr-defined]
    TCPServer.protocol_send = protocol_send  # type: ignore[method-assign]
