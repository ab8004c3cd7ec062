"""The relay's WebSocket opening handshake, against wsproto's client."""

from __future__ import annotations

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request

from relay.wshandshake import HandshakeRefused, accept, accept_token
from relay.wsreader import ClientFrames
from sync.protocol import MAX_CLIENT_FRAME_BYTES

_GOOD = [
    (b"Host", b"relay.example"),
    (b"Upgrade", b"websocket"),
    (b"Connection", b"keep-alive, Upgrade"),
    (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"Sec-WebSocket-Version", b"13"),
]


def _head(headers: list[tuple[bytes, bytes]], method: bytes = b"GET") -> bytes:
    lines = [method + b" /ws HTTP/1.1", *(name + b": " + value for name, value in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def test_rfc_6455_sample_key() -> None:
    assert accept_token(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_a_wsproto_client_is_accepted_and_its_early_frames_are_kept() -> None:
    client = WSConnection(ConnectionType.CLIENT)
    head = client.send(Request(host="relay.example", target="/ws?v=1"))
    handshake = accept(head)
    client.receive_data(handshake.response)
    assert any(isinstance(event, AcceptConnection) for event in client.events())
    assert (b"host", b"relay.example") in handshake.headers
    # The client's first frame, sent before the answer came, reaches the frame parser.
    hello = client.send(BytesMessage(b"hello"))
    early = accept(head + hello).early
    assert early == hello
    frames = ClientFrames(MAX_CLIENT_FRAME_BYTES)
    frames.feed(early)
    assert frames.next_frame() == (b"hello", b"")


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (_head(_GOOD, b"POST"), 400),
        (_head([h for h in _GOOD if h[0] != b"Upgrade"]), 400),
        (_head([h for h in _GOOD if h[0] != b"Connection"]), 400),
        (_head([h for h in _GOOD if h[0] != b"Host"]), 400),
        (_head([h for h in _GOOD if h[0] != b"Sec-WebSocket-Key"]), 400),
        (_head([*_GOOD[:3], (b"Sec-WebSocket-Key", b"short"), _GOOD[4]]), 400),
        (_head([*_GOOD[:4], (b"Sec-WebSocket-Version", b"8")]), 426),
        (_head(_GOOD[:4]), 426),
        (b"GET /ws HTTP/1.1\r\nHost: x\r\n", 400),  # no end of head
        (b"\x16\x03\x01 not http at all\r\n\r\n", 400),
    ],
)
def test_a_broken_handshake_is_refused_with_its_status(head: bytes, status: int) -> None:
    with pytest.raises(HandshakeRefused) as refused:
        accept(head)
    assert refused.value.response.startswith(b"HTTP/1.1 %d " % status)
    if status == 426:
        assert b"Sec-WebSocket-Version: 13\r\n" in refused.value.response
