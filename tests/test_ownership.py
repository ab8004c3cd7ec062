"""Ownership of a shoot across relays on one Redis: the lease, its epoch, and the fence.

Two relays on one Redis once each ran an actor for the same shoot and wrote their own Yjs
items into one log, so an archer's two ends merged into 18 arrows. These tests hold the
relays to one owner at a time: the fence in Redis refuses a deposed owner's writes, a
relay that is not the owner does not write, and a relay paused past its lease
(SIGSTOP, then SIGCONT) stops without acknowledging anything.
"""

from __future__ import annotations

import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import trio
import trio_websocket

from relay.config import Settings
from relay.lease import CLIENT_ID_BASE
from relay.redis_client import open_redis
from relay.redis_server import free_port
from relay.server import serve_relay
from relay.store import LeaseHeld, Owner, RedisStore, ShootFenced
from sync.document import ShootDocument
from sync.models import Shoot
from sync.protocol import Ack, Welcome
from tests.relays import durable, relay_process
from tests.wire import Peer, create_shoot, join, now_ms, peer, register, wait_healthy


def _shoot(code: str) -> Shoot:
    return Shoot(code, uuid.uuid4().hex, "", "Sam", now_ms(), now_ms() + 3_600_000, "UTC")


def _wait_lapsed(client: redis.Redis, shoot: Shoot) -> None:
    """Poll (with a deadline) until the shoot's lease has expired in Redis."""
    deadline = time.monotonic() + 5
    while client.exists(f"shoot:{{{shoot.code}}}:{shoot.shoot_id}:lease"):
        assert time.monotonic() < deadline, "the lease never expired"
        time.sleep(0.01)


def test_the_fence_refuses_a_deposed_owner_and_epochs_only_grow(redis_url: str) -> None:
    store = RedisStore(redis_url)
    client = open_redis(redis_url)
    try:
        shoot = store.create_shoot(_shoot)
        a = store.acquire_lease(shoot, "a", 100)
        assert a == Owner(1, "a")
        held = store.acquire_lease(shoot, "b", 100)
        assert isinstance(held, LeaseHeld)
        assert held.holder == "1:a"
        store.append(shoot, a, [b"by a"])

        # A's lease lapses while nobody takes it: its writes still pass (the epoch is
        # still its own), and renewing takes the lease back.
        _wait_lapsed(client, shoot)
        store.append(shoot, a, [b"by a, lapsed"])
        assert store.renew_lease(shoot, a, 100)
        _wait_lapsed(client, shoot)

        # B takes over: A is deposed for every write, and cannot take the lease back.
        b = store.acquire_lease(shoot, "b", 60_000)
        assert b == Owner(2, "b")
        for attempt in (
            lambda: store.append(shoot, a, [b"late by a"]),
            lambda: store.compact(shoot, a, b"snapshot by a", "0-1"),
        ):
            with pytest.raises(ShootFenced) as refused:
                attempt()
            assert refused.value.reason == "deposed"
        assert not store.renew_lease(shoot, a, 60_000)
        store.release_lease(shoot, a)  # not A's to release: B keeps it
        assert store.renew_lease(shoot, b, 60_000)
        # The relay renews all its leases in one pipeline: each answer is that lease's.
        other = store.create_shoot(_shoot)
        mine = store.acquire_lease(other, "b", 60_000)
        assert isinstance(mine, Owner)
        assert store.renew_leases([(shoot, a), (shoot, b), (other, mine)], 60_000) == [
            False,
            True,
            True,
        ]
        store.append(shoot, b, [b"by b"])

        # B gives the lease up; even then A's old epoch stays fenced.
        store.release_lease(shoot, b)
        with pytest.raises(ShootFenced):
            store.append(shoot, a, [b"later by a"])
        assert not store.renew_lease(shoot, a, 60_000)
        assert store.acquire_lease(shoot, "c", 60_000) == Owner(3, "c")
        # C's actor stopped without giving the lease up (Redis refused the release): C
        # takes its own leftover lease again at once, with an epoch that fences the old.
        assert store.acquire_lease(shoot, "c", 60_000) == Owner(4, "c")
        with pytest.raises(ShootFenced):
            store.append(shoot, Owner(3, "c"), [b"late by c's old actor"])
        assert isinstance(store.acquire_lease(shoot, "cc", 60_000), LeaseHeld)

        stored = store.load_shoot(shoot.code)
        assert stored is not None
        assert [update for _, update in stored.log] == [b"by a", b"by a, lapsed", b"by b"]
    finally:
        client.close()
        store.close()


