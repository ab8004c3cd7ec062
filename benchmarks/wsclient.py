"""A minimal WebSocket client for load generation: one socket, no tasks, no buffers to tune.

Why not trio-websocket: it runs a reader task and a memory channel per connection and
parses frames in pure Python through wsproto; with thousands of connections on the same
two cores as the relay, the generator would measure itself. This client does only what a
benchmark peer needs (RFC 6455, client side): the upgrade handshake, masked binary
frames out, unmasked frames in, ``pong`` for every ``ping``, and a close handshake. It
counts every byte it reads, so the benchmarks can report bytes on the wire.

It is a benchmark tool, not a general client: no extensions, no text frames out, no
fragmentation out (fragments in are reassembled).
"""

from __future__ import annotations

import base64
import contextlib
import os
import struct
from typing import Final

import trio

__all__ = ["ConnectionClosed", "WsClient", "connect"]

OP_CONT: Final = 0x0
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA
MAX_HEADER_BYTES: Final = 16 * 1024


class ConnectionClosed(Exception):
    """The server closed the connection (``code`` is ``None`` when it just went away)."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"connection closed ({code})")
        self.code = code


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return payload
    repeated = (key * (n // 4 + 1))[:n]
    masked = int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")
    return masked.to_bytes(n, "little")


def frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (FIN set)."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + key + _mask(payload, key)


class WsClient:
    """An open WebSocket connection. Not safe to receive from two tasks at once."""

    def __init__(self, stream: trio.SocketStream, leftover: bytes, handshake_bytes: int) -> None:
        self._stream = stream
        self._buffer = bytearray(leftover)
        self._send_lock = trio.Lock()
        self.bytes_received = handshake_bytes
        """Every byte read from the socket, the HTTP upgrade response included."""
        self.closed = False

    async def send(self, payload: bytes) -> None:
        """Send one binary message."""
        await self._send(frame(OP_BINARY, payload))

    async def _send(self, data: bytes) -> None:
        async with self._send_lock:
            await self._stream.send_all(data)

    async def _fill(self) -> None:
        chunk = await self._stream.receive_some(65536)
        if not chunk:
            self.closed = True
            raise ConnectionClosed(None)
        self.bytes_received += len(chunk)
        self._buffer += chunk

    async def receive(self) -> bytes:
        """The next binary message; pings are answered on the way.

        Raises:
            ConnectionClosed: the server closed the connection or it broke.
        """
        fragments: list[bytes] = []
        while True:
            buf = self._buffer
            while len(buf) < 2:
                await self._fill()
            first, second = buf[0], buf[1]
            length = second & 0x7F
            offset = 2
            if length == 126:
                while len(buf) < 4:
                    await self._fill()
                (length,) = struct.unpack_from("!H", buf, 2)
                offset = 4
            elif length == 127:
                while len(buf) < 10:
                    await self._fill()
                (length,) = struct.unpack_from("!Q", buf, 2)
                offset = 10
            while len(buf) < offset + length:
                await self._fill()
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            opcode = first & 0x0F
            if opcode == OP_PING:
                await self._send(frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.closed = True
                # the server may already have gone
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self._send(frame(OP_CLOSE, payload[:2]))
                await self._stream.aclose()
                raise ConnectionClosed(code)
            elif opcode in (OP_BINARY, OP_CONT):
                fragments.append(payload)
                if first & 0x80:
                    return fragments[0] if len(fragments) == 1 else b"".join(fragments)
            # text frames and pongs are not part of the benchmark protocol: skipped

    async def aclose(self) -> None:
        """Close without waiting for the server's answer (the benchmark is ending).

        The socket is closed even when this runs cancelled (a reconnect that gave up on
        its deadline): a leaked one would hold a session open on the server until its
        heartbeat evicted it, and the storm would measure the load client's leak.
        """
        try:
            if not self.closed:
                self.closed = True
                with trio.move_on_after(1):
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await self._send(frame(OP_CLOSE, struct.pack("!H", 1000)))
        finally:
            await self._stream.aclose()


async def connect(host: str, port: int, path: str = "/ws") -> WsClient:
    """Open a TCP connection and upgrade it.

    Raises:
        OSError: the connection was refused or broke during the handshake.
    """
    stream = await trio.open_tcp_stream(host, port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await stream.send_all(request.encode())
        data = bytearray()
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(4096)
            if not chunk or len(data) > MAX_HEADER_BYTES:
                raise OSError("the server closed the connection during the upgrade")
            data += chunk
        end = data.index(b"\r\n\r\n") + 4
        status = bytes(data[: data.index(b"\r\n")])
        if status.split(b" ")[1:2] != [b"101"]:
            raise OSError(f"upgrade refused: {status.decode(errors='replace')}")
        return WsClient(stream, bytes(data[end:]), len(data))
    except BaseException:
        await stream.aclose()
        raise
