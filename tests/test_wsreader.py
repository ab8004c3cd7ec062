"""Client frames cut whole (``relay.wsreader``): lone binary frames taken without wsproto,
everything else parsed by wsproto as before. Each scenario is read twice over a real
socket pair, with the cutter and with wsproto alone, in random pieces, and both must give
the same messages and the same closes."""

from __future__ import annotations

import os
import random
import socket
import struct
from typing import Any

import httpx
import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import AcceptConnection, BytesMessage, Ping, Request, TextMessage
from wsproto.events import Pong as WsPong
from wsproto.frame_protocol import FrameProtocol, Opcode

from relay.wshandshake import accept
from relay.wsreader import ClientFrames, lone_pong, unmask
from relay.wssocket import OwnedSocket, configure
from sync.codec import decode_server, encode
from sync.protocol import MAX_CLIENT_FRAME_BYTES, Hello, Pong, Welcome
from sync.protocol import Ping as ProtocolPing
from tests.wire import create_shoot


def _masked(payload: bytes, first: int = 0x82, length_bytes: int | None = None) -> bytes:
    """A client frame built by hand (``length_bytes`` forces a longer length field)."""
    mask = os.urandom(4)
    size = len(payload)
    if length_bytes is None:
        length_bytes = 0 if size < 126 else 2 if size < 1 << 16 else 8
    if length_bytes == 0:
        head = bytes((first, 0x80 | size))
    elif length_bytes == 2:
        head = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, size)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def test_unmasking_matches_wsproto() -> None:
    for size in (0, 1, 3, 4, 5, 125, 126, 1000, 70_000):
        payload = os.urandom(size)
        frame = _masked(payload)
        start = len(frame) - size
        assert unmask(frame, start) == payload
        protocol = FrameProtocol(client=False, extensions=[])
        protocol.receive_bytes(frame)
        (parsed,) = list(protocol.received_frames())
        assert parsed.payload == payload


def test_a_pong_is_read_as_wsproto_reads_it_or_left_to_wsproto() -> None:
    for size in (0, 1, 8, 125):
        payload = os.urandom(size)
        frame = _masked(payload, first=0x8A)
        assert lone_pong(frame) == payload
        protocol = FrameProtocol(client=False, extensions=[])
        protocol.receive_bytes(frame)
        (parsed,) = list(protocol.received_frames())
        assert (parsed.opcode, parsed.payload) == (Opcode.PONG, payload)
    assert lone_pong(_masked(b"x" * 126, first=0x8A, length_bytes=2)) is None
    assert lone_pong(_masked(b"x", first=0x8A, length_bytes=2)) is None
    assert lone_pong(bytes((0x8A, 1)) + b"x") is None  # unmasked
    assert lone_pong(_masked(b"x", first=0x89)) is None  # a ping
    assert lone_pong(_masked(b"x", first=0x9A)) is None  # a reserved bit
    assert lone_pong(_masked(b"xy", first=0x8A)[:-1]) is None  # not whole


def test_frames_are_cut_at_their_boundaries_whatever_the_pieces() -> None:
    lone, text = _masked(b"a" * 300), _masked(b"hi", first=0x81)
    long_field = _masked(b"b" * 10, length_bytes=2)  # not minimal: wsproto's to refuse
    data = lone + text + long_field
    for piece in (1, 2, 7, len(data)):
        frames = ClientFrames(1000)
        found: list[tuple[bytes | None, bytes]] = []
        for start in range(0, len(data), piece):
            frames.feed(data[start : start + piece])
            while (frame := frames.next_frame()) is not None:
                found.append(frame)
        assert found == [(b"a" * 300, b""), (None, text), (None, long_field)]


def test_a_frame_too_large_to_hold_streams_everything_to_wsproto() -> None:
    frames = ClientFrames(100)
    head = _masked(b"x" * 101)[:20]
    frames.feed(head)
    assert frames.next_frame() == (None, head)
    assert frames.streaming
    frames.feed(b"more")
    assert frames.next_frame() == (None, b"more")
    assert frames.next_frame() is None


def test_a_lone_frame_inside_a_fragmented_message_is_left_to_wsproto() -> None:
    frames = ClientFrames(1000)
    frame = _masked(b"x")
    frames.feed(frame)
    assert frames.next_frame(take_lone=False) == (None, frame)


# -- over a socket pair, both ways ------------------------------------------------------


def _open() -> tuple[WSConnection, WSConnection]:
    server, client = WSConnection(ConnectionType.SERVER), WSConnection(ConnectionType.CLIENT)
    server.receive_data(client.send(Request(host="relay", target="/ws")))
    assert any(isinstance(e, Request) for e in server.events())
    client.receive_data(server.send(AcceptConnection()))
    assert any(isinstance(e, AcceptConnection) for e in client.events())
    return server, client


#: What a scenario's client sends, lone binary frames most often (as clients do).
_KINDS = ("lone",) * 3 + ("fragments", "text", "ping", "pong", "pong", "long field", "bad pong")