async def _start(
    nursery: trio.Nursery, redis_url: str, **tuning: Any
) -> tuple[str, trio.CancelScope]:
    scope = trio.CancelScope()

    async def run(task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url, **tuning)
            await serve_relay(settings, task_status=task_status)

    url: str = await nursery.start(run)
    return url, scope


def _arrows_in_redis(redis_url: str, code: str, archer: str) -> tuple[Any, ...]:
    return durable(redis_url, code)[archer][1]


async def test_two_relays_on_one_redis_never_write_one_shoot_at_once(
    redis_url: str, nursery: trio.Nursery
) -> None:
    """The issue's reproduction: one end written through A (acked), then the whole state
    of two ends through B. Redis must hold 12 arrows, never A's and B's items merged."""
    with trio.fail_after(30):
        url_a, _ = await _start(nursery, redis_url, lease_s=1.0, idle_timeout_s=0.2)
        url_b, _ = await _start(nursery, redis_url, lease_s=1.0, idle_timeout_s=0.2)
        async with httpx.AsyncClient(base_url=url_b) as http:
            created = await create_shoot(http)
            code = created["code"]
            chris, token = await join(http, code, "Chris")
        lease = f"shoot:{{{code}}}:{created['shoot_id']}:lease"
        await _wait_released(redis_url, lease)  # B, which joined Chris, has unloaded it
        async with peer(url_a, code, archer=chris, token=token) as on_a:
            await on_a.expect(Welcome)
            await on_a.write(1, register(chris, (9,) * 6, device="a", ms=1_000))
            await on_a.expect(Ack)
            # B answers reads from what Redis holds, without waiting for A's lease.
            async with httpx.AsyncClient(base_url=url_b) as http:
                with trio.fail_after(0.9):  # under A's lease: B did not wait for it
                    body = (await http.get(f"/api/shoots/{code}")).json()
            assert body["archers"][chris]["arrows"] == [9] * 6
            # While A owns the shoot, B serves it as a follower: the whole state of two
            # ends written through B is forwarded to A, the one writer, and acked once
            # durable.
            async with peer(url_b, code, archer=chris, token=token) as on_b:
                await on_b.expect(Welcome)
                await on_b.write(2, register(chris, (9,) * 12, device="a", ms=2_000))
                ack = await on_b.expect(Ack)
                assert ack.id == 2
                assert _arrows_in_redis(redis_url, code, chris) == (9,) * 12
            # A's own session sees it too, from A's actor.
            while _arrows(on_a.doc, chris) != (9,) * 12:
                await on_a.receive()
        assert _arrows_in_redis(redis_url, code, chris) == (9,) * 12
        await _wait_released(redis_url, lease)  # A has unloaded it: B owns it next
        async with peer(url_b, code, archer=chris, token=token) as on_b:
            await on_b.expect(Welcome)
            await on_b.write(3, register(chris, (9,) * 18, device="a", ms=3_000))
            await on_b.expect(Ack)
        async with peer(url_a, code) as viewer:
            await viewer.expect(Welcome)
            state = viewer.doc.register(chris)
            assert state is not None
            assert state.state.arrows == (9,) * 18  # type: ignore[union-attr]
            # Each owner wrote as a client of its own, derived from its epoch.
            assert set(_clients(viewer.doc)) == {CLIENT_ID_BASE + e for e in (1, 2, 3)}


