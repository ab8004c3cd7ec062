"""The wire codec's field rules: each field's exact type, length and range. A frame that
breaks one is refused with ``invalid_field`` and a sentence naming the field by its path in
the message (``register.state.arrows[2]``); a value on a bound is accepted, and a hello's
state vector must read as one (``invalid_state_vector``).
"""

from __future__ import annotations

import pytest

from sync import protocol
from sync.clock import Stamp
from sync.codec import decode_client, decode_server
from sync.protocol import (
    MAX_REQUEST_ID,
    Ack,
    Error,
    Hello,
    Message,
    Ping,
    Pong,
    Superseded,
    Update,
    Write,
)
from tests.codec_frames import DELETE, REGISTER, SERVER_MESSAGES, frame, refused

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
