"""The relay's own WebSocket endpoint: the handshake, the session, heartbeats, the close.

The door (:mod:`relay.door`) hands over each ``GET /ws`` upgrade with the bytes it read.
:mod:`relay.wshandshake` checks the handshake and gives the answer: a ``101`` without
extensions (permessage-deflate stays off, see :mod:`relay.wsframes`), a ``400`` (or
``426`` for another WebSocket version) for a broken handshake; a ``503`` with the API's
JSON error comes from here while the relay shuts down. Then the
session (:func:`relay.connection.serve_session`) runs over an
:class:`~relay.wssocket.OwnedSocket`.

Heartbeats: when to ping a session and when a silent peer is dead is decided by
:class:`sync.heartbeat.Heartbeat` (``ws_ping_interval_s``, ``read_timeout_s``);
:mod:`relay.heartbeat` runs every session's machine from one task.

After the session: the relay waits up to ``read_timeout_s`` for the peer's answer to its
close (reading and dropping whatever comes first), then closes the socket.
"""

from __future__ import annotations

import json
import logging
import socket as stdlib_socket
from collections.abc import Callable, Iterable
from http import HTTPStatus

import h11
import trio
from wsproto import ConnectionType
from wsproto.connection import Connection

from .connection import serve_session
from .context import RelayContext
from .heartbeat import Heartbeat
from .refusals import CLOSE_INTERNAL_ERROR
from .wshandshake import Handshake, HandshakeRefused, accept, accept_request
from .wssocket import OwnedSocket

__all__ = ["AddressRule", "hung_up", "serve_websocket"]

log = logging.getLogger(__name__)

AddressRule = Callable[[str, Iterable[tuple[bytes, bytes]]], str | None]
"""The proxy-header rule: the client's address for a peer and its headers, or ``None``."""


def _json_refusal(status: int, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    phrase = HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def open_socket(sock: stdlib_socket.socket, handshake: Handshake, peer: str) -> OwnedSocket:
    """The relay's side of an accepted connection; its reader starts with the frames the
    client sent with its request."""
    return OwnedSocket(sock, Connection(ConnectionType.SERVER), peer, received=handshake.early)


def hung_up(sock: stdlib_socket.socket) -> bool:
    """Whether the client has already closed its end (read without taking anything).

    After a restart, thousands of clients reconnect at once and wait in the kernel's
    queue; those that wait longer than their own time-out give up and try again. Their
    old connections still come out of the queue, request and all, and each cost a
    handshake and a session before its end was read: work for nobody, in the storm
    that left the relay short of CPU in the first place. A client that closes right
    after its request cannot answer a ping anyway.
    """
    try:
        return sock.recv(1, stdlib_socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False  # open, and quiet: waiting for the 101
    except OSError:
        return True  # reset


async def serve_websocket(
    sock: stdlib_socket.socket,
    head: bytes | tuple[h11.Request, bytes],
    peer: str,
    relay: RelayContext,
    sessions: set[OwnedSocket],
    address_rule: AddressRule | None,
    heartbeat: Heartbeat,
) -> None:
    """Serve one WebSocket connection whose request ``head`` the door has read.

    Args:
        head: The request head and what followed it, or the request as the door's h11
            parse gave it and the bytes after its head.
        sessions: The open sessions, for the shutdown's one pass of closes.
        heartbeat: Pings the session while it runs.
        address_rule: Where the client's address comes from behind a proxy.
    """
    if hung_up(sock):
        return  # it gave up while it waited in the kernel's queue: nobody to answer
    try:
        handshake = accept(head) if isinstance(head, bytes) else accept_request(*head)
    except HandshakeRefused as refused:
        refusing = OwnedSocket(sock, Connection(ConnectionType.SERVER), peer)
        try:
            await refusing.send(refused.response)
        finally:
            refusing.release()
        return
    owned = open_socket(sock, handshake, peer)
    try:
        if address_rule is not None:
            owned.client_address = address_rule(peer, handshake.headers) or peer
        if relay.closing:
            message = "The relay is shutting down; try again soon."
            await owned.send(_json_refusal(503, "unavailable", message))
            return
        # Registered before the first checkpoint after the `closing` check: the shutdown's
        # pass either sees this session or this session saw `closing`.
        sessions.add(owned)
        try:
            with trio.CancelScope() as owned.scope:
                await owned.send(handshake.response)
                await _run(owned, relay, heartbeat)
        finally:
            sessions.discard(owned)
    finally:
        owned.release()  # else each session would leave a cycle for a walk of the heap


async def _run(owned: OwnedSocket, relay: RelayContext, heartbeat: Heartbeat) -> None:
    beat = heartbeat.watch(owned)
    try:
        await serve_session(owned, relay)
    except Exception:
        owned.close_nowait(CLOSE_INTERNAL_ERROR, "internal error")
        raise
    finally:
        heartbeat.forget(owned)
        owned.finished()
    if beat.evicted or owned.gone:
        return
    with trio.move_on_after(relay.settings.read_timeout_s):
        await owned.wait_closed()
