"""The visible loser: two devices of one archer scored different ends while apart; the
newest state wins, and the CLI on the device that lost says which end was replaced, keeps
it, and ``restore`` writes it again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from clients import Identity, add_device, connect, read_shoot
from clients._replaced import describe_replaced
from sync.models import ArcherState
from tests.sdk_fixtures import FAST, RelayHandle, relay
from tests.test_cli import create_and_join, home, run_cli

__all__ = ["home", "relay"]


async def _tablet_beats_the_phones_end_2(
    relay: RelayHandle, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[str, str]:
    """Both devices score end 1 (9s); the phone (this CLI) scores end 2 (7s) while the relay
    is down, then the tablet scores its end 2 (5s) later: the tablet's is the newest state.
    Returns the relay's URL and the shoot's code."""
    url = await relay.start()
    code = await create_and_join(url, capsys)  # this device (the CLI) is the phone
    phone = Identity.from_json(json.loads((home / "identity.json").read_text()))
    tablet = await add_device(url, code, archer_id=phone.archer_id, token=phone.token)
    assert await run_cli("score", "9", "9", "9", "9", "9", "9") == 0
    assert "Synced with the relay." in capsys.readouterr().out

    await relay.stop()
    assert await run_cli("score", "--wait", "0.5", "7", "7", "7", "7", "7", "7") == 0
    assert "Pending: 1 write" in capsys.readouterr().out
    await relay.start()
    box = tmp_path / "tablet.json"
    async with connect(url, code, identity=tablet, outbox_path=box, options=FAST) as client:
        await client.wait_until(
            lambda c: (r := c.register()) is not None and len(r.state.arrows) == 6
        )
        await client.score_end([5, 5, 5, 5, 5, 5])
        await client.wait_synced()
    return url, code


async def test_sync_names_the_replaced_end_and_restore_writes_it_again(
    relay: RelayHandle, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with trio.fail_after(40):
        url, code = await _tablet_beats_the_phones_end_2(relay, home, tmp_path, capsys)

        assert await run_cli("sync") == 0
        out = capsys.readouterr().out
        assert (
            "Your end 2 (7 7 7 7 7 7) from this device was replaced by a newer write "
            "from another device." in out
        )
        assert "end 1" not in out  # end 1 is the same on both devices: nothing lost there
        assert "fast-shoot restore" in out
        assert "Synced: nothing pending." in out
        (archer,) = (await read_shoot(url, code))["archers"].values()
        assert archer["arrows"] == [9] * 6 + [5] * 6  # the rule: the newest state won

        assert await run_cli("sync") == 0  # said once, not on every sync
        assert "replaced" not in capsys.readouterr().out

        assert await run_cli("restore") == 0
        out = capsys.readouterr().out
        assert "Restored this device's version. Total 96 after 12 arrows." in out
        assert "Synced with the relay." in out
        (archer,) = (await read_shoot(url, code))["archers"].values()
        assert archer["arrows"] == [9] * 6 + [7] * 6
        assert await run_cli("restore") == 0
        assert "Nothing to restore" in capsys.readouterr().out


def test_each_end_that_differs_is_named_and_a_change_without_ends_is_said_too() -> None:
    lost = ArcherState("Chris", "national", arrows=(9,) * 6 + (7,) * 6 + (5, 5))
    winner = ArcherState("Chris", "national", arrows=(9,) * 6 + (3,) * 6)
    lines = describe_replaced(lost, winner)
    assert lines[:2] == [
        "Your end 2 (7 7 7 7 7 7) from this device was replaced by a newer write "
        "from another device.",
        "Your end 3 (5 5) from this device was replaced by a newer write from another device.",
    ]
    finished = ArcherState("Chris", "national", arrows=(9,) * 6, finished=True)
    assert describe_replaced(finished, winner)[0].startswith("A change from this device")


async def test_scoring_over_an_end_another_device_had_beaten_names_the_lost_end(
    relay: RelayHandle, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The phone's pending end had already lost to the tablet's newer state when the phone
    scores again: the new end is built on the tablet's state, so the pending one would be
    gone without a word; the CLI names it."""
    with trio.fail_after(40):
        url, code = await _tablet_beats_the_phones_end_2(relay, home, tmp_path, capsys)

        assert await run_cli("score", "3", "3", "3", "3", "3", "3") == 0
        out = capsys.readouterr().out
        assert (
            "Your end 2 (7 7 7 7 7 7) from this device was replaced by a newer write "
            "from another device." in out
        )
        assert "Synced with the relay." in out
        (archer,) = (await read_shoot(url, code))["archers"].values()
        assert archer["arrows"] == [9] * 6 + [5] * 6 + [3] * 6
