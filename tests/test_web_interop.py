"""The browser's frames and the relay's codec agree: frames the JS protocol module encodes
(hello, write, ping, with real stamps) decode with ``sync.codec`` to the same messages, and
every relay message ``sync.codec`` encodes decodes in JS to the same values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sync.classification import derived_values
from sync.clock import Stamp
from sync.codec import decode_client, encode, register_to_wire
from sync.document import ShootDocument
from sync.models import ArcherState, Profile, Shoot
from sync.protocol import (
    Ack,
    Error,
    Hello,
    Notice,
    Ping,
    Pong,
    Superseded,
    Update,
    Welcome,
    Write,
)
from sync.register import Register

from .web_tools import run_tool

MAX_INT = 2**53 - 1
NOW_MS = 1_795_734_657_377
STATE = ArcherState(
    "Chris <script>",
    "wa1440_70",
    Profile("compound", "over_50", "female"),
    arrows=(10, "X", 9, "M", 1, 10),
    finished=True,
)
REGISTER = Register("a7Kq2", Stamp(NOW_MS, 3, "phone-3f9c"), STATE)
SHOOT = Shoot("4821", "s" * 32, "Club night", "Sam", NOW_MS - 5, MAX_INT, "Europe/London")


def _document() -> ShootDocument:
    doc = ShootDocument(client_id=4242, derive=derived_values)
    doc.set_meta(SHOOT)
    doc.write(REGISTER)
    return doc


def test_js_client_frames_decode_with_the_relay_codec(web_tests_built: Path) -> None:
    sv = _document().state_vector()
    specs: list[dict[str, Any]] = [
        {"type": "hello", "shoot": "4821", "role": "viewer", "sv": "00"},
        {
            "type": "hello",
            "shoot": "4821",
            "role": "archer",
            "sv": sv.hex(),
            "archer": "a7Kq2",
            "token": "t0k3n-_" * 6,
        },
        {"type": "write", "id": MAX_INT, "register": register_to_wire(REGISTER)},
        {
            "type": "write",
            "id": 1,
            "register": register_to_wire(REGISTER) | {"stamp": [MAX_INT, 2**31 - 1, "d"]},
        },
        {"type": "ping", "nonce": MAX_INT},
        {"type": "ping", "nonce": 0},
    ]
    out = run_tool("interop", {"encode": specs, "decode": []})
    assert isinstance(out, dict)
    frames = [bytes.fromhex(h) for h in out["encoded"]]
    late = Register("a7Kq2", Stamp(MAX_INT, 2**31 - 1, "d"), STATE)
    expected = [
        Hello(shoot="4821", role="viewer", sv=b"\x00"),
        Hello(shoot="4821", role="archer", sv=sv, archer="a7Kq2", token="t0k3n-_" * 6),
        Write(MAX_INT, REGISTER),
        Write(1, late),
        Ping(MAX_INT),
        Ping(0),
    ]
    assert [decode_client(f) for f in frames] == expected
    # Byte for byte what the relay's own encoder writes (one canonical form on the wire).
    assert frames == [encode(m) for m in expected]
    assert frames[-1].hex() == "a361760164747970656470696e67656e6f6e636500"


def test_relay_frames_decode_in_js(web_tests_built: Path) -> None:
    doc = _document()
    update = doc.diff()
    messages = [
        Welcome(SHOOT, reset=True, update=update, server_ms=NOW_MS, role="archer", archer="a7Kq2"),
        Welcome(SHOOT, reset=False, update=b"", server_ms=MAX_INT, role="viewer"),
        Update(update),
        Ack(MAX_INT, "a7Kq2", Stamp(NOW_MS, 3, "phone-3f9c")),
        Superseded(7, REGISTER),
        Error("clock_skew", "Your clock is ahead.", id=9, server_ms=NOW_MS),
        Error("unknown_shoot", "There is no shoot with that code.", fatal=True),
        Notice("lead", "wa1440_70", "a7Kq2", "Chris leads.", 1, 3, 2, 4),
        Pong(MAX_INT, NOW_MS),
    ]
    out = run_tool("interop", {"encode": [], "decode": [encode(m).hex() for m in messages]})
    assert isinstance(out, dict)
    welcome, viewer, upd, ack, superseded, skew, fatal, notice, pong = out["decoded"]
    shoot = {
        "code": "4821",
        "shootId": SHOOT.shoot_id,
        "title": "Club night",
        "creator": "Sam",
        "createdMs": NOW_MS - 5,
        "expiresMs": MAX_INT,
        "timeZone": "Europe/London",
    }
    assert welcome == {
        "type": "welcome",
        "shoot": shoot,
        "reset": True,
        "update": {"$bytes": update.hex()},
        "serverMs": NOW_MS,
        "role": "archer",
        "archer": "a7Kq2",
    }
    assert viewer["archer"] is None
    assert viewer["update"] == {"$bytes": ""}
    assert viewer["serverMs"] == MAX_INT
    assert upd == {"type": "update", "update": {"$bytes": update.hex()}}
    assert ack == {
        "type": "ack",
        "id": MAX_INT,
        "archer": "a7Kq2",
        "stamp": [NOW_MS, 3, "phone-3f9c"],
    }
    assert superseded == {"type": "superseded", "id": 7, "winner": register_to_wire(REGISTER)}
    assert skew == {
        "type": "error",
        "code": "clock_skew",
        "message": "Your clock is ahead.",
        "id": 9,
        "fatal": False,
        "serverMs": NOW_MS,
    }
    assert fatal["id"] is None
    assert fatal["fatal"] is True
    assert notice == {
        "type": "notice",
        "kind": "lead",
        "round": "wa1440_70",
        "archer": "a7Kq2",
        "text": "Chris leads.",
        "ends": 4,
    }
    assert pong == {"type": "pong", "nonce": MAX_INT, "serverMs": NOW_MS}


def test_js_refuses_frames_breaking_the_protocol(web_tests_built: Path) -> None:
    import cbor2

    bad = [
        cbor2.dumps({"v": 2, "type": "pong", "nonce": 1, "server_ms": 1}),
        cbor2.dumps({"v": 1, "type": "ack", "id": 1, "archer": "a", "stamp": [1, 0]}),
        cbor2.dumps([1, 2]),
        b"\xff",
    ]
    out = run_tool("interop", {"encode": [], "decode": [b.hex() for b in bad]})
    assert isinstance(out, dict)
    assert [d.get("error") for d in out["decoded"]] == [
        "unsupported_version",
        "invalid_field",
        "malformed",
        "malformed",
    ]
