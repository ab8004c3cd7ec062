"""The actor on its own: its fan-out policy, and that every message gets an answer."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio
import trio.testing

from relay.actor import Read, ShootActor, Submit, Subscribe
from relay.config import Settings
from relay.messages import (
    Access,
    AddArcher,
    CheckAccess,
    Message,
    Reply,
    ShootUnavailable,
    WriteResult,
)
from relay.metrics import Metrics
from relay.redis_server import RedisServer
from relay.store import ArcherRecord, Owner, RedisStore
from relay.subscriber import Close, Subscriber
from sync import classification, projection_tables
from sync.classification import derived_values
from sync.codec import decode_server
from sync.document import ShootDocument
from sync.leaderboard import build_leaderboard
from sync.models import Shoot
from sync.protocol import CLOSE_TOO_SLOW, Ack, Update, Welcome
from sync.register import Applied
from tests.wire import now_ms, register


async def _subscribe(send: trio.MemorySendChannel[Any], subscriber: Subscriber) -> None:
    """Subscribe from an empty replica, and wait until the actor has welcomed it."""
    subscribe = Subscribe(subscriber, b"\x00")
    await send.send(subscribe)
    await subscribe.done.wait()


def _owner(store: RedisStore, shoot: Shoot) -> Owner:
    """The shoot's lease, taken for an hour (nobody else competes for it here)."""
    owner = store.acquire_lease(shoot, "test", 3_600_000)
    assert isinstance(owner, Owner)
    return owner


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
    owner = _owner(store, shoot)
    actor = ShootActor(stored, store, receive, Settings(), Metrics(), owner=owner)  # type: ignore[arg-type]
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
                await _subscribe(send, subscriber)
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
            # One per write, plus any that writes derived values filled off the event loop.
            assert sum(isinstance(m, Update) for m in received) >= 40
            assert isinstance(received[0], Welcome)

            assert stalled.closed
            assert stalled.resyncs == 3
            assert stalled not in actor.subscribers
            frames = await stalled.next_batch()
            assert frames == [Close(CLOSE_TOO_SLOW, "too slow to keep up")]
            nursery.cancel_scope.cancel()
    store.close()


def _actor(
    redis_url: str, *, clock_ahead_ms: int = 0, **tuning: Any
) -> tuple[ShootActor, trio.MemorySendChannel[Message], RedisStore]:
    """An actor of a new shoot that ends in an hour, whose clock is ``clock_ahead_ms``
    ahead of the real one."""
    store = RedisStore(redis_url)
    shoot = store.create_shoot(
        lambda code: Shoot(code, "id", "", "Sam", now_ms(), now_ms() + 3_600_000, "UTC")
    )
    stored = store.load_shoot(shoot.code)
    assert stored is not None
    send, receive = trio.open_memory_channel[Message](64)
    actor = ShootActor(
        stored,
        store,
        receive,
        Settings(**tuning),
        Metrics(),
        owner=_owner(store, shoot),
        now_ms=lambda: now_ms() + clock_ahead_ms,
    )
    return actor, send, store


def _waiters() -> tuple[list[Message], list[Reply[Any]]]:
    """One of each message that someone waits on."""
    subscribe = Subscribe(Subscriber(limit=8), b"\x00")
    read = Read()
    check = CheckAccess(None, None)
    admit = AddArcher("a9", ArcherRecord("0" * 64, "Sam", 1))
    write: Reply[WriteResult] = Reply()
    submit = Submit(register("a1", (9,), ms=now_ms()), reply=write)
    messages: list[Message] = [subscribe, read, check, admit, submit]
    return messages, [subscribe.done, read.reply, check.reply, admit.reply, write]


