"""The SDK against a real relay and Redis: offline scoring, two devices, clocks, outbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import trio

from clients import (
    ConnectionState,
    Identity,
    InvalidScore,
    ShootClient,
    WriteSuperseded,
    add_device,
    connect,
    create_shoot,
    read_shoot,
    system_wall_ms,
)
from sync.clock import MAX_CLOCK_SKEW_MS
from tests.sdk_fixtures import FAST, RelayHandle, new_archer, relay

__all__ = ["relay"]

END_A = [9, 9, 7, 7, 5, "M"]  # 37
END_C = [5, 5, 5, 3, 3, 1]  # 22


def arrows_of(client: ShootClient, archer_id: str) -> int:
    register = client.register(archer_id)
    return -1 if register is None else len(register.state.arrows)


def skewed(offset_ms: int) -> Callable[[], int]:
    return lambda: system_wall_ms() + offset_ms


async def phone_and_tablet(url: str, code: str) -> tuple[Identity, Identity]:
    """One archer joined on a phone, with a tablet added as their second device."""
    phone = await new_archer(url, code)
    tablet = await add_device(url, code, archer_id=phone.archer_id, token=phone.token)
    return phone, tablet


async def test_three_ends_scored_while_the_relay_is_down_arrive_exactly_once(
    relay: RelayHandle, tmp_path: Path
) -> None:
    with trio.fail_after(20):
        url = await relay.start()
        shoot = await create_shoot(url, creator="Sam")
        me = await new_archer(url, shoot.code)
        await relay.stop()
        path = tmp_path / "outbox.json"
        async with connect(url, shoot.code, identity=me, outbox_path=path, options=FAST) as c:
            for end in ([9, 9, 7, 7, 5, "M"], [7, 7, 7, 5, 5, 3], [9, 9, 9, 9, 9, 9]):
                await c.score_end(end)
            assert c.state is not ConnectionState.CONNECTED
            board = c.leaderboard.standing(me.archer_id)
            assert board is not None
            assert board.ends_completed == 3
            assert board.total == 37 + 34 + 54
            assert len(c.pending) == 1  # only the newest state is queued
            await relay.start()
            async with connect(url, shoot.code, options=FAST) as viewer:
                await c.wait_synced()
                await viewer.wait_until(lambda v: arrows_of(v, me.archer_id) == 18)
                for client in (c, viewer):
                    standing = client.leaderboard.standing(me.archer_id)
                    assert standing is not None
                    assert standing.end_totals == (37, 34, 54)
        body = await read_shoot(url, shoot.code)
        assert body["archers"][me.archer_id]["arrows"] == [
            9, 9, 7, 7, 5, "M", 7, 7, 7, 5, 5, 3, 9, 9, 9, 9, 9, 9
        ]  # fmt: skip


async def test_same_archer_on_two_devices_converges_and_the_loser_is_told(
    relay: RelayHandle, tmp_path: Path
) -> None:
    with trio.fail_after(25):
        url = await relay.start()
        shoot = await create_shoot(url, creator="Sam")
        phone_id, tablet_id = await phone_and_tablet(url, shoot.code)
        assert tablet_id.device_id != phone_id.device_id
        aid = phone_id.archer_id
        phone_box, tablet_box = tmp_path / "phone.json", tmp_path / "tablet.json"
        async with connect(url, shoot.code, options=FAST) as viewer:
            async with (
                connect(
                    url, shoot.code, identity=phone_id, outbox_path=phone_box, options=FAST
                ) as phone,
                connect(
                    url, shoot.code, identity=tablet_id, outbox_path=tablet_box, options=FAST
                ) as tablet,
            ):
                await phone.wait_connected()
                await tablet.wait_connected()  # the tablet learns the archer's state
                await relay.stop()
                await phone.score_end([9, 9, 9, 9, 9, 9])  # both offline, both scoring
                await tablet.score_end([5, 5, 5, 5, 5, 5])
                await tablet.score_end([3, 3, 3, 3, 3, 3])  # the newest state
                # The phone's loop stops here; its write stays in its outbox file.
            await relay.start()
            async with connect(
                url, shoot.code, identity=tablet_id, outbox_path=tablet_box, options=FAST
            ) as tablet:
                await tablet.wait_synced()
                async with connect(
                    url, shoot.code, identity=phone_id, outbox_path=phone_box, options=FAST
                ) as phone:
                    assert len(phone.pending) == 1
                    await phone.wait_synced()
                    superseded = []
                    while (event := phone.events.get_nowait()) is not None:
                        if isinstance(event, WriteSuperseded):
                            superseded.append(event)
                    assert len(superseded) == 1
                    assert superseded[0].lost.state.arrows == (9,) * 6
                    assert superseded[0].winner.state.arrows == (5,) * 6 + (3,) * 6
                    newest = tablet.register()
                    assert newest is not None
                    await viewer.wait_until(lambda v: v.register(aid) == newest)
                    for client in (phone, tablet, viewer):
                        assert client.register(aid) == newest
                        standing = client.leaderboard.standing(aid)
                        assert standing is not None
                        assert standing.total == 48


async def test_device_clock_behind_still_wins_with_a_newer_write(
    relay: RelayHandle, tmp_path: Path
) -> None:
    with trio.fail_after(20):
        url = await relay.start()
        shoot = await create_shoot(url, creator="Sam")
        phone_id, tablet_id = await phone_and_tablet(url, shoot.code)
        aid = phone_id.archer_id
        async with (
            connect(url, shoot.code, identity=phone_id, options=FAST) as phone,
            connect(
                url,
                shoot.code,
                identity=tablet_id,
                options=FAST,
                wall_clock=skewed(-120_000),  # two minutes slow
            ) as tablet,
        ):
            await phone.score_end(END_A)
            await phone.wait_synced()
            await tablet.wait_until(lambda t: arrows_of(t, aid) == 6)
            await tablet.score_end(END_C)  # later in truth, earlier by its own clock
            await tablet.wait_synced()
            await phone.wait_until(lambda p: arrows_of(p, aid) == 12)
            assert phone.register() == tablet.register()


async def test_device_clock_ahead_within_the_bound_is_accepted_beyond_it_is_corrected(
    relay: RelayHandle, tmp_path: Path
) -> None:
    with trio.fail_after(20):
        url = await relay.start()
        shoot = await create_shoot(url, creator="Sam")
        near = await new_archer(url, shoot.code, name="Near")
        far = await new_archer(url, shoot.code, name="Far")
        ahead = MAX_CLOCK_SKEW_MS // 2
        async with (
            connect(url, shoot.code, identity=near, options=FAST, wall_clock=skewed(ahead)) as a,
            connect(url, shoot.code, identity=far, options=FAST, wall_clock=skewed(3_600_000)) as b,
        ):
            written = await a.score_end(END_A)
            await a.wait_synced()
            assert a.register() == written  # accepted with its own stamp
            before = system_wall_ms()
            await b.score_end(END_A)
            await b.wait_synced()  # refused with clock_skew, re-stamped, accepted
            register = b.register()
            assert register is not None
            assert register.state.arrows == tuple(END_A)
            assert register.stamp.wall_ms < before + MAX_CLOCK_SKEW_MS


async def test_stale_device_coming_back_after_a_newer_write_does_not_win(
    relay: RelayHandle, tmp_path: Path
) -> None:
    with trio.fail_after(20):
        url = await relay.start()
        shoot = await create_shoot(url, creator="Sam")
        phone_id, tablet_id = await phone_and_tablet(url, shoot.code)
        aid = phone_id.archer_id
        stale_box = tmp_path / "stale.json"
        # The stale device scores while it cannot reach the relay (a wrong port)...
        unreachable = f"http://127.0.0.1:{relay.port + 1 if relay.port < 65535 else 1}"
        async with connect(
            unreachable, shoot.code, identity=phone_id, outbox_path=stale_box, options=FAST
        ) as stale:
            await stale.score_end(END_A)
        # ...then the other device writes, later, and the relay has it.
        async with connect(url, shoot.code, identity=tablet_id, options=FAST) as tablet:
            await tablet.wait_connected()
            await tablet.score_end(END_C)
            await tablet.wait_synced()
            newest = tablet.register()
            async with connect(
                url, shoot.code, identity=phone_id, outbox_path=stale_box, options=FAST
            ) as stale:
                await stale.wait_synced()
                assert stale.register() == newest
                assert tablet.register() == newest
        body = await read_shoot(url, shoot.code)
        assert body["archers"][aid]["arrows"] == END_C


async def test_outbox_survives_a_client_stopped_before_any_relay_was_reachable(
    relay: RelayHandle, tmp_path: Path
) -> None:
    with trio.fail_after(20):
        url = await relay.start()
        shoot = await create_shoot(url, creator="Sam")
        me = await new_archer(url, shoot.code)
        await relay.stop()
        path = tmp_path / "outbox.json"
        async with connect(url, shoot.code, identity=me, outbox_path=path, options=FAST) as c:
            await c.score_end(END_A)
            await c.score_end(END_C)
        saved = json.loads(path.read_text())
        assert [len(r["state"]["arrows"]) for r in saved["pending"]] == [12]
        assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind

        await relay.start()
        async with (
            connect(url, shoot.code, identity=me, outbox_path=path, options=FAST) as again,
            connect(url, shoot.code, options=FAST) as viewer,
        ):
            assert len(again.pending) == 1
            await again.wait_synced()
            await viewer.wait_until(lambda v: arrows_of(v, me.archer_id) == 12)
        assert json.loads(path.read_text())["pending"] == []


async def test_invalid_arrow_is_refused_locally_and_nothing_is_queued(
    relay: RelayHandle, tmp_path: Path
) -> None:
    with trio.fail_after(10):
        url = await relay.start()
        shoot = await create_shoot(url, creator="Sam")
        me = await new_archer(url, shoot.code)  # a National: imperial 9-7-5-3-1
        async with connect(url, shoot.code, identity=me, options=FAST) as c:
            await c.wait_connected()
            for bad in ([9, 9, 8, 7, 5, 5], ["Q"], [9] * 7):
                try:
                    await c.score_end(bad)
                except InvalidScore as exc:
                    assert exc.message
                else:
                    raise AssertionError(f"{bad} was accepted")
            assert c.pending == []
            await c.score_arrow("9")
            await c.undo()
            await c.score_end(END_A)
            await c.finish()
            await c.wait_synced()
            register = c.register()
            assert register is not None
            assert register.state.finished
            try:
                await c.score_arrow(9)
            except InvalidScore as exc:
                assert exc.code == "finished"
            else:
                raise AssertionError("scored after finishing")


async def test_a_corrected_clock_still_beats_the_other_devices_write_it_had_seen(
    relay: RelayHandle, tmp_path: Path
) -> None:
    """Regression: after ``clock_skew`` the clock reset to the relay's time, forgetting the
    tablet's stamp (ahead, but within the bound) that the phone had seen, so the phone's
    re-stamped end lost to the older write and the end was gone."""
    with trio.fail_after(20):
        url = await relay.start()
        shoot = await create_shoot(url, creator="Sam")
        phone_id, tablet_id = await phone_and_tablet(url, shoot.code)
        aid = phone_id.archer_id
        tablet_ahead = MAX_CLOCK_SKEW_MS - 60_000
        async with connect(
            url, shoot.code, identity=tablet_id, options=FAST, wall_clock=skewed(tablet_ahead)
        ) as tablet:
            await tablet.wait_until(lambda t: arrows_of(t, aid) == 0)  # has the archer's state
            await tablet.score_end(END_A)
            await tablet.wait_synced()
        async with connect(
            url, shoot.code, identity=phone_id, options=FAST, wall_clock=skewed(3_600_000)
        ) as phone:
            await phone.wait_until(lambda p: arrows_of(p, aid) == 6)  # seen the tablet's end
            await phone.score_end(END_C)
            await phone.wait_synced()  # refused with clock_skew, re-stamped, accepted
            register = phone.register()
            assert register is not None
            assert register.state.arrows == tuple(END_A + END_C)
        body = await read_shoot(url, shoot.code)
        assert body["archers"][aid]["arrows"] == END_A + END_C
