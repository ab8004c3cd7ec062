"""The actor's fan-out policy: a subscriber that stops reading never holds others back."""

from __future__ import annotations

import trio
import trio.testing

from relay.actor import Read, ShootActor, Submit, Subscribe
from relay.config import Settings
from relay.metrics import Metrics
from relay.store import RedisStore
from relay.subscriber import Close, Subscriber
from sync.codec import decode_server
from sync.models import Shoot
from sync.protocol import CLOSE_TOO_SLOW, Ack, Update, Welcome
from tests.wire import now_ms, register


async def test_stalled_subscriber_is_resynced_then_closed_and_others_get_everything(
    redis_url: str,
) -> None:
    store = RedisStore(redis_url)
    shoot = store.create_shoot(
        lambda code: Shoot(code, "id", "", "Sam", now_ms(), now_ms() + 3_600_000, "UTC")
    )
    stored = store.load_shoot(shoot.code)
    assert stored is not None
    send, receive = trio.open_memory_channel[object](64)
    actor = ShootActor(stored, store, receive, Settings(), Metrics(), client_id=7)  # type: ignore[arg-type]
    stalled = Subscriber(limit=4)
    reader = Subscriber(limit=4, role="archer", archer_id="a1")
    received: list[object] = []

    async def drain(subscriber: Subscriber) -> None:
        while True:
            for frame in await subscriber.next_batch():
                received.append(frame if isinstance(frame, Close) else decode_server(frame))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actor.run)
            nursery.start_soon(drain, reader)
            for subscriber in (stalled, reader):
                subscribe = Subscribe(subscriber, b"\x00")
                await send.send(subscribe)
                await subscribe.done.wait()
            for n in range(1, 41):
                await send.send(Submit(register("a1", (9,) * n, ms=n), n, reader))
                # The stalled queue never grows past its bound (+1 welcome answer).
                assert stalled.statistics().queued <= stalled.limit + 1
                await trio.testing.wait_all_tasks_blocked()
            read = Read()
            await send.send(read)
            view = await read.reply.wait()
            assert view.registers["a1"].state.arrows == (9,) * 40
            acks = [m for m in received if isinstance(m, Ack)]
            while len(acks) < 40:  # acks wait for Redis, on a worker thread: poll
                await trio.sleep(0.01)
                acks = [m for m in received if isinstance(m, Ack)]
            assert [a.id for a in acks] == list(range(1, 41))
            assert sum(isinstance(m, Update) for m in received) == 40
            assert isinstance(received[0], Welcome)

            assert stalled.closed
            assert stalled.resyncs == 3
            assert stalled not in actor.subscribers
            frames = await stalled.next_batch()
            assert frames == [Close(CLOSE_TOO_SLOW, "too slow to keep up")]
            nursery.cancel_scope.cancel()
    store.close()