def _scenario(rng: random.Random, client: WSConnection) -> tuple[bytes, list[Any]]:
    """Random client traffic: its bytes and the messages the relay must read from it."""
    data = bytearray()
    expected: list[Any] = []
    for _ in range(rng.randrange(1, 12)):
        kind = rng.choice(_KINDS)
        size = rng.choice([0, 1, 125, 126, 300, 65_535, 65_536, MAX_CLIENT_FRAME_BYTES])
        payload = rng.randbytes(size)
        if kind == "lone":
            data += _masked(payload)
            expected.append(payload)
        elif kind == "long field":  # a larger length field than needed: 8 bytes for 300
            data += _masked(payload[:300], length_bytes=8)
            expected.append("closed 1002")
            break
        elif kind == "text":
            data += client.send(TextMessage(data="héllo " * (size // 100)))
            expected.append("héllo " * (size // 100))
        elif kind == "ping":
            data += client.send(Ping(payload[:100]))
        elif kind == "pong":  # answers the relay's heartbeat (read without wsproto)
            data += client.send(WsPong(payload[:125]))
            expected.append(("pong", payload[:125]))
        elif kind == "bad pong":  # broken the ways wsproto refuses: the cutter leaves them
            data += rng.choice(
                [
                    _masked(payload[:126], first=0x8A, length_bytes=2),  # too long for control
                    bytes((0x8A, 4)) + b"abcd",  # not masked
                    _masked(b"rsv", first=0xCA),  # a reserved bit
                    _masked(b"frag", first=0x0A),  # not final
                ]
            )
            expected.append("closed 1002")
            break
        else:
            cuts = sorted(rng.sample(range(size + 1), min(3, size + 1)))
            parts = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, size], strict=True)]
            for n, part in enumerate(parts):
                data += client.send(BytesMessage(part, message_finished=n == len(parts) - 1))
                if rng.random() < 0.3:
                    data += client.send(Ping(b"between"))
                if n < len(parts) - 1 and rng.random() < 0.3:  # read before the message
                    data += client.send(WsPong(b"between"))
                    expected.append(("pong", b"between"))
            expected.append(payload)
    return bytes(data), expected


async def _read(data: bytes, whole: bool, seed: int) -> list[Any]:
    """What a relay socket reads from ``data`` sent in random pieces, then the close."""
    relay_side, client_side = socket.socketpair()
    configure(relay_side)
    client_side.setblocking(False)
    pieces = random.Random(seed)
    got: list[Any] = []

    async def send() -> None:
        view = memoryview(data)
        while view:
            piece = view[: pieces.choice([1, 3, 100, 4096, 70_000])]
            await trio.lowlevel.wait_writable(client_side)
            view = view[client_side.send(piece) :]
            await trio.lowlevel.checkpoint()
        client_side.shutdown(socket.SHUT_WR)

    async def drain() -> None:
        while True:  # pongs and the close answer
            await trio.lowlevel.wait_readable(client_side)
            if not client_side.recv(65536):
                return

    try:
        owned = OwnedSocket(
            relay_side, Connection(ConnectionType.SERVER), "127.0.0.1", cut_frames=whole
        )
        owned.on_pong = lambda payload: got.append(("pong", payload))
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                nursery.start_soon(drain)
                while (message := await owned.receive()) is not None:
                    got.append(message)
                if owned.peer_close not in (None, 1006):
                    got.append(f"closed {owned.peer_close}")
                nursery.cancel_scope.cancel()
    finally:
        relay_side.close()
        client_side.close()
    return got


@pytest.mark.parametrize("seed", range(30))
async def test_the_cutter_reads_what_wsproto_alone_reads(seed: int) -> None:
    _, client = _open()
    data, expected = _scenario(random.Random(seed), client)
    assert await _read(data, True, seed) == expected
    assert await _read(data, False, seed) == expected


async def test_a_lone_frame_inside_a_fragmented_message_is_refused_as_before() -> None:
    _, client = _open()
    data = client.send(BytesMessage(b"first part", message_finished=False)) + _masked(b"lone")
    for whole in (True, False):
        assert await _read(data, whole, 0) == ["closed 1002"]


async def test_a_first_frame_sent_with_the_handshake_is_read(relay_url: str) -> None:
    """A client that does not wait for the 101 sends its first frames with the request:
    the relay reads them (wsproto's server handshake alone dropped them: no hello came,
    and the relay closed the session after its hello time-out)."""
    host, port = relay_url.removeprefix("http://").split(":")
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
        client = WSConnection(ConnectionType.CLIENT)
        request = client.send(Request(host=f"{host}:{port}", target="/ws"))
        hello = _masked(encode(Hello(code, "viewer")))
        async with await trio.open_tcp_stream(host, int(port)) as stream:
            await stream.send_all(request + hello + _masked(encode(ProtocolPing(7))))
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive_some(65536)
            head, _, rest = head.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101")
            frames = FrameProtocol(client=True, extensions=[])
            messages: list[Any] = []
            message = bytearray()
            while len(messages) < 2:
                frames.receive_bytes(rest)
                for frame in frames.received_frames():
                    if frame.opcode not in (Opcode.BINARY, Opcode.CONTINUATION):
                        continue  # the relay's pings
                    message += frame.payload
                    if frame.message_finished:
                        messages.append(decode_server(bytes(message)))
                        message.clear()
                if len(messages) < 2:
                    rest = await stream.receive_some(65536)
            assert isinstance(messages[0], Welcome)
            assert isinstance(messages[1], Pong)
            assert messages[1].nonce == 7


_UPGRADE = (
    b"Upgrade: websocket{eol}Connection: Upgrade{eol}Sec-WebSocket-Version: 13{eol}"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=={eol}"
)


@pytest.mark.parametrize(
    ("eol", "after"),
    [(b"\r\n", b""), (b"\r\n", b"\x82\x80abcd"), (b"\n", b"\x82\x80abcd\r\n\r\n")],
)
def test_the_bytes_after_the_head_are_found_as_h11_ends_the_head(eol: bytes, after: bytes) -> None:
    head = b"GET /ws HTTP/1.1" + eol + b"Host: a" + eol + _UPGRADE.replace(b"{eol}", eol) + eol
    assert accept(head + after).early == after
