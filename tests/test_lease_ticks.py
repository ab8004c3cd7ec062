"""The lease tasks (:mod:`relay.lease`) tick only while they look after a lease.

A relay that owns no shoot and follows none sets no timer for them: every wake-up costs
CPU, and most of a relay's day is idle. Seen here as task steps over virtual time, then,
against a real Redis, as the renewal and the read they do once there is a lease.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import trio
import trio.testing

from relay.lease import LeaseBoard, LeaseKeeper, LeaseRenewals
from relay.store import Owner, RedisStore
from sync.models import Shoot
from tests.task_steps import counting_steps
from tests.wire import now_ms

#: Renewed every third of it: a renewal may come 4 s late before the lease lapses.
LEASE_S = 6.0


def _shoot(code: str) -> Shoot:
    now = now_ms()
    return Shoot(code, uuid.uuid4().hex, "", "Sam", now, now + 3_600_000, "UTC")


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    store = RedisStore(redis_url)
    try:
        yield store
    finally:
        store.close()


async def test_with_no_lease_to_look_after_the_lease_tasks_set_no_timer(
    store: RedisStore, autojump_clock: trio.testing.MockClock
) -> None:
    renewals, board = LeaseRenewals(store, LEASE_S), LeaseBoard(store, LEASE_S / 3)
    with (
        counting_steps("LeaseRenewals.run") as renewing,
        counting_steps("LeaseBoard.run") as reading,
    ):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(renewals.run)
            nursery.start_soon(board.run)
            await trio.sleep(100 * LEASE_S)  # virtual: 300 ticks each, had they ticked
            assert renewing.count == 1  # the step that began the wait
            assert reading.count == 1
            nursery.cancel_scope.cancel()


async def test_a_kept_lease_is_renewed_and_a_watched_one_read(store: RedisStore) -> None:
    shoot = await store.call(store.create_shoot, _shoot)
    owner = await store.call(store.acquire_lease, shoot, "test", round(LEASE_S * 1000))
    assert isinstance(owner, Owner)

    async def time_left_ms() -> int:
        [(holder, left_ms)] = await store.call(store.lease_states, [shoot])
        assert holder == owner.token, "the lease lapsed"
        return left_ms

    renewals, board = LeaseRenewals(store, LEASE_S), LeaseBoard(store, LEASE_S / 3)
    due = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(renewals.run)
            nursery.start_soon(board.run)
            await trio.testing.wait_all_tasks_blocked()  # both asleep, with nothing to do

            renewals.keep(LeaseKeeper(store, shoot, owner))
            board.watch(shoot, "someone else", due.set)  # not the holder: due at once
            await due.wait()
            lowest = await time_left_ms()
            while (left := await time_left_ms()) <= lowest:
                lowest = left
                await trio.sleep(0.05)  # polling Redis until the renewal shows
            nursery.cancel_scope.cancel()
