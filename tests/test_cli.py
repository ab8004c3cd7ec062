"""``fast-shoot`` create/join/score/sync/watch against a real relay, through ``main``."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import trio

from clients import _cmd_watch, connect, create_shoot, join_shoot, read_shoot
from clients._render import CLEAR_SCREEN
from clients.cli import build_parser, main
from tests.sdk_fixtures import RelayHandle, free_port, relay

__all__ = ["relay"]


async def run_cli(*argv: str) -> int:
    """``main`` runs ``trio.run`` itself, so it runs in a worker thread here."""
    return await trio.to_thread.run_sync(main, list(argv))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("FAST_SHOOT_HOME", str(path))
    monkeypatch.delenv("FAST_SHOOT_RELAY", raising=False)
    return path


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("fast-shoot: ")
    return lines[0]


async def create_and_join(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert (
        await run_cli(
            "create",
            "--creator",
            "Sam",
            "--title",
            "Club night",
            "--tz",
            "Europe/London",
            "--relay",
            url,
        )
        == 0
    )
    out = capsys.readouterr().out
    code = re.search(r"Shoot code: (\d{4})", out)
    assert code is not None, out
    assert f"{url}/join/{code[1]}" in out
    assert "█" in out or "▀" in out or "▄" in out  # the QR code, drawn in the terminal
    assert (
        await run_cli("join", code[1], "--name", "Chris", "--round", "national", "--relay", url)
        == 0
    )
    assert "Joined shoot" in capsys.readouterr().out
    return code[1]


async def test_create_join_score_watch(
    relay: RelayHandle, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(30):
        url = await relay.start()
        code = await create_and_join(url, capsys)
        identity = json.loads((home / "identity.json").read_text())
        assert identity["code"] == code
        assert await run_cli("score", "9", "9", "7", "7", "5", "M") == 0
        out = capsys.readouterr().out
        assert "Total 37" in out
        assert "Synced" in out
        body = await read_shoot(url, code)
        assert body["archers"][identity["archer_id"]]["arrows"] == [9, 9, 7, 7, 5, "M"]
        assert await run_cli("watch", code, "--relay", url, "--once") == 0
        board = capsys.readouterr().out
        assert "Chris" in board
        assert "37" in board


async def test_score_offline_is_pending_then_sync_sends_it(
    relay: RelayHandle, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(30):
        url = await relay.start()
        code = await create_and_join(url, capsys)
        await relay.stop()
        assert await run_cli("score", "--wait", "0.5", "9", "9", "9", "9", "9", "9") == 0
        assert await run_cli("score", "--wait", "0.5", "7", "7", "7", "7", "7", "7") == 0
        out = capsys.readouterr().out
        assert "Total 96 after 12 arrows" in out
        assert "Pending: 1 write" in out
        assert await run_cli("sync", "--wait", "0.5") == 1
        assert "still pending" in one_line_error(capsys.readouterr().err)
        await relay.start()
        assert await run_cli("sync") == 0
        assert "Synced" in capsys.readouterr().out
        body = await read_shoot(url, code)
        (archer,) = body["archers"].values()
        assert archer["arrows"] == [9] * 6 + [7] * 6


async def test_invalid_arrow_is_one_line_and_nothing_is_queued(
    relay: RelayHandle, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(30):
        url = await relay.start()
        await create_and_join(url, capsys)
        assert await run_cli("score", "9", "8", "7", "7", "5", "M") == 1
        assert "Arrow 2 scores 8" in one_line_error(capsys.readouterr().err)
        assert await run_cli("score", "9", "banana") == 1
        assert "not an arrow" in one_line_error(capsys.readouterr().err)
        assert await run_cli("sync") == 0  # nothing was queued


async def test_bad_code_and_unreachable_relay_are_one_line_errors(
    relay: RelayHandle, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(30):
        url = await relay.start()
        assert (
            await run_cli("join", "1234", "--name", "Chris", "--round", "york", "--relay", url) == 1
        )
        assert "no shoot with that code" in one_line_error(capsys.readouterr().err)
        assert (
            await run_cli("join", "12", "--name", "Chris", "--round", "york", "--relay", url) == 1
        )
        assert "four digits" in one_line_error(capsys.readouterr().err)
        assert await run_cli("watch", "4321", "--relay", url, "--once") == 1
        assert "no shoot with that code" in one_line_error(capsys.readouterr().err)
        nowhere = f"http://127.0.0.1:{free_port()}"
        assert await run_cli("create", "--creator", "Sam", "--relay", nowhere) == 1
        assert f"Cannot reach the relay at {nowhere}" in one_line_error(capsys.readouterr().err)
        assert await run_cli("watch", "4321", "--relay", nowhere, "--once", "--wait", "0.5") == 1
        assert "Cannot reach the relay" in one_line_error(capsys.readouterr().err)
        assert await run_cli("score", "9") == 1  # never joined on this device
        assert "join" in one_line_error(capsys.readouterr().err)


class Terminal(io.StringIO):
    """Captured output that says it is a terminal, as `watch` sees a real one."""

    def isatty(self) -> bool:
        return True


async def test_watch_redraws_in_place_with_notices(relay: RelayHandle) -> None:
    with trio.fail_after(30):
        url = await relay.start()
        shoot = await create_shoot(url, creator="Sam")
        chris = await join_shoot(url, shoot.code, name="Chris", round="national")
        alex = await join_shoot(url, shoot.code, name="Alex", round="national")
        screen = Terminal()
        args = build_parser().parse_args(["watch", shoot.code, "--relay", url])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cmd_watch.watch, args, screen)
            async with (
                connect(url, shoot.code, identity=chris) as c,
                connect(url, shoot.code, identity=alex) as a,
            ):
                # Chris's end lands first, so the lead is his and stays his.
                await c.score_end([9, 9, 9, 7, 7, 7])
                await c.wait_synced()
                await a.score_end([7, 7, 5, 5, 3, 3])
                await a.wait_synced()
                while "Chris has taken the lead!" not in screen.getvalue():
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        frames = screen.getvalue().split(CLEAR_SCREEN)
        assert len(frames) > 2  # redrawn, not appended
        last = frames[-1]
        assert re.search(r"1\s+Chris\s+48", last), last
        assert re.search(r"2\s+Alex\s+30", last), last
        assert "* Chris has taken the lead!" in last


async def test_watch_shows_an_outage_and_its_age_then_recovers(relay: RelayHandle) -> None:
    with trio.fail_after(30):
        url = await relay.start()
        shoot = await create_shoot(url, creator="Sam", title="Club night")
        await join_shoot(url, shoot.code, name="Chris", round="national")
        screen = Terminal()
        args = build_parser().parse_args(["watch", shoot.code, "--relay", url])

        def last_frame() -> str:
            return screen.getvalue().split(CLEAR_SCREEN)[-1]

        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cmd_watch.watch, args, screen)
            while "Chris" not in last_frame():
                await trio.sleep(0.05)
            assert "Offline" not in last_frame()
            await relay.stop()
            # Redrawn every second while offline, so the age it shows keeps counting.
            while not re.search(r"Offline: last update [1-9]\d* s ago", last_frame()):
                await trio.sleep(0.05)
            assert f"reconnecting to {url}" in last_frame()
            assert "Chris" in last_frame()  # the board stays up meanwhile
            await relay.start()
            while "Offline" in last_frame():
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        lines = last_frame().splitlines()
        assert lines[0] == f"Club night · code {shoot.code}"
        assert "National (1 archer)" in lines


async def test_watch_shows_the_new_leader_after_an_overtake(relay: RelayHandle) -> None:
    # Regressions: after an overtake the screen still showed the old leader's notice; a
    # log (not a terminal) repeated every notice under every board.
    with trio.fail_after(30):
        url = await relay.start()
        shoot = await create_shoot(url, creator="Sam")
        chris = await join_shoot(url, shoot.code, name="Chris", round="national")
        alex = await join_shoot(url, shoot.code, name="Alex", round="national")
        screen, log = Terminal(), io.StringIO()
        args = build_parser().parse_args(["watch", shoot.code, "--relay", url])

        async def both_show(text: str) -> None:
            while text not in screen.getvalue().split(CLEAR_SCREEN)[-1] or text not in (
                log.getvalue()
            ):
                await trio.sleep(0.05)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cmd_watch.watch, args, screen)
            nursery.start_soon(_cmd_watch.watch, args, log)
            async with (
                connect(url, shoot.code, identity=chris) as c,
                connect(url, shoot.code, identity=alex) as a,
            ):
                await c.score_end([9, 9, 9, 7, 7, 7])
                await c.wait_synced()
                await both_show("Chris has taken the lead!")
                await a.score_end([9, 9, 9, 9, 9, 9])
                await a.wait_synced()
                await both_show("Alex has taken the lead!")
            nursery.cancel_scope.cancel()
        last = screen.getvalue().split(CLEAR_SCREEN)[-1]
        assert re.search(r"1\s+Alex\s+54", last), last
        assert "* Alex has taken the lead!" in last
        assert "Chris has taken the lead!" not in last
        assert CLEAR_SCREEN not in log.getvalue()
        assert log.getvalue().count("Chris has taken the lead!") == 1
        assert log.getvalue().count("Alex has taken the lead!") == 1
