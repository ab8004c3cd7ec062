"""A follower's board: the owner's board, with archeryutils never on the event loop."""

from __future__ import annotations

import pytest
import trio

from relay.config import Settings
from relay.follower import ShootFollower
from relay.messages import Message, Read, Reply, ShootView, Submit, WriteResult
from relay.metrics import Metrics
from sync.leaderboard import build_leaderboard
from tests.test_actor import _actor, cold_tables
from tests.wire import now_ms, register


async def _read(send: trio.MemorySendChannel[Message]) -> ShootView:
    read = Read()
    await send.send(read)
    return await read.reply.wait()


async def test_a_read_through_a_follower_is_the_owners_board_without_archeryutils_on_the_loop(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner writes two archers' ends; the follower, whose projection tables are cold
    (a fresh instance), answers a read with the same board as the owner (handicaps and
    classifications included), filling its tables on a worker thread only."""
    actor, to_owner, store = _actor(redis_url)
    stored = store.load_shoot(actor.shoot.code)
    assert stored is not None
    to_follower, inbox = trio.open_memory_channel[Message](16)
    follower = ShootFollower(
        stored, store, inbox, Settings(), Metrics(), instance="f", holder="1:owner"
    )
    written = [
        register("a1", (9, 7, 7, 7, 7, 5) * 2, ms=now_ms()),
        register("a2", (9, 9, 9, 7, 7, 7), device="d2", name="Dana", ms=now_ms()),
    ]
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actor.run)
            nursery.start_soon(follower.run)
            for n, reg in enumerate(written, start=1):
                durable: Reply[WriteResult] = Reply()
                await to_owner.send(Submit(reg, n, reply=durable))
                await durable.wait()
            await actor.projector.wait_idle()
            owner_view = await _read(to_owner)
            while any(follower.doc.register(r.archer_id) != r for r in written):
                await trio.sleep(0.01)  # polling: the follower tails the log
            threads = cold_tables(monkeypatch)
            follower_view = await _read(to_follower)
            again = await _read(to_follower)  # kept until the replica changes
            nursery.cancel_scope.cancel()
    store.close()
    assert follower_view.leaderboard == owner_view.leaderboard == build_leaderboard(written)
    assert follower_view.registers == owner_view.registers
    standing = follower_view.leaderboard.standing("a1")
    assert standing is not None
    assert standing.classification is not None
    assert threads  # the follower needed archeryutils...
    assert not any(threads)  # ...and never called it on the event loop's thread
    assert again.leaderboard is follower_view.leaderboard
