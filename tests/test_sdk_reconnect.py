"""A relay restart with many connected clients: all come back, with spread-out delays.

On a loaded machine a client may need more than one attempt to get back (its hello can
time out while 199 others reconnect), so the test waits for what must become true, not
for a number of reconnects, and a client that never gets there is named with its state
and last error instead of surfacing as a time-out deep inside nested nurseries.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack

import pytest
import trio

from clients import ConnectionState, ShootClient, connect, create_shoot
from tests.sdk_fixtures import FAST, RelayHandle, new_archer, relay

__all__ = ["relay"]

CLIENTS = 200
#: Each phase's deadline; generous, since 200 clients share two busy cores with the relay.
PHASE_S = 40.0


def _describe(index: int, client: ShootClient) -> str:
    return (
        f"client {index}: {client.state.value}, {client.connections} sessions, "
        f"last error {client.error!r}"
    )


async def _all_reach(
    clients: Sequence[ShootClient], predicate: Callable[[ShootClient], bool], what: str
) -> None:
    """Wait until ``predicate`` holds for every client; fail naming the ones it does not."""
    with trio.move_on_after(PHASE_S):
        for client in clients:
            await client.wait_until(predicate)
        return
    stuck = [_describe(i, c) for i, c in enumerate(clients) if not predicate(c)]
    raise AssertionError(
        f"{len(stuck)} of {len(clients)} clients never {what} within {PHASE_S} s; "
        + "; ".join(stuck[:5])
    )


@pytest.mark.slow
async def test_relay_restart_with_many_clients(relay: RelayHandle) -> None:
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
        await _all_reach(everyone, lambda c: c.state is ConnectionState.CONNECTED, "connected")
        await archer.score_end([9, 9, 9, 9, 9, 9])
        await _all_reach([archer], lambda c: not c.pending, "had the first end acknowledged")

        sessions = {id(c): c.connections for c in everyone}
        delays_before = {id(c): len(c.reconnect_delays) for c in everyone}
        await relay.stop()
        await _all_reach(
            everyone, lambda c: c.state is not ConnectionState.CONNECTED, "noticed the stop"
        )
        await archer.score_end([7, 7, 7, 7, 7, 7])  # written while the relay is down
        await relay.start()

        await _all_reach(
            everyone,
            lambda c: c.connections > sessions[id(c)] and c.state is ConnectionState.CONNECTED,
            "reconnected",
        )
        await _all_reach([archer], lambda c: not c.pending, "had the second end acknowledged")
        newest = archer.register()
        assert newest is not None
        assert len(newest.state.arrows) == 12
        await _all_reach(
            viewers, lambda v: v.register(me.archer_id) == newest, "received the second end"
        )

        # The first delay each client drew after losing the relay: full jitter spreads
        # them over [0, base) instead of everyone retrying at once.
        first = [client.reconnect_delays[delays_before[id(client)]] for client in everyone]
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
