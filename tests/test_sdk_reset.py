"""The reset rule end to end: replicas holding an update the relay lost start over.

A relay fans an update out as soon as it applies a write, and acknowledges it once Redis
has it. Stopped in between (here: Redis is down, then the relay stops), the update lives
only in the replicas that received it. The next relay does not know those items, so it
welcomes those replicas with ``reset``; they discard their replica, and the archer's device
resends the write from its outbox, which the new relay applies, persists and acknowledges.
"""

from __future__ import annotations

from pathlib import Path

import trio

from clients import ConnectionState, ShootClient, WriteAcked, connect, create_shoot, read_shoot
from relay.redis_server import RedisServer
from tests.sdk_fixtures import FAST, RelayHandle, free_port, new_archer

END = [9, 9, 7, 7, 5, "M"]


def arrows_of(client: ShootClient, archer_id: str) -> int:
    register = client.register(archer_id)
    return -1 if register is None else len(register.state.arrows)


async def test_unpersisted_update_is_reset_away_and_the_write_resent_and_acked(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            # A short grace: a stopping relay gives up flushing to the absent Redis quickly.
            relay = RelayHandle(nursery, own_redis.url, free_port(), shutdown_grace_s=0.2)
            url = await relay.start()
            shoot = await create_shoot(url, creator="Sam")
            me = await new_archer(url, shoot.code)
            aid = me.archer_id
            path = tmp_path / "outbox.json"
            async with (
                connect(url, shoot.code, identity=me, outbox_path=path, options=FAST) as archer,
                connect(url, shoot.code, options=FAST) as viewer,
            ):
                await archer.wait_connected()
                await viewer.wait_connected()

                await trio.to_thread.run_sync(own_redis.stop)
                written = await archer.score_end(END)
                # The relay applied it and fanned it out (the viewer's replica has it)...
                await viewer.wait_until(lambda v: arrows_of(v, aid) == len(END))
                # ...but cannot persist it, so the archer has no ack.
                assert archer.pending == [written]

                await relay.stop()  # the update dies with it
                for client in (archer, viewer):
                    await client.wait_until(lambda c: c.state is not ConnectionState.CONNECTED)
                await trio.to_thread.run_sync(own_redis.start)
                await relay.start()

                await archer.wait_until(lambda c: c.connections == 2)
                await viewer.wait_until(lambda c: c.connections == 2)
                assert archer.resets == 1
                assert viewer.resets == 1
                await archer.wait_synced()  # resent from the outbox, applied, acknowledged
                acked = [e.register for e in _events(archer) if isinstance(e, WriteAcked)]
                assert acked == [written]
                assert archer.register() == written

                async with connect(url, shoot.code, options=FAST) as fresh:
                    await fresh.wait_connected()
                    await fresh.wait_until(lambda f: f.register(aid) == written)
                    await viewer.wait_until(lambda v: v.register(aid) == written)
                    # Every replica is the relay's document: the same registers, and no
                    # leftover of the lost update (it would show as extra arrows).
                    assert archer.registers == viewer.registers == fresh.registers
                    assert archer.session.replica.registers() == fresh.session.replica.registers()
                    assert viewer.session.replica.registers() == fresh.session.replica.registers()
                    assert fresh.resets == 0
            # Acknowledged means durable: a relay started afresh from Redis has it.
            await relay.stop()
            await relay.start()
            body = await read_shoot(url, shoot.code)
            assert body["archers"][aid]["arrows"] == END
            await relay.stop()


def _events(client: ShootClient) -> list[object]:
    events: list[object] = []
    while (event := client.events.get_nowait()) is not None:
        events.append(event)
    return events
