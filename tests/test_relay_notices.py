"""Notices through a real relay: each is sent once, and survives restarts and unloads."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from relay.redis_server import RedisServer
from sync.protocol import Ack, Notice, Ping, Pong, Update, Welcome
from tests.test_relay_durability import _start
from tests.wire import Peer, create_shoot, join, peer, register

END_OF_9 = (9,) * 6
END_OF_5 = (5,) * 6


async def write(
    url: str, code: str, archer: tuple[str, str], name: str, arrows: tuple[Any, ...], ms: int
) -> None:
    """One acknowledged write (durable in Redis) from the archer's own connection."""
    archer_id, token = archer
    async with peer(url, code, archer=archer_id, token=token) as device:
        await device.expect(Welcome)
        await device.write(1, register(archer_id, arrows, device="phone", ms=ms, name=name))
        assert (await device.expect(Ack)).id == 1


async def notices_until(viewer: Peer, count: int) -> list[str]:
    """Read until ``count`` notices have arrived; frames to one viewer are in order, so
    any notice an earlier write caused has arrived before the last one."""
    texts: list[str] = []
    while len(texts) < count:
        texts.append((await viewer.expect(Notice)).text)
    return texts


async def test_a_relay_restart_announces_no_lead_again(
    redis_url: str, nursery: trio.Nursery
) -> None:
    with trio.fail_after(30):
        url, scope = await _start(nursery, redis_url)
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            chris = await join(http, code, "Chris")
            alex = await join(http, code, "Alex")
        async with peer(url, code) as viewer:
            await viewer.expect(Welcome)
            await write(url, code, chris, "Chris", END_OF_9, ms=1_000)
            assert await notices_until(viewer, 1) == ["Chris has taken the lead!"]
            seen = viewer.doc.state_vector()  # including the relay's memory of that notice
            await write(url, code, alex, "Alex", END_OF_5, ms=1_000)
        scope.cancel()

        port = int(url.rsplit(":", 1)[1])
        await _start(nursery, redis_url, port)
        async with peer(url, code, sv=seen) as viewer:
            assert (await viewer.expect(Welcome)).reset is False  # all of it was persisted
            # Chris still leads after his second end: nothing to announce (a relay that
            # forgot what it told announced "Chris has taken the lead!" again here).
            await write(url, code, chris, "Chris", END_OF_9 * 2, ms=2_000)
            await write(url, code, alex, "Alex", END_OF_5 * 2, ms=2_000)
            assert await notices_until(viewer, 2) == [
                "Chris is 1st of 2 after 2 ends.",
                "Alex is 2nd of 2 after 2 ends.",
            ]


async def test_an_idle_unload_announces_nothing_again(
    redis_url: str, nursery: trio.Nursery
) -> None:
    with trio.fail_after(30):
        url, _ = await _start(nursery, redis_url, idle_timeout_s=0.2)
        async with httpx.AsyncClient(base_url=url) as http:

            async def unloaded() -> None:
                while (await http.get("/health")).json()["live_shoots"] != 0:
                    await trio.sleep(0.05)  # polling a state that has no event, bounded above

            code = (await create_shoot(http))["code"]
            chris = await join(http, code, "Chris")
            alex = await join(http, code, "Alex")
            async with peer(url, code) as viewer:
                await viewer.expect(Welcome)
                await write(url, code, chris, "Chris", END_OF_9 * 2, ms=1_000)
                assert await notices_until(viewer, 1) == ["Chris has taken the lead!"]
                await write(url, code, alex, "Alex", END_OF_5 * 2, ms=1_000)
                assert await notices_until(viewer, 2) == [
                    "Chris is 1st of 2 after 2 ends.",
                    "Alex is 2nd of 2 after 2 ends.",
                ]
            await unloaded()

            async with peer(url, code) as viewer:
                await viewer.expect(Welcome)
                # Neither the lead nor the 2-end digest again; Alex takes the lead later.
                await write(url, code, chris, "Chris", END_OF_9 * 2 + END_OF_5, ms=2_000)
                await write(url, code, alex, "Alex", END_OF_5 * 2 + END_OF_9 * 3, ms=2_000)
                assert await notices_until(viewer, 1) == ["Alex has taken the lead!"]


async def test_a_notice_waits_until_its_write_is_durable(
    own_redis: RedisServer, nursery: trio.Nursery
) -> None:
    with trio.fail_after(30):
        url, _ = await _start(nursery, own_redis.url)
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            chris_id, token = await join(http, code, "Chris")
            await join(http, code, "Alex")
        async with (
            peer(url, code) as viewer,
            peer(url, code, archer=chris_id, token=token) as chris,
        ):
            await viewer.expect(Welcome)
            await chris.expect(Welcome)
            # Let the actor's Redis work so far finish before Redis goes away.
            await chris.write(1, register(chris_id, (), device="phone", ms=1_000))
            await chris.expect(Ack)
            await trio.to_thread.run_sync(own_redis.stop)
            await chris.write(2, register(chris_id, END_OF_9, device="phone", ms=2_000))
            await viewer.expect(Update)  # fan-out goes on while Redis is away...
            await viewer.send(Ping(1))
            await viewer.expect(Pong)
            # ...but the notice, which would have been queued before the pong, is not.
            assert not any(isinstance(m, Notice) for m in viewer.seen)
            await trio.to_thread.run_sync(own_redis.start)
            assert (await chris.expect(Ack)).id == 2
            assert (await viewer.expect(Notice)).text == "Chris has taken the lead!"
