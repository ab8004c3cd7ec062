"""The archer's commands end to end: partial ends, undo, round, finish, leave, offline waits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio

from clients import read_shoot
from tests.sdk_fixtures import RelayHandle, relay
from tests.test_cli import create_and_join, home, one_line_error, run_cli

__all__ = ["home", "relay"]


async def test_partial_ends_are_numbered_by_the_end_being_shot(
    relay: RelayHandle, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(30):
        url = await relay.start()
        await create_and_join(url, capsys)
        assert await run_cli("score", "9", "7") == 0
        assert "End 1 (2 of 6 arrows) scored: 9, 7. Total 16 after 2 arrows." in (
            capsys.readouterr().out
        )
        assert await run_cli("score", "9", "9", "9", "9") == 0
        assert "End 1 scored: 9, 9, 9, 9. Total 52 after 6 arrows." in capsys.readouterr().out
        # The bug this guards: `max(1, ends_completed)` printed "End 1" here.
        assert await run_cli("score", "9", "7") == 0
        out = capsys.readouterr().out
        assert "End 2 (2 of 6 arrows) scored: 9, 7. Total 68 after 8 arrows." in out
        assert "Synced with the relay." in out


async def test_undo_round_finish_and_leave(
    relay: RelayHandle, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(30):
        url = await relay.start()
        code = await create_and_join(url, capsys)
        assert await run_cli("score", "9", "9", "7", "7", "5", "M") == 0
        assert await run_cli("undo") == 0
        out = capsys.readouterr().out
        assert "Took back arrow 6 (M). Total 37 after 5 arrows." in out
        assert "Synced" in out

        assert await run_cli("round", "York") == 0  # a name in any case
        assert "Now shooting a York (144 arrows); 5 arrows kept." in capsys.readouterr().out
        (archer,) = (await read_shoot(url, code))["archers"].values()
        assert (archer["round"], archer["arrows"]) == ("york", [9, 9, 7, 7, 5])
        assert await run_cli("round", "Yrok") == 1
        assert "Did you mean 'york'?" in one_line_error(capsys.readouterr().err)

        assert await run_cli("finish") == 1  # not a terminal: no prompt, no change
        assert "add --yes" in one_line_error(capsys.readouterr().err)
        assert await run_cli("finish", "--yes") == 0
        assert "Score sheet final. Total 37 after 5 arrows." in capsys.readouterr().out
        assert await run_cli("score", "9") == 1
        assert "finished" in one_line_error(capsys.readouterr().err)

        assert await run_cli("leave", "--yes") == 0
        assert f"Left shoot {code}" in capsys.readouterr().out
        body = await read_shoot(url, code)
        (archer,) = body["archers"].values()
        assert archer["finished"]
        assert archer["left"]
        assert body["leaderboard"]["groups"] == []


async def test_offline_score_waits_at_most_wait_and_says_for_what(
    relay: RelayHandle, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(30):
        url = await relay.start()
        await create_and_join(url, capsys)
        await relay.stop()
        started = trio.current_time()
        assert await run_cli("score", "--wait", "2", "9", "9", "9", "9", "9", "9") == 0
        elapsed = trio.current_time() - started
        out = capsys.readouterr().out
        # One --wait in all; it used to wait once to connect and once more to sync.
        assert elapsed < 2 * 2, elapsed
        assert re.search(
            rf"Waiting up to \d\.\d s for the relay at {re.escape(url)} "
            r"for this archer's newest state\.\.\.",
            out,
        ), out
        assert "End 1 scored" in out
        assert "Pending: 1 write saved on this device" in out


async def test_relay_url_without_scheme_is_accepted_and_a_bad_one_explained(
    relay: RelayHandle, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(30):
        url = await relay.start()
        bare = url.removeprefix("http://")
        assert await run_cli("create", "--creator", "Sam", "--relay", bare) == 0
        assert f"Join: {url}/join/" in capsys.readouterr().out
        assert await run_cli("create", "--creator", "Sam", "--relay", "ftp://" + bare) == 1
        assert "must start with http:// or https://" in one_line_error(capsys.readouterr().err)
        assert await run_cli("create", "--creator", "Sam", "--relay", bare + "0000") == 1
        assert "bad port number" in one_line_error(capsys.readouterr().err)
