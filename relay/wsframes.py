"""The relay's own WebSocket frames (RFC 6455, server to client), built once per message.

A server frame is unmasked: one byte of flags and opcode, the payload length in 1, 3 or 9
bytes, then the payload. The relay writes these bytes itself instead of asking wsproto
to frame each message for each subscriber: one update goes to every subscriber of a
shoot as the *same* bytes object, framed once (:func:`binary_frame` remembers the last
few payloads it framed, by identity, so a fan-out loop that hands it one payload per
subscriber builds the frame on the first call and returns that object on the others).

No extensions: permessage-deflate stays off. It would hold a zlib state per connection
(tens of KiB each, against the 30 KiB budget per idle connection) and cost CPU per
subscriber for the same bytes, while the relay's messages are small CBOR frames holding
Yjs updates that barely compress; and it would make "the same bytes for everyone"
impossible, since each connection's compressor has its own history.

wsproto parses what clients send (masked frames, fragments, control frames) except lone
binary frames, which :mod:`relay.wsreader` unmasks itself; the handshake's answer comes
from wsproto too.
"""

from __future__ import annotations

import struct
from typing import Final

__all__ = ["binary_frame", "close_frame", "ping_frame", "pong_frame"]

_FIN_BINARY: Final = 0x82
_FIN_CLOSE: Final = 0x88
_FIN_PING: Final = 0x89
_FIN_PONG: Final = 0x8A
#: Control frames carry at most 125 bytes of payload (RFC 6455 section 5.5).
MAX_CONTROL_PAYLOAD: Final = 125
#: Payloads whose frames are remembered: a fan-out alternates at most between an update
#: and the full-state frame of a resync, so a handful is plenty.
_REMEMBERED: Final = 4

_recent: list[tuple[bytes, bytes]] = []


def _header(first: int, length: int) -> bytes:
    if length < 126:
        return bytes((first, length))
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def binary_frame(payload: bytes) -> bytes:
    """The binary frame holding ``payload``, the same object for the same payload object.

    Identity, not equality: two answers with equal bytes are framed twice, which is cheap;
    comparing contents would cost a pass over every update for every subscriber.
    """
    for seen, frame in _recent:
        if seen is payload:
            return frame
    frame = _header(_FIN_BINARY, len(payload)) + payload
    _recent.insert(0, (payload, frame))
    del _recent[_REMEMBERED:]
    return frame


def _control(first: int, payload: bytes) -> bytes:
    payload = payload[:MAX_CONTROL_PAYLOAD]
    return bytes((first, len(payload))) + payload


def close_frame(code: int, reason: str) -> bytes:
    """A close frame; the reason is cut to fit (at a character boundary)."""
    encoded = reason.encode()[: MAX_CONTROL_PAYLOAD - 2]
    encoded = encoded.decode(errors="ignore").encode()
    return _control(_FIN_CLOSE, struct.pack("!H", code) + encoded)


def ping_frame(payload: bytes) -> bytes:
    return _control(_FIN_PING, payload)


def pong_frame(payload: bytes) -> bytes:
    return _control(_FIN_PONG, payload)
