"""Valid messages of every type and their frames edited by path, for the codec tests
(``tests/test_codec.py`` and ``tests/test_codec_fields.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cbor2
import pytest

from sync.clock import Stamp
from sync.codec import encode
from sync.errors import ProtocolError
from sync.models import ArcherState, Profile, Shoot
from sync.protocol import (
    MAX_REQUEST_ID,
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


def refused(decode: Any, data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(data)
    return info.value
