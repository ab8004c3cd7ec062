"""The SDK's public surface and its pure parts (no sockets)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
from pathlib import Path

import pytest

import clients
from clients import Backoff, ClientOptions, InvalidScore, ShootError, parse_arrow
from clients._events import EventQueue, RegistersChanged
from clients._outbox import Outbox
from clients.cli import build_parser
from sync.clock import Stamp
from sync.models import ArcherState
from sync.register import Register


def test_everything_exported_exists_and_is_documented() -> None:
    for name in clients.__all__:
        obj = getattr(clients, name)
        assert getattr(obj, "__doc__", None) or name == "Event", name
    assert issubclass(InvalidScore, ShootError)


SDK_DOC = Path(__file__).resolve().parent.parent / "docs" / "sdk.md"


def _documented(name: str, text: str) -> bool:
    """Named in code style: `name`, `name(...)`, `name.attr` or `fast-shoot name ...`."""
    return re.search(rf"`(fast-shoot )?{re.escape(name)}\b", text) is not None


def test_docs_name_every_public_name_option_and_subcommand() -> None:
    text = SDK_DOC.read_text("utf-8")
    missing = [name for name in clients.__all__ if not _documented(name, text)]
    assert missing == [], f"docs/sdk.md does not mention {missing}"
    options = [f.name for f in dataclasses.fields(ClientOptions)]
    assert [o for o in options if not _documented(o, text)] == []
    (subparsers,) = [
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    assert [c for c in subparsers.choices if not _documented(c, text)] == []
    for variable in ("FAST_SHOOT_HOME", "FAST_SHOOT_RELAY"):
        assert _documented(variable, text), variable


@pytest.mark.parametrize(
    ("typed", "value"), [("9", 9), ("x", "X"), ("M", "M"), (10, 10), (" 7 ", 7)]
)
def test_parse_arrow(typed: str | int, value: object) -> None:
    assert parse_arrow(typed) == value


@pytest.mark.parametrize("typed", ["banana", "", "9.5", True])
def test_parse_arrow_refuses(typed: str | bool) -> None:
    with pytest.raises(InvalidScore):
        parse_arrow(typed)


def test_backoff_is_full_jitter_capped() -> None:
    backoff = Backoff(base_s=0.5, cap_s=4.0, rng=random.Random(1))
    delays = [backoff.delay(attempt) for attempt in range(10)]
    assert all(0 <= d <= min(4.0, 0.5 * 2**a) for a, d in enumerate(delays))
    assert list(backoff.history) == delays


def test_event_queue_drops_the_oldest_when_full() -> None:
    queue = EventQueue(2)
    events = [RegistersChanged(frozenset({str(i)}), "relay") for i in range(3)]
    for event in events:
        queue.put(event)
    assert queue.dropped == 1
    assert [queue.get_nowait(), queue.get_nowait(), queue.get_nowait()] == [*events[1:], None]


def _register(wall: int, arrows: int) -> Register:
    return Register(
        "a1", Stamp(wall, 0, "d"), ArcherState("Chris", "national", arrows=(9,) * arrows)
    )


def test_outbox_keeps_only_the_newest_write_and_survives_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "outbox.json"
    outbox = Outbox(path)
    outbox.put(_register(2, 6))
    outbox.put(_register(1, 12))  # older: ignored
    outbox.save()
    again = Outbox(path)
    assert again.pending() == [_register(2, 6)]
    assert again.acknowledge("a1", Stamp(1, 0, "d")) is None  # another write's ack
    assert again.acknowledge("a1", Stamp(2, 0, "d")) == _register(2, 6)
    assert len(again) == 0


def test_outbox_keeps_its_shoot_id_and_loads_files_from_before_it_was_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.json"
    outbox = Outbox(path)
    outbox.put(_register(2, 6))
    outbox.shoot_id = "shoot-1"
    outbox.save()
    assert Outbox(path).shoot_id == "shoot-1"
    data = json.loads(path.read_text())
    del data["shoot_id"]
    path.write_text(json.dumps(data))
    older = Outbox(path)
    assert older.shoot_id is None
    assert older.pending() == [_register(2, 6)]
    data["shoot_id"] = 7
    path.write_text(json.dumps(data))
    with pytest.raises(ShootError):
        Outbox(path)


def test_corrupt_outbox_is_an_error_not_an_empty_outbox(tmp_path: Path) -> None:
    path = tmp_path / "outbox.json"
    path.write_text("{not json")
    with pytest.raises(ShootError) as info:
        Outbox(path)
    assert info.value.code == "outbox_corrupt"
