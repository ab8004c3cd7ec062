"""Client frames cut at their boundaries, so the common one needs no WebSocket parser.

Nearly every frame a client sends is one whole binary message in one frame (a write, a
ping of the protocol). wsproto parses each of them with a generator-driven state machine;
at a shoot's pace, one frame tens of milliseconds after the last, that was about a tenth
of the relay's CPU per write. :class:`ClientFrames` only finds where each frame ends: a
lone, masked, final binary frame with no reserved bits and a minimally encoded length is
unmasked here and becomes the message; every other frame (fragments, text, control
frames, anything malformed) goes to wsproto *whole*, so wsproto's buffer is empty between
frames and it parses, answers and refuses those exactly as before.

Pongs are the one other frame common enough to matter: the relay pings every connection
every few seconds, so a relay holding 10,000 connections reads 2,000 pongs a second.
:func:`lone_pong` reads a well-formed one (final, masked, at most 125 bytes, no reserved
bits) without wsproto, whose parse cost several times as much; the socket hands its
payload on as wsproto's event would have been (a control frame changes nothing in
wsproto's state, so it is as if wsproto had read it). Any other pong still goes to
wsproto, which refuses it as before.

Bounds: a frame waits here only until it is whole, and only if its header declares at most
``limit`` bytes. A larger one (the session refuses it anyway) switches the connection to
*streaming*: from then on every byte goes to wsproto as it arrives, whose messages the
socket bounds while they arrive (see :mod:`relay.wssocket`). Pure: no sockets.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ClientFrames", "lone_pong", "unmask"]

_FIN_BINARY: Final = 0x82
_FIN_PONG: Final = 0x8A
#: The most a control frame may carry (RFC 6455, 5.5), so its length fits in 7 bits.
_MAX_CONTROL_PAYLOAD: Final = 125
_MASKED: Final = 0x80
_DATA_OPCODES: Final = frozenset((0x0, 0x1, 0x2))


def unmask(frame: bytes, start: int) -> bytes:
    """The payload of a masked ``frame`` whose payload begins at ``start``."""
    length = len(frame) - start
    key = frame[start - 4 : start] * ((length + 3) // 4)
    payload = int.from_bytes(frame[start:], "little") ^ int.from_bytes(key[:length], "little")
    return payload.to_bytes(length, "little")


def lone_pong(frame: bytes) -> bytes | None:
    """The payload of ``frame`` if it is a well-formed pong (see the module docstring),
    else ``None`` (wsproto's to parse). ``frame`` is one whole frame."""
    if len(frame) < 6 or frame[0] != _FIN_PONG or not frame[1] & _MASKED:
        return None
    length = frame[1] & 0x7F
    if length > _MAX_CONTROL_PAYLOAD or len(frame) != 6 + length:
        return None
    return unmask(frame, 6)


class ClientFrames:
    """Bytes from one client, cut into whole frames (see the module docstring).

    Args:
        limit: The largest payload held here until its frame is whole.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self.streaming = False
        """Set once a frame was too large to hold: every byte now goes to wsproto."""

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def take_rest(self) -> bytes:
        """Everything held (a partial frame), for wsproto; the caller stops using this."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    def next_frame(self, take_lone: bool = True) -> tuple[bytes | None, bytes] | None:
        """The next whole frame, or ``None`` until more bytes come.

        Args:
            take_lone: Whether a lone binary frame may be taken as a message (not while
                wsproto holds part of a fragmented message: then it is wsproto's to
                refuse).

        Returns:
            ``(message, b"")`` for a lone binary frame: the unmasked payload is the
            message. ``(None, raw)`` for bytes wsproto must parse: one whole frame, or,
            once streaming, whatever came.
        """
        buffer = self._buffer
        if self.streaming:
            return None if not buffer else (None, self.take_rest())
        if len(buffer) < 2:
            return None
        first, second = buffer[0], buffer[1]
        length = second & 0x7F
        start = 2
        minimal = True
        if length == 126:
            if len(buffer) < 4:
                return None
            length = int.from_bytes(buffer[2:4], "big")
            start, minimal = 4, length >= 126
        elif length == 127:
            if len(buffer) < 10:
                return None
            length = int.from_bytes(buffer[2:10], "big")
            start, minimal = 10, length >= 1 << 16
        masked = bool(second & _MASKED)
        if masked:
            start += 4
        if length > self._limit:
            self.streaming = True
            return None, self.take_rest()
        end = start + length
        if len(buffer) < end:
            return None
        frame = bytes(buffer[:end])
        del buffer[:end]
        if take_lone and first == _FIN_BINARY and masked and minimal:
            return unmask(frame, start), b""
        return None, frame

    @staticmethod
    def starts_data(frame: bytes) -> bool:
        """Whether a frame handed to wsproto is a data frame (part of a message)."""
        return bool(frame) and frame[0] & 0x0F in _DATA_OPCODES
