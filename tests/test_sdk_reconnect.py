"""A relay restart with many connected clients: all come back, with spread-out delays."""

from __future__ import annotations

import random
import statistics
from contextlib import AsyncExitStack

import pytest
import trio

from clients import ConnectionState, ShootClient, connect, create_shoot
from tests.sdk_fixtures import FAST, RelayHandle, new_archer, relay

__all__ = ["relay"]

CLIENTS = 200


@pytest.mark.slow
async def test_relay_restart_with_many_clients(relay: RelayHandle) -> None:
    with trio.fail_after(60):
        url = await relay.start()
        shoot = await create_shoot(url, creator="Sam")
        me = await new_archer(url, shoot.code)
        async with AsyncExitStack() as stack:
            archer = await stack.enter_async_context(
                connect(url, shoot.code, identity=me, options=FAST, rng=random.Random(0))
            )
            viewers: list[ShootClient] = [
                await stack.enter_async_context(
                    connect(url, shoot.code, options=FAST, rng=random.Random(i + 1))
                )
                for i in range(CLIENTS - 1)
            ]
            everyone = [archer, *viewers]
            for client in everyone:
                await client.wait_connected()
            await archer.score_end([9, 9, 9, 9, 9, 9])
            await archer.wait_synced()

            await relay.stop()
            for client in everyone:
                await client.wait_until(lambda c: c.state is not ConnectionState.CONNECTED)
            await archer.score_end([7, 7, 7, 7, 7, 7])  # written while the relay is down
            await relay.start()

            for client in everyone:
                await client.wait_until(lambda c: c.connections == 2)
            await archer.wait_synced()
            newest = archer.register()
            assert newest is not None
            assert len(newest.state.arrows) == 12
            for viewer in viewers:
                await viewer.wait_until(lambda v: v.register(me.archer_id) == newest)

            # The first delay each client drew after losing the relay: full jitter spreads
            # them over [0, base) instead of everyone retrying at once.
            first = [client.reconnect_delays[0] for client in everyone]
            assert all(0 <= d < FAST.backoff_base_s for d in first)
            assert len({round(d, 6) for d in first}) > 0.95 * CLIENTS
            assert statistics.pstdev(first) > FAST.backoff_base_s / 5
            quarters = [
                sum(1 for d in first if q / 4 <= d / FAST.backoff_base_s < (q + 1) / 4)
                for q in range(4)
            ]
            assert min(quarters) > CLIENTS / 10, quarters
            every = [d for client in everyone for d in client.reconnect_delays]
            assert all(0 <= d <= FAST.backoff_cap_s for d in every)
