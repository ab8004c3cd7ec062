"""The live client's timings, and where its WebSocket is."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["ClientOptions", "websocket_url"]


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Timings of the connection loop; the defaults follow ``docs/protocol.md``."""

    ping_interval_s: float = 15.0
    """Send a ``ping`` after this long without sending, or without receiving, anything."""
    pong_timeout_s: float = 10.0
    """The connection is dead if nothing arrives this long after a ``ping``, or if one
    frame cannot be sent within it (the relay has stopped reading)."""
    resend_after_s: float = 10.0
    """Send an unanswered write again after this long (on the same connection)."""
    connect_timeout_s: float = 10.0
    """Give up on one attempt (WebSocket handshake, then ``welcome``) after this long."""
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    event_queue_size: int = 256
    """Events kept for the user before the oldest are dropped (see :attr:`ShootClient.events`)."""


def websocket_url(relay_url: str, code: str | None = None) -> str:
    """The relay's WebSocket endpoint for its HTTP origin; with ``code``, naming the shoot
    (``/ws?code=1234``), so a relay running several workers hands the connection to the
    one that owns the shoot (the hello still says which shoot it is)."""
    base = relay_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return base + "/ws" + ("" if code is None else f"?code={quote(code, safe='')}")
