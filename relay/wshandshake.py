"""The WebSocket opening handshake (RFC 6455 section 4.2), sans-I/O: a request head in,
the ``101`` (or the reason to refuse) out.

wsproto's own handshake parses the head with a second h11 connection, builds event
objects and serialises the answer through h11 again; a relay restarted under 5,000
reconnecting clients spent about an eighth of its event loop there. The checks are few
and fixed, so they are made here, on the h11 parse the door already made to route the
connection (:func:`accept_request`; :func:`accept` parses a head itself, for an upgrade
taken back from hypercorn), and the answer is a constant with the accept token in it. Client frames are still parsed by wsproto, by its
frame-level :class:`wsproto.connection.Connection` (no handshake state); the bytes the
client sent after the head (:attr:`Handshake.early`) go to the socket's frame reader.

The checks are wsproto's: ``GET``, HTTP/1.1, a ``Host``, ``Connection`` with an
``upgrade`` token, ``Upgrade: websocket``, ``Sec-WebSocket-Version: 13`` (else ``426``
naming the version) and a ``Sec-WebSocket-Key`` that is 16 bytes in base64 (wsproto did
not check the key's form; RFC 6455 requires it). No extension or subprotocol is
accepted: the answer names none, so a client offering permessage-deflate goes without.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Final

import h11

from .routing import MAX_HEAD_BYTES

__all__ = ["Handshake", "HandshakeRefused", "accept", "accept_request"]

_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_ACCEPTED: Final = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: %s\r\n\r\n"
)


@dataclass(frozen=True, slots=True)
class Handshake:
    """An acceptable opening handshake."""

    response: bytes
    """The ``101`` to write."""
    headers: list[tuple[bytes, bytes]]
    """The request's headers (names in lower case), for the proxy-address rule."""
    early: bytes
    """Bytes the client sent after the head (its first frames), for the frame parser."""


class HandshakeRefused(Exception):
    """The request is not a WebSocket handshake the relay accepts.

    Args:
        response: The HTTP answer to write before closing.
    """

    def __init__(self, reason: str, response: bytes) -> None:
        super().__init__(reason)
        self.response = response


def _refusal(status: int, reason: str, extra: bytes = b"") -> HandshakeRefused:
    phrase = {400: b"Bad Request", 426: b"Upgrade Required"}[status]
    response = b"HTTP/1.1 %d %s\r\n%scontent-length: 0\r\nconnection: close\r\n\r\n" % (
        status,
        phrase,
        extra,
    )
    return HandshakeRefused(reason, response)


def _tokens(value: bytes) -> list[bytes]:
    return [token.strip().lower() for token in value.split(b",")]


def accept_token(key: bytes) -> bytes:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def accept(head: bytes) -> Handshake:
    """Check a request head (and whatever followed it) as a WebSocket opening handshake.

    Raises:
        HandshakeRefused: not a complete, acceptable handshake; its ``response`` says so.
    """
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    try:
        parser.receive_data(head)
        request = parser.next_event()
    except h11.RemoteProtocolError as exc:
        raise _refusal(400, f"malformed request: {exc}") from exc
    if not isinstance(request, h11.Request):
        raise _refusal(400, "incomplete request head")
    early, _ = parser.trailing_data
    return accept_request(request, bytes(early))


def accept_request(request: h11.Request, early: bytes) -> Handshake:
    """Check a request h11 has already parsed (the door's), with the bytes after its head.

    Raises:
        HandshakeRefused: not an acceptable handshake; its ``response`` says so.
    """
    if request.method != b"GET" or request.http_version != b"1.1":
        raise _refusal(400, "the handshake must be an HTTP/1.1 GET")
    values: dict[bytes, bytes] = {}
    connection: list[bytes] = []
    for name, value in request.headers:  # h11 gives names in lower case
        if name == b"connection":
            connection += _tokens(value)
        else:
            values.setdefault(name, value)
    if b"upgrade" not in connection:
        raise _refusal(400, "missing 'Connection: Upgrade'")
    if values.get(b"upgrade", b"").strip().lower() != b"websocket":
        raise _refusal(400, "missing 'Upgrade: websocket'")
    version = values.get(b"sec-websocket-version")
    if version is None or version.strip() != b"13":
        raise _refusal(426, "unsupported WebSocket version", b"Sec-WebSocket-Version: 13\r\n")
    key = values.get(b"sec-websocket-key", b"").strip()
    try:
        valid_key = len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        valid_key = False
    if not valid_key:
        raise _refusal(400, "missing or malformed 'Sec-WebSocket-Key'")
    # h11 requires a Host header on HTTP/1.1 requests: a request without one never gets here.
    return Handshake(_ACCEPTED % accept_token(key), list(request.headers), early)
