"""``fast-shoot`` before it talks to a relay: choices, required values, rounds, start-up.

Several tests run the command as a child process, as a user's shell does: what it imports
at start, how it dies on a closed pipe and what it prints then are properties of the
process, not of ``main``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from clients._cmd_shoot import describe_expiry
from clients._http import ShootInfo
from clients._localzone import local_time_zone
from clients.cli import EXIT_BROKEN_PIPE, main, normalize_relay_url
from tests.sdk_fixtures import RelayHandle, relay
from tests.test_cli import home, one_line_error, run_cli

__all__ = ["home", "relay"]

ROOT = Path(__file__).resolve().parent.parent


def _child(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_help_loads_neither_numpy_nor_the_network_stack() -> None:
    """What made every call take 1.4-2.7 s: numpy and archeryutils imported for `--help`."""
    script = (
        "import sys, contextlib, io\n"
        "from clients.cli import main\n"
        "for argv in (['--help'], ['join', '--help'], ['create', '--help']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(argv)\n"
        "heavy = ('numpy', 'archeryutils', 'trio', 'httpx', 'pycrdt')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
        "import clients._cmd_shoot  # create: the network, but no round tables\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    child = _child("-c", script)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err.decode()
    after_help, after_create = out.decode().split("\n")[:2]
    assert after_help == "[]"
    assert "numpy" not in after_create
    assert "archeryutils" not in after_create


def test_profile_choices_are_in_help_and_in_the_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["join", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for value in ("over_50", "under_18", "compoundlimited", "barebow", "female", "open"):
        assert value in help_text
    assert main(["join", "1234", "--round", "york", "--age-group", "50+"]) == 2
    error = one_line_error(capsys.readouterr().err)
    assert "invalid choice: '50+'" in error
    assert "'over_50'" in error
    assert "fast-shoot join --help" in error


@pytest.mark.usefixtures("home")
def test_round_creator_and_name_have_no_hidden_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Not a terminal (stdin is not a tty here): no prompt, a line saying what to add."""
    assert main(["create"]) == 1
    assert "--creator" in one_line_error(capsys.readouterr().err)
    assert main(["join", "1234", "--name", "Chris"]) == 1
    assert "--round" in one_line_error(capsys.readouterr().err)
    assert main(["join", "1234", "--round", "york"]) == 1
    assert "--name" in one_line_error(capsys.readouterr().err)


def test_time_zone_defaults_to_the_machines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TZ", "America/Denver")
    assert local_time_zone() == "America/Denver"
    monkeypatch.setenv("TZ", ":Asia/Tokyo")
    assert local_time_zone() == "Asia/Tokyo"
    monkeypatch.setenv("TZ", "Not/AZone")
    assert local_time_zone() is None  # an explicit $TZ we cannot read: ask, do not guess
    monkeypatch.delenv("TZ")
    (tmp_path / "localtime").symlink_to("/usr/share/zoneinfo/Europe/Paris")
    assert local_time_zone(tmp_path) == "Europe/Paris"
    (tmp_path / "localtime").unlink()
    (tmp_path / "timezone").write_text("Pacific/Auckland\n")
    assert local_time_zone(tmp_path) == "Pacific/Auckland"


def test_expiry_is_said_in_the_creators_zone() -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/London")
    midnight = dt.datetime(2026, 11, 28, tzinfo=zone)
    shoot = ShootInfo(
        "4821", "", "Sam", "Europe/London", int(midnight.timestamp() * 1000), "", "", ""
    )
    text = describe_expiry(shoot, now=dt.datetime(2026, 11, 27, 18, 30, tzinfo=zone))
    assert text == "Open until 2026-11-28 00:00 Europe/London, in 5 h 30 min."


def test_relay_urls_as_people_type_them() -> None:
    assert normalize_relay_url("127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert normalize_relay_url("shoot.example/") == "http://shoot.example"
    assert normalize_relay_url("HTTPS://shoot.example") == "https://shoot.example"
    assert normalize_relay_url("wss://shoot.example") == "https://shoot.example"


async def test_create_prints_the_expiry_and_json_for_scripts(
    relay: RelayHandle,
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/Denver")  # this machine's zone, as the command reads it
    with trio.fail_after(30):
        url = await relay.start()
        assert (
            await run_cli("create", "--creator", "Sam", "--tz", "Asia/Tokyo", "--relay", url) == 0
        )
        assert "Asia/Tokyo, in " in capsys.readouterr().out
        assert await run_cli("create", "--creator", "Sam", "--json", "--relay", url) == 0
        shoot = json.loads(capsys.readouterr().out)
        assert shoot["join_url"] == f"{url}/join/{shoot['code']}"
        assert shoot["time_zone"] == "America/Denver"  # the machine's, not UTC by fiat


def test_rounds_search_ignores_case_and_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rounds", "YORK"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Code", "Round", "Arrows", "Ends"]
    assert [line.split()[0] for line in lines[1:]] == ["york", "burntwood_york"]
    assert lines[1].split()[-2:] == ["144", "24"]
    assert main(["rounds", "Yrok"]) == 1
    assert "Did you mean 'york'?" in one_line_error(capsys.readouterr().err)
    assert main(["rounds"]) == 0
    assert len(capsys.readouterr().out.splitlines()) > 200


def test_a_closed_pipe_ends_quietly() -> None:
    """`fast-shoot rounds | head -1`: the reader leaves early; no traceback, status 141."""
    child = _child("-m", "clients.cli", "rounds")
    assert child.stdout is not None
    child.stdout.close()  # the reader is gone before the first write
    _, err = child.communicate(timeout=60)
    assert child.returncode == EXIT_BROKEN_PIPE
    assert err.decode() == ""


@pytest.mark.usefixtures("home")
def test_an_unreadable_identity_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["undo"]) == 1
    assert "fast-shoot join CODE" in one_line_error(capsys.readouterr().err)


async def test_on_a_terminal_a_missing_creator_is_asked_for(relay: RelayHandle, home: Path) -> None:
    """stdin is a terminal (a pseudo-terminal here): `create` asks instead of failing."""
    url = await relay.start()
    controller, terminal = os.openpty()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "clients.cli", "create", "--relay", url],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "TZ": "Europe/London"},
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.write(controller, b"Sam\n")  # typed ahead; read when the question is asked
        out, err = await trio.to_thread.run_sync(lambda: child.communicate(timeout=60))
    finally:
        os.close(controller)
        os.close(terminal)
    assert child.returncode == 0, err.decode()
    text = out.decode()
    assert "Your name (the shoot's creator): " in text
    assert "Shoot code: " in text
    assert "Europe/London" in text
