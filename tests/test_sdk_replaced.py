"""No edit vanishes unseen: the SDK reports a write of this device's that another device's
newer state replaced without holding it, even once the relay had acknowledged it.

Against a real relay (real Redis, real WebSockets); the machine's own rules are unit
tested in ``tests/test_client_session.py``.
"""

from __future__ import annotations

from pathlib import Path

import trio

from clients import ShootClient, WriteSuperseded, connect, create_shoot
from tests.sdk_fixtures import FAST, RelayHandle, relay
from tests.test_sdk_sync import phone_and_tablet, skewed

__all__ = ["relay"]


def superseded(client: ShootClient) -> list[WriteSuperseded]:
    found = []
    while (event := client.events.get_nowait()) is not None:
        if isinstance(event, WriteSuperseded):
            found.append(event)
    return found


async def test_an_acknowledged_write_replaced_by_another_devices_state_is_reported(
    relay: RelayHandle, tmp_path: Path
) -> None:
    with trio.fail_after(30):
        url = await relay.start()
        shoot = await create_shoot(url, creator="Sam")
        phone_id, tablet_id = await phone_and_tablet(url, shoot.code)
        box = tmp_path / "tablet.json"
        ahead = skewed(120_000)  # within the bound: the relay accepts its stamps
        async with connect(
            url, shoot.code, identity=tablet_id, outbox_path=box, options=FAST, wall_clock=ahead
        ) as tablet:
            await tablet.wait_until(lambda c: c.register() is not None)
        # The tablet scores offline (its loop is not running), two minutes "later".
        offline = ShootClient(
            url, shoot.code, identity=tablet_id, outbox_path=box, wall_clock=ahead
        )
        await offline.score_end([5, 5, 5, 5, 5, 5])

        async with connect(url, shoot.code, identity=phone_id, options=FAST) as phone:
            mine = await phone.score_end([9, 9, 9, 9, 9, 9])
            await phone.wait_synced()  # acknowledged: durable on the relay
            async with connect(
                url, shoot.code, identity=tablet_id, outbox_path=box, options=FAST, wall_clock=ahead
            ) as tablet:
                await tablet.wait_synced()
            await phone.wait_until(lambda c: c.register() == tablet.register())
            (event,) = superseded(phone)
            assert event.lost == mine
            assert event.acknowledged
            assert event.winner.state.arrows == (5,) * 6
