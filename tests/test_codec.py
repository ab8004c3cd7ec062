"""The wire codec: every message round-trips, and every rule refuses with its own code.

The rules for each field's type, length and range, by the field's path:
``tests/test_codec_fields.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import re
from pathlib import Path
from typing import Any

import cbor2
import pytest

from sync import protocol
from sync.codec import (
    decode_client,
    decode_server,
    encode,
    register_from_wire,
    register_to_wire,
)
from sync.errors import ProtocolError
from sync.protocol import (
    MAX_CLIENT_FRAME_BYTES,
    MAX_SERVER_FRAME_BYTES,
    Ack,
    Error,
    Hello,
    Message,
    Notice,
    Ping,
    Pong,
    Superseded,
    Update,
    Welcome,
    Write,
)
from tests.codec_frames import CLIENT_MESSAGES, DELETE, REGISTER, SERVER_MESSAGES, frame, refused

DOCS = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def short(value: object) -> str:
    return repr(value)[:60]


# -- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("message", CLIENT_MESSAGES, ids=short)
def test_client_messages_round_trip(message: Message) -> None:
    assert decode_client(encode(message)) == message


@pytest.mark.parametrize("message", SERVER_MESSAGES, ids=short)
def test_server_messages_round_trip(message: Message) -> None:
    assert decode_server(encode(message)) == message


def test_every_message_type_is_covered() -> None:
    covered = {type(m) for m in CLIENT_MESSAGES + SERVER_MESSAGES}
    assert covered == {Hello, Write, Ping, Welcome, Update, Ack, Superseded, Error, Notice, Pong}


def test_frame_is_a_versioned_map_with_the_type_name() -> None:
    assert cbor2.loads(encode(Ping(7))) == {"v": 1, "type": "ping", "nonce": 7}
    assert encode(Ping(7)).hex() == "a361760164747970656470696e67656e6f6e636507"  # in the docs
    assert cbor2.loads(encode(Superseded(1, REGISTER)))["type"] == "superseded"


def test_encode_refuses_what_is_not_a_message() -> None:
    with pytest.raises(TypeError, match="not a message"):
        encode(REGISTER)  # type: ignore[arg-type]


def test_register_wire_form_round_trips() -> None:
    wire = register_to_wire(REGISTER)
    assert wire["stamp"] == [1_732_650_000_000, 3, "phone-1"]
    assert wire["state"]["arrows"] == [9, 7, "X", 10, "M", 5]
    assert register_from_wire(wire) == REGISTER
    assert register_from_wire(cbor2.loads(cbor2.dumps(wire))) == REGISTER


def test_register_from_wire_names_the_field_it_was_given() -> None:
    wire = register_to_wire(REGISTER)
    wire["state"]["finished"] = 1
    with pytest.raises(ProtocolError, match=r"'winner\.state\.finished'"):
        register_from_wire(wire, field="winner")
    with pytest.raises(ProtocolError, match="'register' must be a map"):
        register_from_wire([1, 2])


def test_checks_are_structural_only() -> None:
    """Round rules belong to ``validate_state``: the codec lets them through."""
    data = frame(
        Write(1, REGISTER),
        (("register", "state", "round"), "no-such-round"),
        (("register", "state", "arrows"), [20] * 300),
        (("register", "state", "name"), "  "),
    )
    message = decode_client(data)
    assert isinstance(message, Write)
    assert message.register.state.arrows == (20,) * 300


def test_optional_fields_may_be_null_or_absent_and_unknown_fields_are_ignored() -> None:
    data = frame(Hello("1234", "viewer"), (("archer",), None), (("extra",), [1, {"x": b""}]))
    assert decode_client(data) == Hello("1234", "viewer")
    data = frame(Error("x", "y"), (("id",), DELETE), (("server_ms",), DELETE))
    assert decode_server(data) == Error("x", "y")


def test_accepts_bytearray_and_memoryview() -> None:
    data = encode(Ping(1))
    assert decode_client(bytearray(data)) == Ping(1)
    assert decode_client(memoryview(data)) == Ping(1)


# -- the size limit comes first ----------------------------------------------------------


def test_size_limit_is_checked_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed an oversized frame")

    monkeypatch.setattr(cbor2, "CBORDecoder", explode)
    error = refused(decode_client, b"\xff" * (MAX_CLIENT_FRAME_BYTES + 1))
    assert error.code == "frame_too_large"
    error = refused(decode_server, b"\xff" * (MAX_SERVER_FRAME_BYTES + 1))
    assert error.code == "frame_too_large"


@pytest.mark.parametrize(
    ("decode", "limit"),
    [(decode_client, MAX_CLIENT_FRAME_BYTES), (decode_server, MAX_SERVER_FRAME_BYTES)],
)
def test_a_frame_of_exactly_the_limit_is_accepted(decode: Any, limit: int) -> None:
    message = Ping(1) if decode is decode_client else Pong(1, 2)
    sizes = (len(frame(message, (("pad",), b"\x00" * (limit - n)))) for n in range(64))
    padded = frame(
        message,
        (
            ("pad",),
            b"\x00"
            * (limit - next(n for n, size in zip(range(64), sizes, strict=False) if size == limit)),
        ),
    )
    assert len(padded) == limit
    assert decode(padded) == message
    assert refused(decode, padded + b"\x00").code == "frame_too_large"


def test_client_frames_are_held_to_the_client_limit() -> None:
    big = Update(b"\x00" * MAX_CLIENT_FRAME_BYTES)
    assert decode_server(encode(big)) == big
    assert refused(decode_client, encode(big)).code == "frame_too_large"


# -- malformed ---------------------------------------------------------------------------

PING = {"v": 1, "type": "ping", "nonce": 1}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        b"\x1c",  # reserved additional information
        b"\x62\xff\xfe",  # invalid UTF-8
        cbor2.dumps(PING)[:-1],  # truncated
        cbor2.dumps(PING) + b"\x00",  # trailing bytes
        cbor2.dumps(PING) + cbor2.dumps(PING),
        b"\xbb\x00\x00\x00\x01\x00\x00\x00\x00",  # a map claiming 2**32 entries
        b"\x5b\x00\x00\x00\x01\x00\x00\x00\x00",  # a byte string claiming 4 GiB
        b"\x81" * 17 + b"\x00",  # nested too deep
        b"\x9f" * 60_000,  # deep indefinite arrays
        b"\xa2\x61v\x01\x61v\x01",  # duplicate keys
        b"\xa1\x01\x01",  # integer key
        cbor2.dumps([PING]),
        cbor2.dumps(1),
        cbor2.dumps("ping"),
        cbor2.dumps(None),
    ],
    ids=lambda data: repr(data)[:40],
)
def test_malformed(data: bytes) -> None:
    for decode in (decode_client, decode_server):
        error = refused(decode, data)
        assert error.code == "malformed"
        assert error.message


@pytest.mark.parametrize(
    "value",
    [
        {**PING, b"nonce": 1},  # beside the fields, at the top
        {**PING, "extra": {b"k": 1}},  # in an unknown field, which is otherwise ignored
        {**PING, "extra": [1, [{"ok": {b"deep": 1}}]]},  # nested in lists and maps
    ],
    ids=["top", "unknown-field", "nested"],
)
def test_byte_string_map_keys_are_refused_anywhere(value: dict[Any, Any]) -> None:
    for decode in (decode_client, decode_server):
        error = refused(decode, cbor2.dumps(value))
        assert (error.code, error.message) == (
            "malformed",
            "The frame has a map key that is not a text string.",
        )


def test_text_messages_are_malformed() -> None:
    assert refused(decode_client, "hello").code == "malformed"  # type: ignore[arg-type]
    assert refused(decode_client, None).code == "malformed"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),  # tag 0
        cbor2.CBORTag(1, 1_700_000_000),  # epoch date
        2**70,  # bignum, tag 2
        -(2**70),  # tag 3
        cbor2.CBORTag(2, b"\x05"),  # a small int as a bignum
        decimal.Decimal("1.5"),  # tag 4
        re.compile("a"),
        {1, 2},  # tag 258
        cbor2.CBORTag(28, [cbor2.CBORTag(29, 0)]),  # shared reference: a list holding itself
        cbor2.CBORTag(256, ["aaaa", cbor2.CBORTag(25, 0)]),  # string references
        cbor2.CBORTag(64, b"\x01"),  # typed array
        cbor2.CBORTag(55799, 1),  # self-describe
        cbor2.CBORTag(2**64 - 1, 1),
        cbor2.CBORTag(9999, None),
    ],
    ids=repr,
)
def test_every_tag_is_refused(value: object) -> None:
    error = refused(decode_client, cbor2.dumps({**PING, "nonce": value}))
    assert (error.code, error.message) == (
        "malformed",
        "The frame holds a CBOR tag; none are allowed.",
    )
    assert isinstance(error.__cause__, cbor2.CBORDecodeError)


def test_a_tagged_frame_is_refused() -> None:
    error = refused(decode_client, cbor2.dumps(cbor2.CBORTag(55799, PING)))
    assert error.code == "malformed"


# -- envelope ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", [None, 0, 2, "1", True, 1.0, b"\x01", [1]], ids=repr)
def test_unsupported_version(version: object) -> None:
    data = cbor2.dumps({**PING, "v": version} if version is not None else {"type": "ping"})
    error = refused(decode_client, data)
    assert error.code == "unsupported_version"


@pytest.mark.parametrize(
    "name", [None, "", "PING", "nope", 1, b"ping", ["ping"], {"a": 1}], ids=repr
)
def test_unknown_type(name: object) -> None:
    data = cbor2.dumps({"v": 1, "nonce": 1} if name is None else {**PING, "type": name})
    assert refused(decode_client, data).code == "unknown_type"


def test_each_side_only_accepts_the_other_sides_messages() -> None:
    for message in SERVER_MESSAGES:
        error = refused(decode_client, encode(message))
        assert error.code == "unknown_type"
        assert "client" in error.message
    for message in CLIENT_MESSAGES:
        assert refused(decode_server, encode(message)).code == "unknown_type"


def test_error_sentences_stay_short_whatever_the_peer_sent() -> None:
    error = refused(decode_client, cbor2.dumps({**PING, "type": "x" * 60_000}))
    assert len(error.message) < 200
    error = refused(decode_client, cbor2.dumps({**PING, "v": list(range(10_000))}))
    assert len(error.message) < 200


# -- the documentation stays true --------------------------------------------------------


def test_docs_describe_every_message_and_field() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for message in CLIENT_MESSAGES + SERVER_MESSAGES:
        name = cbor2.loads(encode(message))["type"]
        assert f"### `{name}`" in text
        for field in dataclasses.fields(message):
            assert f"| `{field.name}` |" in text, (name, field.name)


def test_docs_list_every_close_code_and_limit() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name in protocol.__all__:
        if name.startswith("CLOSE_"):
            assert f"| {getattr(protocol, name)} |" in text, name
    for code in ("frame_too_large", "malformed", "unsupported_version", "unknown_type"):
        assert f"`{code}`" in text
    assert "64 KiB" in text
    assert "8 MiB" in text
    assert "16 KiB" in text
