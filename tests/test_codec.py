"""The wire codec: every message round-trips, and every rule refuses with its own code."""

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
from sync.clock import Stamp
from sync.codec import (
    decode_client,
    decode_server,
    encode,
    register_from_wire,
    register_to_wire,
)
from sync.errors import ProtocolError
from sync.models import ArcherState, Profile, Shoot
from sync.protocol import (
    MAX_CLIENT_FRAME_BYTES,
    MAX_REQUEST_ID,
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
from sync.register import Register

DOCS = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"

REGISTER = Register(
    "a1",
    Stamp(1_732_650_000_000, 3, "phone-1"),
    ArcherState(
        name="Chris",
        round="national",
        profile=Profile("barebow", "over_50", "female"),
        arrows=(9, 7, "X", 10, "M", 5),
        finished=True,
        left=False,
    ),
)
SHOOT = Shoot("1234", "s-9f2", "Club night", "Sam", 1_732_600_000_000, 1_732_700_000_000, "UTC")

CLIENT_MESSAGES: list[Message] = [
    Hello("1234", "viewer"),
    Hello("9999", "archer", b"\x01\x02\x03", "a1", "tok-secret"),
    Write(0, REGISTER),
    Write(MAX_REQUEST_ID, dataclasses.replace(REGISTER, state=ArcherState("Sam", "portsmouth"))),
    Ping(42),
]
SERVER_MESSAGES: list[Message] = [
    Welcome(SHOOT, False, b"", 1, "viewer"),
    Welcome(SHOOT, True, b"\x00" * 300, 2, "archer", "a1"),
    Update(b"\x01\x02"),
    Ack(7, "a1", REGISTER.stamp),
    Superseded(8, REGISTER),
    Error("rate_limited", "Slow down.", 9),
    Error("clock_skew", "Your clock is ahead.", None, True, 5),
    Notice("lead", "national", "a1", "Chris leads.", 1, 12, 2, 3),
    Notice("digest", "national", "a1", "Sam is 3rd.", None, None, None, 0),
    Notice("lead", "national", "a1", "Sam drops.", 4, 4, -3, 5),
    Pong(42, 1_732_650_000_000),
]


def frame(message: Message, *changes: tuple[tuple[str | int, ...], Any]) -> bytes:
    """``message``'s frame with fields replaced (or removed, for ``DELETE``) by path."""
    decoded = cbor2.loads(encode(message))
    for path, value in changes:
        *parents, last = path
        target = decoded
        for key in parents:
            target = target[key]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return cbor2.dumps(decoded)


DELETE = object()


def short(value: object) -> str:
    return repr(value)[:60]


def refused(decode: Any, data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(data)
    return info.value


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


# -- fields ------------------------------------------------------------------------------

WRITE = Write(5, REGISTER)
ARCHER_HELLO = Hello("1234", "archer", b"\x00", "a1", "tok")
VIEWER_HELLO = Hello("1234", "viewer")
R = "register"
S = ("register", "state")

CLIENT_FIELD_CASES: list[tuple[Message, tuple[str | int, ...], object, str]] = [
    # (valid message, path, bad value, the field the sentence names)
    (ARCHER_HELLO, ("shoot",), "0999", "shoot"),
    (ARCHER_HELLO, ("shoot",), "12345", "shoot"),
    (ARCHER_HELLO, ("shoot",), "12a4", "shoot"),
    (ARCHER_HELLO, ("shoot",), "١٢٣٤", "shoot"),  # Arabic-Indic digits
    (ARCHER_HELLO, ("shoot",), 1234, "shoot"),
    (ARCHER_HELLO, ("shoot",), DELETE, "shoot"),
    (ARCHER_HELLO, ("role",), "admin", "role"),
    (ARCHER_HELLO, ("role",), None, "role"),
    (ARCHER_HELLO, ("sv",), "AA==", "sv"),
    (ARCHER_HELLO, ("sv",), b"\x00" * (protocol.MAX_STATE_VECTOR_BYTES + 1), "sv"),
    (ARCHER_HELLO, ("sv",), DELETE, "sv"),
    (ARCHER_HELLO, ("archer",), None, "archer"),
    (ARCHER_HELLO, ("archer",), DELETE, "archer"),
    (ARCHER_HELLO, ("archer",), "", "archer"),
    (ARCHER_HELLO, ("archer",), "a b", "archer"),
    (ARCHER_HELLO, ("archer",), "a\n", "archer"),
    (ARCHER_HELLO, ("archer",), "é", "archer"),
    (ARCHER_HELLO, ("archer",), "a" * 65, "archer"),
    (ARCHER_HELLO, ("token",), DELETE, "token"),
    (ARCHER_HELLO, ("token",), 12345, "token"),
    (VIEWER_HELLO, ("archer",), "a1", "archer"),
    (VIEWER_HELLO, ("token",), "tok", "token"),
    (Ping(1), ("nonce",), -1, "nonce"),
    (Ping(1), ("nonce",), MAX_REQUEST_ID + 1, "nonce"),
    (Ping(1), ("nonce",), 2**64 - 1, "nonce"),
    (Ping(1), ("nonce",), True, "nonce"),
    (Ping(1), ("nonce",), 1.0, "nonce"),
    (Ping(1), ("nonce",), float("nan"), "nonce"),
    (Ping(1), ("nonce",), float("inf"), "nonce"),
    (Ping(1), ("nonce",), "1", "nonce"),
    (Ping(1), ("nonce",), DELETE, "nonce"),
    (WRITE, ("id",), False, "id"),
    (WRITE, ("id",), -(2**64), "id"),
    (WRITE, (R,), [], "register"),
    (WRITE, (R,), DELETE, "register"),
    (WRITE, (R, "archer"), "x" * 65, "register.archer"),
    (WRITE, (R, "stamp"), [1, 2], "register.stamp"),
    (WRITE, (R, "stamp"), [1, 2, "d", 4], "register.stamp"),
    (WRITE, (R, "stamp"), {"wall_ms": 1}, "register.stamp"),
    (WRITE, (R, "stamp", 0), -1, "register.stamp"),
    (WRITE, (R, "stamp", 0), 1.5, "register.stamp"),
    (WRITE, (R, "stamp", 0), MAX_REQUEST_ID + 1, "register.stamp"),
    (WRITE, (R, "stamp", 1), 2**31, "register.stamp"),
    (WRITE, (R, "stamp", 1), True, "register.stamp"),
    (WRITE, (R, "stamp", 2), "", "register.stamp"),
    (WRITE, (R, "stamp", 2), b"dev", "register.stamp"),
    (WRITE, (*S,), "x", "register.state"),
    (WRITE, (*S, "name"), "x" * 161, "register.state.name"),
    (WRITE, (*S, "name"), None, "register.state.name"),
    (WRITE, (*S, "round"), "r" * 65, "register.state.round"),
    (WRITE, (*S, "profile"), None, "register.state.profile"),
    (WRITE, (*S, "profile", "bowstyle"), "b" * 33, "register.state.profile.bowstyle"),
    (WRITE, (*S, "profile", "age_group"), 1, "register.state.profile.age_group"),
    (WRITE, (*S, "profile", "gender"), DELETE, "register.state.profile.gender"),
    (WRITE, (*S, "arrows"), (9,) * 301, "register.state.arrows"),
    (WRITE, (*S, "arrows"), "9,7", "register.state.arrows"),
    (WRITE, (*S, "arrows", 2), 21, "register.state.arrows[2]"),
    (WRITE, (*S, "arrows", 2), -1, "register.state.arrows[2]"),
    (WRITE, (*S, "arrows", 2), True, "register.state.arrows[2]"),
    (WRITE, (*S, "arrows", 2), 9.0, "register.state.arrows[2]"),
    (WRITE, (*S, "arrows", 2), "x", "register.state.arrows[2]"),
    (WRITE, (*S, "arrows", 2), "10", "register.state.arrows[2]"),
    (WRITE, (*S, "arrows", 2), None, "register.state.arrows[2]"),
    (WRITE, (*S, "arrows", 2), ["X"], "register.state.arrows[2]"),
    (WRITE, (*S, "finished"), 1, "register.state.finished"),
    (WRITE, (*S, "left"), None, "register.state.left"),
    (WRITE, (*S, "left"), DELETE, "register.state.left"),
]

SERVER_FIELD_CASES: list[tuple[Message, tuple[str | int, ...], object, str]] = [
    (SERVER_MESSAGES[1], ("shoot",), "1234", "shoot"),
    (SERVER_MESSAGES[1], ("shoot", "code"), "abcd", "shoot.code"),
    (SERVER_MESSAGES[1], ("shoot", "shoot_id"), "s 1", "shoot.shoot_id"),
    (SERVER_MESSAGES[1], ("shoot", "title"), "t" * 401, "shoot.title"),
    (SERVER_MESSAGES[1], ("shoot", "created_ms"), True, "shoot.created_ms"),
    (SERVER_MESSAGES[1], ("shoot", "expires_ms"), -5, "shoot.expires_ms"),
    (SERVER_MESSAGES[1], ("shoot", "time_zone"), DELETE, "shoot.time_zone"),
    (SERVER_MESSAGES[1], ("reset",), 0, "reset"),
    (SERVER_MESSAGES[1], ("update",), "AAE=", "update"),
    (SERVER_MESSAGES[1], ("server_ms",), None, "server_ms"),
    (SERVER_MESSAGES[1], ("role",), "judge", "role"),
    (SERVER_MESSAGES[1], ("archer",), None, "archer"),
    (SERVER_MESSAGES[0], ("archer",), "a1", "archer"),
    (Update(b""), ("update",), [], "update"),
    (Ack(1, "a", REGISTER.stamp), ("stamp",), None, "stamp"),
    (Ack(1, "a", REGISTER.stamp), ("archer",), DELETE, "archer"),
    (Superseded(1, REGISTER), ("winner", "state", "arrows", 0), 11.5, "winner.state.arrows[0]"),
    (Superseded(1, REGISTER), ("id",), None, "id"),
    (Error("c", "m"), ("code",), "c" * 65, "code"),
    (Error("c", "m"), ("message",), "m" * 1001, "message"),
    (Error("c", "m"), ("id",), "1", "id"),
    (Error("c", "m"), ("fatal",), DELETE, "fatal"),
    (Error("c", "m"), ("server_ms",), -1, "server_ms"),
    (SERVER_MESSAGES[7], ("kind",), "gossip", "kind"),
    (SERVER_MESSAGES[7], ("position",), -1, "position"),
    (SERVER_MESSAGES[7], ("of",), 1.0, "of"),
    (SERVER_MESSAGES[7], ("change",), -(2**53), "change"),
    (SERVER_MESSAGES[7], ("ends",), None, "ends"),
    (SERVER_MESSAGES[7], ("text",), b"text", "text"),
    (Pong(1, 2), ("server_ms",), DELETE, "server_ms"),
]


def _case_id(case: tuple[Message, tuple[str | int, ...], object, str]) -> str:
    message, path, value, _ = case
    shown = "DELETE" if value is DELETE else repr(value)[:20]
    return f"{type(message).__name__}-{'.'.join(map(str, path))}={shown}"


@pytest.mark.parametrize(
    "sv", [b"", b"\x01\x80", b"\x02\x01\x01", b"\x01\x01\x01\x00", b"\xff" * 12], ids=repr
)
def test_a_hello_state_vector_must_read_as_one(sv: bytes) -> None:
    # A state vector the shoot's actor could not read once crashed it: it is refused with
    # the rest of the frame instead.
    for hello in (ARCHER_HELLO, VIEWER_HELLO):
        error = refused(decode_client, frame(hello, (("sv",), sv)))
        assert error.code == "invalid_state_vector"
        assert error.message


@pytest.mark.parametrize("case", CLIENT_FIELD_CASES, ids=_case_id)
def test_client_field_rules(case: tuple[Message, tuple[str | int, ...], object, str]) -> None:
    message, path, value, field = case
    error = refused(decode_client, frame(message, (path, value)))
    assert error.code == "invalid_field"
    assert f"Field '{field}' " in error.message


@pytest.mark.parametrize("case", SERVER_FIELD_CASES, ids=_case_id)
def test_server_field_rules(case: tuple[Message, tuple[str | int, ...], object, str]) -> None:
    message, path, value, field = case
    error = refused(decode_server, frame(message, (path, value)))
    assert error.code == "invalid_field"
    assert f"Field '{field}' " in error.message


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("nonce",), 0),
        (("nonce",), MAX_REQUEST_ID),
    ],
)
def test_boundaries_are_inclusive(path: tuple[str, ...], value: int) -> None:
    assert decode_client(frame(Ping(1), (path, value))) == Ping(value)


def test_field_boundaries_of_a_register_are_inclusive() -> None:
    data = frame(
        WRITE,
        ((R, "archer"), "a" * 64),
        ((R, "stamp"), [MAX_REQUEST_ID, 2**31 - 1, "~" * 64]),
        ((*S, "name"), "n" * 160),
        ((*S, "round"), "r" * 64),
        ((*S, "profile", "bowstyle"), "b" * 32),
        ((*S, "arrows"), [0, 20, "X", "M"] * 75),
    )
    message = decode_client(data)
    assert isinstance(message, Write)
    assert message.register.stamp == Stamp(MAX_REQUEST_ID, 2**31 - 1, "~" * 64)
    assert len(message.register.state.arrows) == 300


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
