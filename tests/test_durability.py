"""The persister (:mod:`relay.durability`) on its own, against a real redis-server that
the test crashes at the exact moment it means to."""

from __future__ import annotations

import logging
import uuid

import pytest
import trio

from relay.config import Settings
from relay.durability import Durability, Held
from relay.messages import Reply, WriteResult
from relay.metrics import Metrics
from relay.redis_server import RedisServer
from relay.store import Owner, RedisStore, StoredShoot
from sync.document import ShootDocument
from sync.models import Shoot
from sync.register import Applied
from sync.relay_state import ShootState
from tests.wire import now_ms, register


def _shoot(code: str) -> Shoot:
    now = now_ms()
    return Shoot(code, uuid.uuid4().hex, "", "Sam", now, now + 3_600_000, "UTC")


async def _stored(store: RedisStore, code: str) -> StoredShoot:
    stored = await store.call(store.load_shoot, code)
    assert stored is not None
    return stored


async def test_a_compaction_that_fails_is_logged_loses_nothing_and_is_tried_again(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="relay.durability")
    store = RedisStore(own_redis.url)
    shoot = store.create_shoot(_shoot)
    owner = store.acquire_lease(shoot, "test", 3_600_000)
    assert isinstance(owner, Owner)
    doc = ShootDocument(client_id=1)
    metrics = Metrics()
    snapshots: list[bytes] = []

    def snapshot() -> bytes:
        # Redis crashes after confirming the append, before the compaction it set off.
        if not snapshots:
            own_redis.kill()
        snapshots.append(doc.diff())
        return snapshots[-1]

    state: ShootState[Held] = ShootState(doc)
    durability = Durability(
        shoot,
        store,
        Settings(compact_every=2),
        metrics,
        state=state,
        snapshot=snapshot,
        log_length=0,
        owner=owner,
    )
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(durability.run)
            with trio.fail_after(30):
                durability.record(doc.set_meta(shoot))
                written = state.write(register("a1", (9, 7)), now_ms())
                assert isinstance(written.outcome, Applied)
                assert written.update is not None
                durability.persist(written.update)
                reply: Reply[WriteResult] = Reply()
                durability.hold(Held(written.needs, None, None, reply, WriteResult(None)))
                await reply.wait()  # durable: answered before the compaction was tried

                while metrics.redis_failures == 0:
                    await trio.sleep(0.01)  # polling the persister, which is on its own
                failed = [r for r in caplog.records if "compaction failed" in r.getMessage()]
                assert [r.levelno for r in failed] == [logging.WARNING]
                assert shoot.shoot_id in failed[0].getMessage()
                assert not durability.degraded  # the appends themselves went through

                await trio.to_thread.run_sync(own_redis.start)
                stored = await _stored(store, shoot.code)
                assert stored.snapshot is None  # nothing lost: the log is all there
                assert len(stored.log) == 2

                # The next append sets the compaction off again, and now it succeeds.
                written = state.write(register("a1", (9, 7, 5), ms=now_ms() + 1), now_ms())
                assert written.update is not None
                durability.persist(written.update)
                while (stored := await _stored(store, shoot.code)).snapshot is None:
                    await trio.sleep(0.05)  # polling Redis for the persister's compaction
            loaded = ShootDocument.load([stored.snapshot, *(u for _, u in stored.log)])
            assert loaded.registers() == doc.registers()
            assert len(snapshots) == 2  # the failed compaction, then the one that worked
            nursery.cancel_scope.cancel()
    finally:
        store.close()