async def test_messages_buffered_behind_a_crash_are_answered_and_the_inbox_closes(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor, send, store = _actor(redis_url)

    def buggy(self: ShootActor, archer_id: str | None, token: str | None) -> Access:
        raise RuntimeError("a bug in one message")

    monkeypatch.setattr(ShootActor, "_access", buggy)
    crashing = CheckAccess("a1", "token")
    messages, replies = _waiters()
    for message in [crashing, *messages]:
        send.send_nowait(message)
    with trio.fail_after(10):
        with pytest.raises(ExceptionGroup) as crashed:
            await actor.run()
        assert crashed.group_contains(RuntimeError, match="a bug in one message")
        for reply in [crashing.reply, *replies]:
            with pytest.raises(ShootUnavailable):
                await reply.wait()
    with pytest.raises(trio.BrokenResourceError):
        send.send_nowait(Read())
    store.close()


async def test_messages_buffered_when_the_shoot_expires_are_answered(redis_url: str) -> None:
    actor, send, store = _actor(redis_url, clock_ahead_ms=2 * 3_600_000)
    messages, replies = _waiters()
    for message in messages:
        send.send_nowait(message)
    with trio.fail_after(10):
        await actor.run()
        for reply in replies:
            with pytest.raises(ShootUnavailable):
                await reply.wait()
    store.close()


async def test_a_closed_inbox_is_drained_and_flushed_before_the_actor_returns(
    redis_url: str,
) -> None:
    """Shutdown: what is already buffered is handled, not dropped, and reaches Redis."""
    actor, send, store = _actor(redis_url)
    messages, replies = _waiters()
    for message in messages:
        send.send_nowait(message)
    send.close()
    with trio.fail_after(10):
        await actor.run()
        assert await replies[0].wait() is None  # subscribed (a refusal would raise)
        assert (await replies[1].wait()).shoot == actor.shoot  # read
        assert await replies[2].wait() == "granted"  # access
        assert await replies[3].wait() is None  # admitted
        result = await replies[4].wait()  # the write, acknowledged once durable
        assert isinstance(result.outcome, Applied)
    stored = store.load_shoot(actor.shoot.code)
    assert stored is not None
    updates = ([stored.snapshot] if stored.snapshot else []) + [u for _, u in stored.log]
    assert ShootDocument.load(updates).register("a1") == result.outcome.register
    store.close()


async def test_a_cancelled_actor_still_flushes_what_it_applied(redis_url: str) -> None:
    actor, send, store = _actor(redis_url)
    write: Reply[WriteResult] = Reply()
    applied = register("a1", (9, 7), ms=now_ms())
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actor.run)
            await send.send(Submit(applied, reply=write))
            await send.send(read := Read())
            await read.reply.wait()  # the write was applied before this answer
            nursery.cancel_scope.cancel()
    stored = store.load_shoot(actor.shoot.code)
    assert stored is not None
    updates = ([stored.snapshot] if stored.snapshot else []) + [u for _, u in stored.log]
    assert ShootDocument.load(updates).register("a1") == applied
    store.close()


async def test_a_shoot_that_expires_while_redis_is_away_leaves_the_degraded_count(
    own_redis: RedisServer,
) -> None:
    metrics = Metrics()
    ahead = [0]
    store = RedisStore(own_redis.url)
    shoot = store.create_shoot(
        lambda code: Shoot(code, "id", "", "Sam", now_ms(), now_ms() + 3_600_000, "UTC")
    )
    stored = store.load_shoot(shoot.code)
    assert stored is not None
    send, receive = trio.open_memory_channel[Message](8)
    settings = Settings(shutdown_grace_s=0.2)
    actor = ShootActor(
        stored,
        store,
        receive,
        settings,
        metrics,
        owner=_owner(store, shoot),
        now_ms=lambda: now_ms() + ahead[0],
    )
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actor.run)
            await trio.to_thread.run_sync(own_redis.stop)
            await send.send(Submit(register("a1", (9,), ms=now_ms())))
            while metrics.redis_degraded_shoots != 1:
                await trio.sleep(0.01)
            ahead[0] = 2 * 3_600_000  # the shoot's day ends
            await send.send(Read())  # wakes the actor, which then notices
        assert metrics.redis_degraded_shoots == 0
    store.close()


async def test_a_write_still_waiting_for_redis_when_the_actor_stops_is_answered(
    own_redis: RedisServer,
) -> None:
    """The HTTP join waits for its write to be durable: if the actor stops first (Redis
    away past the grace period), the waiter is told, not left hanging."""
    actor, send, store = _actor(own_redis.url, shutdown_grace_s=0.2)
    write: Reply[WriteResult] = Reply()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actor.run)
            await trio.to_thread.run_sync(own_redis.stop)
            await send.send(Submit(register("a1", (9,), ms=now_ms()), reply=write))
            await send.send(read := Read())
            assert (await read.reply.wait()).registers["a1"].state.arrows == (9,)  # applied
            send.close()  # the relay shuts down
        with pytest.raises(ShootUnavailable):
            await write.wait()
    store.close()


