"""The floor: the smallest Python server that does the relay's fan-out job, for reference.

What the relay's CPU per delivered frame and its fan-out latency are divided by, measured
in the same run with the same load clients. It is the cheapest shape a trio server can
have (measured against a C server, it costs about 1.8x the kernel's own cost per frame):

- it owns its sockets (stdlib sockets, non-blocking, woken through trio's I/O waits; no
  stream wrappers, no locks, no ASGI);
- it frames each message **once** (an unmasked binary frame) and writes the same bytes to
  every subscriber with one non-blocking ``send`` straight from the fan-out loop, with no
  await per subscriber;
- only when the kernel's buffer is full (``BlockingIOError`` or a partial write) does the
  rest go into that subscriber's bounded queue, drained by its sender task when the socket
  is writable; a subscriber whose queue reaches the bound is closed, so one that stops
  reading never stalls the others (the relay resyncs instead);
- ``TCP_NOTSENT_LOWAT`` keeps the kernel from being a hidden unbounded queue in front of
  that one.

Session shape, the baseline's (``benchmarks.baseline``), so the same load clients drive
it: the first binary message is the relay's CBOR ``hello`` (only its ``shoot`` is read, as
the room), answered by one small frame (the stand-in for ``welcome``); every later message
is sent, unchanged, to everyone in the room, the sender included. Client frames (masked)
and the upgrade are parsed by wsproto. A request without ``Upgrade: websocket`` (the
readiness probe) gets ``200 ok``.

Run it as ``python -m benchmarks.floor --port N``.
"""

from __future__ import annotations

import argparse
import socket
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Final

import cbor2
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Request,
)

from sync.protocol import MAX_CLIENT_FRAME_BYTES

from .limits import raise_fd_limit

__all__ = ["frame", "main", "serve_floor"]

#: The stand-in for ``welcome``: an empty CBOR map, as one binary frame.
JOINED: Final = b"\x82\x01\xa0"
OK_RESPONSE: Final = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
MAX_HEAD_BYTES: Final = 16 * 1024
RECEIVE_BYTES: Final = 64 * 1024
#: Frames (or frame remainders) queued per subscriber before it is closed.
QUEUE_BOUND: Final = 256
#: The relay's bound on the kernel's unsent bytes per socket (see the fan-out facts).
NOTSENT_LOWAT: Final = 16 * 1024
BACKLOG: Final = 4096