async def _wait_released(redis_url: str, lease: str) -> None:
    """Poll (with a deadline) until nobody holds the lease."""
    client = open_redis(redis_url)
    try:
        with trio.fail_after(10):
            while client.exists(lease):
                await trio.sleep(0.02)  # polling Redis, bounded by the deadline
    finally:
        client.close()


def _arrows(doc: ShootDocument, archer: str) -> tuple[Any, ...]:
    state = doc.register(archer)
    return () if state is None else tuple(state.state.arrows)  # type: ignore[union-attr]


def _clients(doc: ShootDocument) -> list[int]:
    return list(_decode_state_vector(doc.state_vector()))


def _decode_state_vector(sv: bytes) -> dict[int, int]:
    """Yjs state vector: varuint count, then (client, clock) varuint pairs."""
    pos = 0

    def varuint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = sv[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    return {varuint(): varuint() for _ in range(varuint())}


# -- two real processes: the owner is paused past its lease --------------------------


@dataclass
class _Ending:
    count: int
    close_code: int | None


async def _acks_until_closed(p: Peer) -> _Ending:
    """Read until the relay closes the connection; the acks seen on the way."""
    count = 0
    while True:
        try:
            message = await p.receive()
        except trio_websocket.ConnectionClosed as exc:
            return _Ending(count, None if exc.reason is None else exc.reason.code)
        count += isinstance(message, Ack)


async def test_an_owner_paused_past_its_lease_is_fenced_and_acknowledges_nothing(
    redis_url: str, tmp_path: Path
) -> None:
    port_a, port_b = free_port(), free_port()
    url_a, url_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    with (
        relay_process(tmp_path, "a", redis_url, port_a) as relay_a,
        relay_process(tmp_path, "b", redis_url, port_b),
        trio.fail_after(60),
    ):
        await wait_healthy(url_a)
        await wait_healthy(url_b)
        async with httpx.AsyncClient(base_url=url_a) as http:
            code = (await create_shoot(http))["code"]
            chris, chris_token = await join(http, code, "Chris")
            dana, dana_token = await join(http, code, "Dana")
        async with peer(url_a, code, archer=chris, token=chris_token) as on_a:
            await on_a.expect(Welcome)
            await on_a.write(1, register(chris, (9,) * 6, device="c", ms=1_000))
            await on_a.expect(Ack)

            relay_a.send_signal(signal.SIGSTOP)
            # Sent to the paused owner: it reaches A's socket, A cannot answer yet.
            await on_a.write(2, register(chris, (1,) * 12, device="c", ms=2_000))
            # B takes the shoot over once A's lease expires, and acknowledges Dana (her
            # device retries while B still answers "try again later").
            while True:
                try:
                    async with peer(url_b, code, archer=dana, token=dana_token) as on_b:
                        await on_b.expect(Welcome)
                        await on_b.write(1, register(dana, (7,) * 6, device="d", ms=3_000))
                        await on_b.expect(Ack)
                        break
                except trio_websocket.ConnectionClosed as exc:
                    assert exc.reason is not None
                    assert exc.reason.code == 1013
            relay_a.send_signal(signal.SIGCONT)

            # A finds it was deposed: it closes Chris's session, and never acks write 2.
            acked = await _acks_until_closed(on_a)
            assert acked.count == 0, "a deposed owner acknowledged a write"
            assert acked.close_code in (1001, 1013)

        # Redis has what was acknowledged, and nothing of the paused owner's write.
        assert _arrows_in_redis(redis_url, code, chris) == (9,) * 6
        assert _arrows_in_redis(redis_url, code, dana) == (7,) * 6
        # Chris's device reconnects (to B, the owner now) and resends; it is acked there.
        async with peer(url_b, code, archer=chris, token=chris_token) as again:
            await again.expect(Welcome)
            await again.write(2, register(chris, (1,) * 12, device="c", ms=2_000))
            await again.expect(Ack)
        assert _arrows_in_redis(redis_url, code, chris) == (1,) * 12
        assert _arrows_in_redis(redis_url, code, dana) == (7,) * 6