def cold_tables(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Empty the projection tables (for the rest of the test) and spy on the calls that
    fill them. Returns where each call ran: ``True`` for the event loop's thread (the
    main thread, under pytest-trio), ``False`` for a worker thread."""
    for table in ("_SCORE_TABLES", "_ROOTS", "_FULL_SCORES", "_CLASS_TABLES"):
        monkeypatch.setattr(projection_tables, table, projection_tables._Table())
    monkeypatch.setattr(classification, "_PROJECTIONS", {})
    threads: list[bool] = []
    for name in ("_build_score_table", "_build_class_table", "handicap_root"):
        original = getattr(projection_tables, name)

        def spy(*args: Any, _original: Any = original) -> Any:
            threads.append(threading.current_thread() is threading.main_thread())
            return _original(*args)

        monkeypatch.setattr(projection_tables, name, spy)
    return threads


async def test_a_projection_miss_is_filled_off_the_event_loop_and_then_the_board_is_right(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With cold tables, a write that completes an end needs archeryutils: the actor must
    not call it itself (it runs on the event loop, here the main thread), and once the
    projector's worker thread is back the board, the stored derived values and what a
    subscriber's replica holds are what a from-scratch computation gives."""
    threads = cold_tables(monkeypatch)
    actor, send, store = _actor(redis_url)
    reader = Subscriber(limit=64)
    replica = ShootDocument()
    end = (9, 7, 7, 7, 7, 5)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actor.run)
            await _subscribe(send, reader)
            written = [register("a1", end * n, ms=now_ms() + n) for n in (1, 2)]
            for n, reg in enumerate(written, start=1):
                await send.send(Submit(reg, n, reader))
            read = Read()
            await send.send(read)
            await read.reply.wait()  # both writes handled
            await actor.projector.wait_idle()
            read = Read()
            await send.send(read)
            view = await read.reply.wait()

            expected = build_leaderboard([written[-1]])
            assert view.leaderboard == expected
            standing = view.leaderboard.standing("a1")
            assert standing is not None
            assert standing.handicap is not None
            assert actor.doc.derived("a1") == derived_values(written[-1].state)
            for frame in await reader.next_batch():
                message = decode_server(frame) if isinstance(frame, bytes) else frame
                if isinstance(message, Welcome | Update):
                    replica.apply_update(message.update)
            assert replica.derived("a1") == derived_values(written[-1].state)
            nursery.cancel_scope.cancel()
    store.close()
    assert threads  # archeryutils was needed...
    assert not any(threads)  # ...and never called on the event loop's thread


async def test_writes_queued_together_go_out_as_one_update_and_each_is_answered(
    redis_url: str,
) -> None:
    """Writes waiting in the inbox when the actor wakes are sent as one merged update per
    run (a subscribe ends a run), each still answered after the update that carries it,
    and every subscriber's replica ends equal to the actor's document."""
    actor, send, store = _actor(redis_url)
    reader = Subscriber(limit=64, role="archer", archer_id="a0")
    late = Subscriber(limit=64)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actor.run)
            await _subscribe(send, reader)
            # No checkpoint in between: all of it is queued before the actor runs again.
            for n in range(1, 11):
                send.send_nowait(Submit(register(f"a{n}", (9,) * n), n, reader))
                if n == 5:
                    send.send_nowait(Subscribe(late, b"\x00"))
            frames: dict[Subscriber, list[object]] = {reader: [], late: []}
            while sum(isinstance(m, Ack) for m in frames[reader]) < 10:
                for subscriber, got in frames.items():  # acks wait for Redis: poll
                    batch: list[bytes | Close] = []
                    with trio.move_on_after(0.05):
                        batch = await subscriber.next_batch()
                    got.extend(decode_server(f) if isinstance(f, bytes) else f for f in batch)
            nursery.cancel_scope.cancel()
    store.close()

    def replay(got: list[object]) -> tuple[ShootDocument, list[int]]:
        """The subscriber's replica, and where the updates that changed its registers
        are (others carry derived values filled off the event loop, sent on their own)."""
        replica, changes = ShootDocument(), []
        for index, message in enumerate(got):
            if isinstance(message, Welcome | Update):
                before = replica.registers()
                replica.apply_update(message.update)
                if isinstance(message, Update) and replica.registers() != before:
                    changes.append(index)
        return replica, changes

    replica, changes = replay(frames[reader])
    assert len(changes) == 2  # the five writes before the subscribe, and the five after
    assert replica.registers() == actor.doc.registers()
    acks = [(i, m.id) for i, m in enumerate(frames[reader]) if isinstance(m, Ack)]
    assert [id for _, id in acks] == list(range(1, 11))
    assert changes[-1] < acks[0][0]  # no write is answered before its update is out
    late_replica, late_changes = replay(frames[late])
    assert len(late_changes) == 1
    assert late_replica.registers() == actor.doc.registers()


async def test_a_write_goes_out_before_its_board_and_notices_are_worked_out(
    redis_url: str,
) -> None:
    """A write with nothing queued behind it is fanned out first; the leaderboard and the
    notices, which no subscriber waits for, come after."""
    actor, send, store = _actor(redis_url)
    reader = Subscriber(limit=64)
    queued_when_ranked: list[int] = []
    wrote = actor._standings.wrote

    def ranking(register: Any) -> Any:
        queued_when_ranked.append(reader.statistics().queued)
        return wrote(register)

    actor._standings.wrote = ranking  # type: ignore[method-assign]
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actor.run)
            await _subscribe(send, reader)
            assert reader.statistics().queued == 1  # the welcome
            write: Reply[WriteResult] = Reply()
            await send.send(Submit(register("a1", (9,), ms=now_ms()), reply=write))
            await write.wait()
            frames = await reader.next_batch()
            nursery.cancel_scope.cancel()
    store.close()
    assert queued_when_ranked == [2]  # the welcome and the write's update
    assert isinstance(frames[1], bytes)
    assert isinstance(decode_server(frames[1]), Update)
