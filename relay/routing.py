"""Which connections the relay keeps: a ``GET /ws`` asking to upgrade to WebSocket."""

from __future__ import annotations

from typing import Final

import h11

__all__ = ["MAX_HEAD_BYTES", "is_websocket_upgrade"]

#: The longest request head read before routing (hypercorn's own limit for a head).
MAX_HEAD_BYTES: Final = 16 * 1024


def is_websocket_upgrade(request: h11.Request) -> bool:
    """Whether the request is a ``GET /ws`` asking to upgrade to WebSocket (any query)."""
    path = request.target.split(b"?", 1)[0]
    if request.method != b"GET" or path != b"/ws":
        return False
    return any(
        name == b"upgrade" and value.strip().lower() == b"websocket"
        for name, value in request.headers
    )
