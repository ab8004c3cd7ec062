"""The instance's stream readers (relay.hub) against a real Redis: a stream added while a
read is blocked is read at once, and a stream that lost its consumer group gets it back."""

from __future__ import annotations

import redis
import trio
import trio.testing

from relay.hub import StreamHub
from relay.store import RedisStore
from relay.streams import StreamReader

#: Longer than any test's deadline: a hub that waited for the block to end would fail.
LONG_BLOCK_MS = 120_000


async def test_a_stream_watched_while_a_read_is_blocked_is_read_at_once(redis_url: str) -> None:
    store = RedisStore(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        limiter = trio.CapacityLimiter(4)
        hub = StreamHub(StreamReader(redis_url, client, limiter, block_ms=LONG_BLOCK_MS))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(hub.run)
            first = hub.watch("shoot:{1000}:a:log")
            client.xadd("shoot:{1000}:a:log", {"u": b"1"})
            with trio.fail_after(20):
                assert [f["u"] for _, f in await first.batches.receive()] == [b"1"]
                # The hub is now blocked reading the first stream only.
                await trio.testing.wait_all_tasks_blocked()
                second = hub.watch("shoot:{2000}:b:log")
                client.xadd("shoot:{2000}:b:log", {"u": b"2"})
                assert [f["u"] for _, f in await second.batches.receive()] == [b"2"]
                client.xadd("shoot:{1000}:a:log", {"u": b"3"})
                assert [f["u"] for _, f in await first.batches.receive()] == [b"3"]
            second.close()
            first.close()
            nursery.cancel_scope.cancel()
    finally:
        client.close()
        store.close()


async def test_an_inbox_that_lost_its_group_is_read_again_once_repaired(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    key = "shoot:{3000}:c:inbox"
    try:
        reader = StreamReader(redis_url, client, trio.CapacityLimiter(4), block_ms=LONG_BLOCK_MS)
        hub = StreamHub(reader, group=("owners", "owner"))
        repairs = 0

        async def repair() -> None:
            nonlocal repairs
            repairs += 1
            await trio.to_thread.run_sync(
                lambda: client.xgroup_create(key, "owners", id="0", mkstream=True)
            )

        await repair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(hub.run)
            watch = hub.watch(key, repair=repair)
            client.xadd(key, {"k": b"first"})
            with trio.fail_after(20):
                assert [f["k"] for _, f in await watch.batches.receive()] == [b"first"]
                await trio.testing.wait_all_tasks_blocked()
                client.delete(key)  # the key expired, or was flushed: its group is gone
                client.xadd(key, {"k": b"lost"})  # a new stream, without the group
                # Unblock the read so the next one meets the missing group.
                hub.watch("shoot:{3000}:c:other", repair=repair).close()
                while repairs < 2:
                    await trio.sleep(0.01)  # polling the repair count under the deadline
                client.xadd(key, {"k": b"second"})
                got: list[bytes] = []
                while b"second" not in got:
                    got += [f["k"] for _, f in await watch.batches.receive()]
            watch.close()
            nursery.cancel_scope.cancel()
    finally:
        client.close()
