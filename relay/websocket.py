"""The relay's own WebSocket endpoint: the handshake, the session, heartbeats, the close.

The door (:mod:`relay.door`) hands over each ``GET /ws`` upgrade with the bytes it read.
wsproto checks the handshake and writes the answer: a ``101`` without extensions
(permessage-deflate stays off, see :mod:`relay.wsframes`), a ``400`` for a broken
handshake, or a ``503`` with the API's JSON error while the relay shuts down. Then the
session (:func:`relay.connection.serve_session`) runs over an
:class:`~relay.wssocket.OwnedSocket`.

Heartbeats: when to ping and when a silent peer is dead is decided by
:class:`sync.heartbeat.Heartbeat` (``ws_ping_interval_s``, ``read_timeout_s``); this
module fires its timer, sends the pings it asks for, hands it the pongs, and ends the
session it finds dead, without a close frame (a peer that does not read would not get
one, and its device sees the drop and reconnects).

After the session: the relay waits up to ``read_timeout_s`` for the peer's answer to its
close (reading and dropping whatever comes first), then closes the socket.
"""

from __future__ import annotations

import json
import logging
import re
import socket as stdlib_socket
from collections.abc import Callable, Iterable
from typing import Final

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request
from wsproto.utilities import RemoteProtocolError

from sync.heartbeat import Evict, Heartbeat, SendPing

from .connection import serve_session
from .context import RelayContext
from .refusals import CLOSE_INTERNAL_ERROR
from .wsframes import ping_frame
from .wssocket import OwnedSocket

__all__ = ["AddressRule", "serve_websocket"]

log = logging.getLogger(__name__)

AddressRule = Callable[[str, Iterable[tuple[bytes, bytes]]], str | None]
"""The proxy-header rule: the client's address for a peer and its headers, or ``None``."""

_BLANK_LINE: Final = re.compile(b"\n\r?\n")
_BAD_REQUEST: Final = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def _json_refusal(ws: WSConnection, status: int, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    head = ws.send(RejectConnection(status_code=status, headers=headers, has_body=True))
    return head + ws.send(RejectData(data=body))


def _after_head(head: bytes) -> bytes:
    """The bytes after the request head: a client's first frames, sent without waiting
    for the ``101`` (the head ends at the first blank line, as h11 reads it)."""
    end = _BLANK_LINE.search(head)
    return head[end.end() :] if end is not None else b""


async def serve_websocket(
    sock: stdlib_socket.socket,
    head: bytes,
    peer: str,
    relay: RelayContext,
    sessions: set[OwnedSocket],
    address_rule: AddressRule | None,
) -> None:
    """Serve one WebSocket connection whose request ``head`` the door has read.

    Args:
        sessions: The open sessions, for the shutdown's one pass of closes.
        address_rule: Where the client's address comes from behind a proxy.
    """
    ws = WSConnection(ConnectionType.SERVER)
    try:
        ws.receive_data(head)
        request = next((e for e in ws.events() if isinstance(e, Request)), None)
    except RemoteProtocolError:
        request = None
    owned = OwnedSocket(sock, ws, peer, received=_after_head(head))
    if request is None:
        await owned.send(_BAD_REQUEST)
        return
    if address_rule is not None:
        owned.client_address = address_rule(peer, request.extra_headers) or peer
    if relay.closing:
        message = "The relay is shutting down; try again soon."
        await owned.send(_json_refusal(ws, 503, "unavailable", message))
        return
    # Registered before the first checkpoint after the `closing` check: the shutdown's
    # pass either sees this session or this session saw `closing`.
    sessions.add(owned)
    try:
        with trio.CancelScope() as owned.scope:
            await owned.send(ws.send(AcceptConnection()))
            await _run(owned, relay)
    finally:
        sessions.discard(owned)


async def _run(owned: OwnedSocket, relay: RelayContext) -> None:
    settings = relay.settings
    heartbeat = Heartbeat(trio.current_time(), settings.ws_ping_interval_s, settings.read_timeout_s)
    owned.on_pong = heartbeat.pong_received
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_beat, owned, heartbeat, nursery.cancel_scope)
            await serve_session(owned, relay)
            nursery.cancel_scope.cancel()
    except Exception:
        owned.close_nowait(CLOSE_INTERNAL_ERROR, "internal error")
        raise
    finally:
        owned.finished()
    if heartbeat.evicted or owned.gone:
        return
    with trio.move_on_after(settings.read_timeout_s):
        await owned.wait_closed()


async def _beat(owned: OwnedSocket, heartbeat: Heartbeat, session: trio.CancelScope) -> None:
    """Fire the heartbeat's timer when it asks, and carry out what it decides: send its
    pings, or end the session of a peer it found dead (:mod:`sync.heartbeat`)."""
    while True:
        await trio.sleep_until(heartbeat.next_timer)
        for action in heartbeat.timer_fired(trio.current_time()):
            match action:
                case SendPing(payload=payload):
                    owned.control(ping_frame(payload))
                case Evict():
                    log.info(
                        "no pong from %s in %.1f s: closing",
                        owned.client_address,
                        heartbeat.timeout_s,
                    )
                    session.cancel()
                    return