def frame(payload: bytes) -> bytes:
    """An unmasked binary server frame (FIN set), built once per message."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x82, n) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x82, 126, n) + payload
    return struct.pack("!BBQ", 0x82, 127, n) + payload


@dataclass(eq=False, slots=True)
class Peer:
    """One connection: its socket, and the backlog only a full kernel buffer creates."""

    sock: socket.socket
    queue: deque[memoryview] = field(default_factory=deque)
    backlog: trio.Event = field(default_factory=trio.Event)
    closed: bool = False

    def push(self, data: bytes) -> None:
        """Send now if nothing is queued, else queue (order is kept); never awaits."""
        if self.closed:
            return
        if self.queue:
            if len(self.queue) >= QUEUE_BOUND:
                self.close()
                return
            self.queue.append(memoryview(data))
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.close()
            return
        if sent < len(data):
            self.queue.append(memoryview(data)[sent:])
            self.backlog.set()

    async def drain(self) -> None:
        """The sender task: sleeps until there is a backlog, then writes it in order."""
        while not self.closed:
            await self.backlog.wait()
            self.backlog = trio.Event()
            while self.queue and not self.closed:
                try:
                    await trio.lowlevel.wait_writable(self.sock)
                except trio.ClosedResourceError:  # closed by a fan-out at the bound
                    return
                if self.closed:
                    # Closed after the kernel said "writable" and before this task ran
                    # (the queue is cleared): a run with 10,000 peers met it.
                    return
                head = self.queue[0]
                try:
                    sent = self.sock.send(head)
                except BlockingIOError:
                    continue
                except OSError:
                    self.close()
                    return
                if sent == len(head):
                    self.queue.popleft()
                else:
                    self.queue[0] = head[sent:]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.clear()
            self.backlog.set()
            trio.lowlevel.notify_closing(self.sock)
            self.sock.close()


@dataclass(slots=True)
class Floor:
    rooms: dict[str, set[Peer]] = field(default_factory=dict)

    async def handle(self, sock: socket.socket) -> None:
        peer = Peer(sock)
        try:
            head = await _read_head(sock)
            if head is None:
                return
            if b"upgrade: websocket" not in head.lower():
                peer.push(OK_RESPONSE)
                return
            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer.drain)
                await self._session(peer, head)
                nursery.cancel_scope.cancel()
        finally:
            peer.close()

    async def _session(self, peer: Peer, head: bytes) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        end = head.index(b"\r\n\r\n") + 4
        ws.receive_data(head[:end])
        early = head[end:]  # wsproto's server drops bytes that came before its accept
        room: set[Peer] | None = None
        parts: list[bytes] = []  # of a message wsproto hands over in pieces
        try:
            while True:
                for event in ws.events():
                    if isinstance(event, Request):
                        peer.push(ws.send(AcceptConnection()))
                        if early:
                            ws.receive_data(early)
                    elif isinstance(event, BytesMessage):
                        parts.append(bytes(event.data))
                        if sum(map(len, parts)) > MAX_CLIENT_FRAME_BYTES:
                            return
                        if not event.message_finished:
                            continue
                        message = b"".join(parts)
                        parts.clear()
                        if room is None:
                            room = self._join(message)
                            peer.push(JOINED)
                            room.add(peer)
                        else:
                            data = frame(message)  # framed once
                            for other in list(room):
                                other.push(data)
                    elif isinstance(event, Ping):
                        peer.push(ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        peer.push(ws.send(event.response()))
                        return
                if peer.closed:
                    return
                try:
                    await trio.lowlevel.wait_readable(peer.sock)
                    data = peer.sock.recv(RECEIVE_BYTES)
                except BlockingIOError:
                    continue
                except (OSError, trio.ClosedResourceError):
                    return
                ws.receive_data(data or None)
                if not data:
                    return
        finally:
            if room is not None:
                room.discard(peer)

    def _join(self, hello: bytes) -> set[Peer]:
        message = cbor2.loads(hello)
        shoot = str(message.get("shoot")) if isinstance(message, dict) else ""
        return self.rooms.setdefault(shoot, set())


async def _read_head(sock: socket.socket) -> bytes | None:
    """The request head and whatever followed it (bounded), or ``None`` if it never came."""
    head = b""
    while b"\r\n\r\n" not in head:
        if len(head) > MAX_HEAD_BYTES:
            return None
        await trio.lowlevel.wait_readable(sock)
        try:
            chunk = sock.recv(RECEIVE_BYTES)
        except BlockingIOError:
            continue
        except OSError:
            return None
        if not chunk:
            return None
        head += chunk
    return head


def _listener(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(BACKLOG)
    listener.setblocking(False)
    return listener


async def serve_floor(
    port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Accept connections on 127.0.0.1:``port`` until cancelled; reports the real port."""
    floor = Floor()
    listener = _listener(port)
    try:
        async with trio.open_nursery() as nursery:
            task_status.started(listener.getsockname()[1])
            while True:
                await trio.lowlevel.wait_readable(listener)
                try:
                    sock, _ = listener.accept()
                except (BlockingIOError, ConnectionAbortedError):
                    continue
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, NOTSENT_LOWAT)
                nursery.start_soon(floor.handle, sock)
    finally:
        trio.lowlevel.notify_closing(listener)
        listener.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    raise_fd_limit()
    trio.run(serve_floor, args.port)


if __name__ == "__main__":
    main()
