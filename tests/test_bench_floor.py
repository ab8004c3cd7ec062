"""The floor reference server (``benchmarks.floor``) does the job it is compared on.

If it dropped, reordered or garbled frames, or let one stalled reader hold up the others,
the relay's ratios to it would be measured against the wrong thing.
"""

from __future__ import annotations

import contextlib
import socket
import struct

import cbor2
import httpx
import pytest
import trio
import trio.testing

from benchmarks.floor import JOINED, QUEUE_BOUND, Peer, frame, serve_floor
from benchmarks.wsclient import OP_CLOSE, ConnectionClosed, WsClient, connect
from benchmarks.wsclient import frame as client_frame


async def _join(port: int, shoot: str) -> WsClient:
    ws = await connect("127.0.0.1", port)
    await ws.send(cbor2.dumps({"type": "hello", "shoot": shoot}))
    assert await ws.receive() == JOINED[2:]
    return ws


def test_frame_headers_cover_every_length_class() -> None:
    assert frame(b"x")[:2] == b"\x82\x01"
    assert frame(b"x" * 200)[:4] == b"\x82\x7e\x00\xc8"
    assert frame(b"x" * 70_000)[:2] == b"\x82\x7f"
    assert len(frame(b"x" * 70_000)) == 70_000 + 10


async def test_each_message_reaches_everyone_in_its_room_in_order() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_floor, 0)
            async with httpx.AsyncClient() as http:
                probe = await http.get(f"http://127.0.0.1:{port}/")
            assert (probe.status_code, probe.text) == (200, "ok")
            writer, reader = await _join(port, "1234"), await _join(port, "1234")
            other_room = await _join(port, "5678")
            payloads = [bytes([i]) * (i * 50) for i in range(1, 6)]  # 50 to 250 bytes
            for payload in payloads:
                await writer.send(payload)
            for ws in (writer, reader):
                assert [await ws.receive() for _ in payloads] == payloads
            with trio.move_on_after(0.2):
                await other_room.receive()
                raise AssertionError("a message crossed into another room")
            for ws in (writer, reader, other_room):
                await ws.aclose()
            nursery.cancel_scope.cancel()


async def test_a_fragmented_message_is_relayed_whole() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_floor, 0)
            writer, reader = await _join(port, "1234"), await _join(port, "1234")
            first = bytes([0x02, 0x80 | 3, 0, 0, 0, 0]) + b"abc"  # binary, FIN not set
            last = bytes([0x80, 0x80 | 2, 0, 0, 0, 0]) + b"de"  # continuation, FIN
            await writer._send(first + last)
            assert await reader.receive() == b"abcde"
            assert await writer.receive() == b"abcde"
            for ws in (writer, reader):
                await ws.aclose()
            nursery.cancel_scope.cancel()


async def test_a_reader_that_stops_is_closed_and_does_not_stall_the_others() -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_floor, 0)
            writer, reader = await _join(port, "1234"), await _join(port, "1234")
            # A peer that says hello and then never reads, with a small receive buffer.
            stalled = socket.create_connection(("127.0.0.1", port))
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.sendall(
                b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            hello = cbor2.dumps({"type": "hello", "shoot": "1234"})
            stalled.sendall(bytes([0x82, 0x80 | len(hello), 0, 0, 0, 0]) + hello)
            payload = b"p" * 1000
            count = QUEUE_BOUND * 20  # far more than the kernel and the bound hold
            received = 0

            async def read_all() -> None:
                nonlocal received
                while received < count:
                    assert await reader.receive() == payload
                    received += 1

            async with trio.open_nursery() as readers:
                readers.start_soon(read_all)
                for _ in range(count):
                    await writer.send(payload)
                    await writer.receive()
            assert received == count
            # The stalled peer was closed: once its buffers are read, the stream ends.
            stalled.settimeout(10)
            with stalled:
                while stalled.recv(65536):
                    pass
            for ws in (writer, reader):
                await ws.aclose()
            nursery.cancel_scope.cancel()


async def test_a_client_close_is_answered_with_a_close() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_floor, 0)
            ws = await _join(port, "1234")
            await ws.send(b"before")
            assert await ws.receive() == b"before"
            await ws._send(client_frame(OP_CLOSE, struct.pack("!H", 1000)))
            with pytest.raises(ConnectionClosed) as closed:
                await ws.receive()
            assert closed.value.code == 1000
            nursery.cancel_scope.cancel()


class _CloseOnWake(trio.abc.Instrument):
    """Closes ``peer`` right after the I/O wait in which its socket became writable: the
    sender task is woken then, and runs only after the close (a fan-out closing a peer at
    the bound in the same pass, which a 10,000-peer run met)."""

    def __init__(self, peer: Peer) -> None:
        self.peer, self.armed = peer, False

    def after_io_wait(self, timeout: float) -> None:
        if self.armed and not self.peer.closed:
            self.peer.close()


async def test_a_peer_closed_as_its_socket_became_writable_ends_its_sender_quietly() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with theirs:
        peer = Peer(ours)
        while True:  # fill the kernel's buffer, so the next frame is queued
            try:
                ours.send(b"f" * 65536)
            except BlockingIOError:
                break
        peer.push(b"queued")
        assert len(peer.queue) == 1
        closer = _CloseOnWake(peer)
        trio.lowlevel.add_instrument(closer)
        try:
            with trio.fail_after(10):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(peer.drain)  # an IndexError here fails the test
                    await trio.testing.wait_all_tasks_blocked()
                    closer.armed = True
                    theirs.setblocking(False)
                    with contextlib.suppress(BlockingIOError):
                        while theirs.recv(1 << 20):
                            pass
        finally:
            trio.lowlevel.remove_instrument(closer)
        assert peer.closed
        assert not peer.queue
