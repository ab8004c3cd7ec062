"""Several relays serving one shoot: followers, forwarded writes, failover.

The relays are real ``fast-shoot serve`` processes on one real Redis, talking over
loopback. One relay owns the shoot (its lease); the others follow it: they serve their
own clients from the shoot's log and forward their writes to the owner.
"""

from __future__ import annotations

import os
import random
import signal
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from clients import ConnectionState, ShootClient, join_shoot
from relay.config import Settings
from relay.follower import ShootFollower
from relay.messages import Message, Subscribe
from relay.metrics import Metrics
from relay.redis_client import open_redis
from relay.redis_server import free_port
from relay.store import RedisStore
from relay.subscriber import Close, Subscriber
from sync.clock import Stamp
from sync.codec import decode_server
from sync.document import ShootDocument
from sync.models import Shoot
from sync.protocol import Ack, Error, Notice, Superseded, Update, Welcome
from tests.relays import durable, relay_process, round_robin_proxy
from tests.test_chaos import Archer, count_acks
from tests.test_chaos import _client as chaos_client
from tests.wire import Peer, create_shoot, join, now_ms, peer, register, wait_healthy


def _arrows(p: Peer, archer: str) -> tuple[Any, ...]:
    state = p.doc.register(archer)
    return () if state is None else tuple(state.state.arrows)  # type: ignore[union-attr]


async def _until_arrows(p: Peer, archer: str, arrows: tuple[Any, ...]) -> None:
    while _arrows(p, archer) != arrows:
        await p.receive()


def _notices(p: Peer) -> list[str]:
    return [m.text for m in p.seen if isinstance(m, Notice)]


def _holder_pid(redis_url: str, shoot: dict[str, Any]) -> int | None:
    """The pid of the relay holding the shoot's lease (instance ids are host-pid-random),
    ``None`` while nobody holds it."""
    client = open_redis(redis_url)
    try:
        token = client.get(f"shoot:{{{shoot['code']}}}:{shoot['shoot_id']}:lease")
    finally:
        client.close()
    return None if token is None else int(token.decode().split(":", 1)[1].rsplit("-", 2)[1])


def _arrows_written(archer: Archer) -> int:
    """Arrows in the archer's newest write (acknowledged or not)."""
    assert archer.client is not None
    own = archer.client.register()
    return 0 if own is None else len(own.state.arrows)


def _owner_pid(redis_url: str, shoot: dict[str, Any]) -> int:
    pid = _holder_pid(redis_url, shoot)
    assert pid is not None, "nobody owns the shoot"
    return pid


async def test_three_relays_every_client_sees_every_update(redis_url: str, tmp_path: Path) -> None:
    """An archer on A (the owner), another on B and a viewer on C all see every update;
    a write through a follower is acknowledged only once Redis has it."""
    ports = [free_port() for _ in range(3)]
    url_a, url_b, url_c = (f"http://127.0.0.1:{port}" for port in ports)
    with ExitStack() as relays, trio.fail_after(120):
        for name, port in zip("abc", ports, strict=True):
            relays.enter_context(relay_process(tmp_path, name, redis_url, port))
        for url in (url_a, url_b, url_c):
            await wait_healthy(url)
        async with httpx.AsyncClient(base_url=url_a) as http:
            shoot = await create_shoot(http)
            code = shoot["code"]
            chris, chris_token = await join(http, code, "Chris")  # A owns the shoot now
        async with httpx.AsyncClient(base_url=url_b) as http:
            dana, dana_token = await join(http, code, "Dana")  # joined through a follower
        assert os.getpid() != _owner_pid(redis_url, shoot)
        async with (
            peer(url_a, code, archer=chris, token=chris_token) as on_a,
            peer(url_b, code, archer=dana, token=dana_token) as on_b,
            peer(url_c, code) as on_c,
        ):
            for p in (on_a, on_b, on_c):
                await p.expect(Welcome)
            await on_a.write(1, register(chris, (9,) * 6, device="c"))
            await on_a.expect(Ack)
            await on_b.write(1, register(dana, (7,) * 6, device="d", name="Dana"))
            ack = await on_b.expect(Ack)
            assert ack.id == 1
            # Acknowledged through the follower: already durable.
            assert durable(redis_url, code)[dana][1] == (7,) * 6
            for p in (on_a, on_b, on_c):
                await _until_arrows(p, chris, (9,) * 6)
                await _until_arrows(p, dana, (7,) * 6)
            # Refusals and superseded writes are answered through the follower exactly
            # as the owner answers its own sessions.
            bad = register(dana, (11,) * 6, device="d", name="Dana")
            await on_b.write(3, bad)
            refused = await on_b.expect(Error)
            await on_a.write(3, register(chris, (11,) * 6, device="c"))
            assert (refused.id, refused.code) == (3, (await on_a.expect(Error)).code)
            await on_b.write(4, register(dana, (7,) * 3, device="d", name="Dana", ms=1))
            superseded = await on_b.expect(Superseded)
            assert superseded.id == 4
            assert superseded.winner.state.arrows == (7,) * 6  # type: ignore[union-attr]
            # A second end from each, and the viewer on C follows along.
            await on_b.write(2, register(dana, (7,) * 12, device="d", name="Dana"))
            await on_a.write(2, register(chris, (9,) * 12, device="c"))
            for p in (on_a, on_b, on_c):
                await _until_arrows(p, chris, (9,) * 12)
                await _until_arrows(p, dana, (7,) * 12)
            assert not any(isinstance(m, Welcome) and m.reset for m in on_c.seen)
            # The owner's notices reach the followers' sessions too, through the log.
            for p in (on_a, on_b, on_c):
                while "Chris has taken the lead!" not in _notices(p):
                    await p.receive()
        async with httpx.AsyncClient(base_url=url_c) as http:
            body = (await http.get(f"/api/shoots/{code}")).json()
        assert body["archers"][dana]["arrows"] == [7] * 12
        assert body["archers"][chris]["arrows"] == [9] * 12


async def test_a_follower_that_missed_a_compaction_catches_up_without_reset(
    redis_url: str,
) -> None:
    """Compaction trims the log, and XREAD skips trimmed entries without a word: the
    follower finds the compaction's marker, reloads the snapshot, and sends its
    subscribers the difference (never a reset)."""
    store = RedisStore(redis_url)
    try:
        shoot = store.create_shoot(
            lambda code: Shoot(
                code, uuid.uuid4().hex, "", "Sam", now_ms(), now_ms() + 3_600_000, "UTC"
            )
        )
        owner = store.acquire_lease(shoot, "owner", 60_000)
        doc = ShootDocument(client_id=(1 << 31) + 1)
        first = doc.write(register("c", (9,), device="c", ms=1_000))[1]
        store.append(shoot, owner, [first])  # type: ignore[arg-type]
        stored = store.load_shoot(shoot.code)
        assert stored is not None
        send, receive = trio.open_memory_channel[Message](16)
        follower = ShootFollower(
            stored,
            store,
            receive,
            Settings(lease_s=60.0),
            Metrics(),
            instance="f",
            holder="1:owner",
        )
        viewer = Subscriber(64)
        await send.send(Subscribe(viewer, b"\x00"))
        # The owner writes three more updates and compacts them away before the follower
        # has read any of them.
        last = ""
        for n in (2, 3, 4):
            update = doc.write(register("c", (9,) * n, device="c", ms=1_000 * n))[1]
            last, _ = store.append(shoot, owner, [update])  # type: ignore[arg-type]
        store.compact(shoot, owner, doc.diff(), last)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follower.run)
            replica = ShootDocument()
            with trio.fail_after(10):
                while (state := replica.register("c")) is None or len(state.state.arrows) < 4:  # type: ignore[union-attr]
                    for frame in await viewer.next_batch():
                        assert not isinstance(frame, Close)
                        message = decode_server(frame)
                        assert not (isinstance(message, Welcome) and message.reset)
                        if isinstance(message, Welcome | Update):
                            replica.apply_update(message.update)
            nursery.cancel_scope.cancel()
    finally:
        store.close()


# -- kill -9 of the owner under twenty writing archers ---------------------------------

ARCHERS = 20


@pytest.mark.slow
async def test_killing_the_owner_loses_no_acknowledged_write(
    redis_url: str, tmp_path: Path
) -> None:
    """Twenty archers write through a round-robin proxy in front of three relays; the
    owner is killed with SIGKILL. Every acknowledged write is in Redis throughout, no
    register goes back, the sessions on the surviving relays go on through the failover,
    and once the dust settles every client has the same registers as Redis."""
    ports = [free_port() for _ in range(3)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    processes = {}
    with ExitStack() as relays, trio.fail_after(240):
        for name, port in zip("abc", ports, strict=True):
            processes[port] = relays.enter_context(relay_process(tmp_path, name, redis_url, port))
        for url in urls:
            await wait_healthy(url)
        async with httpx.AsyncClient(base_url=urls[0]) as http:
            shoot = await create_shoot(http)
        code = shoot["code"]
        archers = [
            Archer(await join_shoot(urls[n % 3], code, name=f"Archer {n}", round="york"))
            for n in range(ARCHERS)
        ]
        last_seen: dict[str, Stamp] = {}
        writing = trio.Event()
        stop_writing = trio.Event()

        def check() -> None:
            floor = {a.identity.archer_id: a.acked for a in archers}
            in_redis = durable(redis_url, code)
            for archer_id, acked in floor.items():
                stamp, arrows = in_redis.get(archer_id, (Stamp(0, 0, ""), ()))
                assert len(arrows) >= acked, f"{archer_id}: {acked} acked, Redis has {len(arrows)}"
                if archer_id in last_seen:
                    assert stamp >= last_seen[archer_id], f"{archer_id} went back in Redis"
                last_seen[archer_id] = stamp

        async def score(archer: Archer, rng: random.Random) -> None:
            assert archer.client is not None
            while True:
                await trio.sleep(rng.uniform(0.2, 0.6))  # an archer's pace
                if stop_writing.is_set():
                    return
                await archer.client.score_arrow(rng.choice([9, 7, 5, 3, 1, "M"]))
                writing.set()

        async def scoring(task_status: trio.TaskStatus[trio.Event]) -> None:
            """Every archer scores until told to stop; the event is set once each has made
            its last write (a write after the check for pending ones would be newer than
            what the test read from Redis)."""
            done = trio.Event()
            task_status.started(done)
            async with trio.open_nursery() as scorers:
                for n, archer in enumerate(archers):
                    scorers.start_soon(score, archer, random.Random(n))
            done.set()

        async def sampler() -> None:
            while True:
                await trio.to_thread.run_sync(check)
                await trio.sleep(0.2)  # the sampling pace

        async with trio.open_nursery() as nursery:
            routes: list[int] = []
            proxy_port = await nursery.start(round_robin_proxy, ports, routes)
            proxy = f"http://127.0.0.1:{proxy_port}"
            for n, archer in enumerate(archers):
                archer.client = await nursery.start(chaos_client, proxy, code, archer.identity, n)
                nursery.start_soon(count_acks, archer)
            # Each client had its welcome before the next one connected, so routes[n] is
            # the relay that serves archer n's session.
            assert len(routes) == ARCHERS, routes
            scored: trio.Event = await nursery.start(scoring)
            nursery.start_soon(sampler)
            await writing.wait()
            await trio.sleep(2)  # let the archers write through all three relays
            owner = _owner_pid(redis_url, shoot)
            victim_port, victim = next((n, p) for n, p in processes.items() if p.pid == owner)
            on_survivors = [
                a for a, route in zip(archers, routes, strict=True) if route != victim_port
            ]
            assert all(a.client is not None and a.client.connections == 1 for a in on_survivors)
            before = {a.identity.archer_id: a.acked for a in archers}
            victim.send_signal(signal.SIGKILL)
            # The archers go on writing through the survivors. The sessions the survivors
            # held must go on through the failover: once a survivor holds the lease, each
            # of those sessions gets a write it made after that acknowledged (only the new
            # owner can), while it is still the session it had before the kill. This is
            # judged right after the failover, not after the long wait below for every
            # client to settle: on a loaded machine the relays later drop some sessions
            # for a reason of their own (no pong in 15 s from this process, which hosts
            # twenty clients), which says nothing about the failover. (Counting sessions
            # at the end, a third kept flaked; closing the adopted sessions on takeover
            # still passed that count, and fails this check.)
            while _holder_pid(redis_url, shoot) in (None, victim.pid):
                await trio.sleep(0.05)  # polling the lease, under the test's deadline
            written = [_arrows_written(a) for a in on_survivors]
            for archer, arrows in zip(on_survivors, written, strict=True):
                while archer.acked <= arrows:  # a write made after the lease changed hands
                    await trio.sleep(0.05)  # polling, under the test's deadline
            kept = [a for a in on_survivors if a.client is not None and a.client.connections == 1]
            assert len(kept) == len(on_survivors) >= ARCHERS // 2, [
                a.client.connections for a in on_survivors if a.client
            ]
            assert all(a.client is not None and a.client.resets == 0 for a in kept)
            stop_writing.set()
            await scored.wait()

            def synced(c: ShootClient) -> bool:
                return c.state is ConnectionState.CONNECTED and not c.pending

            for archer in archers:
                assert archer.client is not None
                await archer.client.wait_until(synced)
            await trio.to_thread.run_sync(check)
            survivor = _owner_pid(redis_url, shoot)
            assert survivor != victim.pid
            assert survivor in {p.pid for p in processes.values()}
            in_redis = durable(redis_url, code)
            after = {a.identity.archer_id: a.acked for a in archers}
            assert sum(after.values()) > sum(before.values()), "nothing acked after the kill"
            # The sessions the victim held did end (so the routes above were right).
            on_victim = [a for a in archers if a not in on_survivors]
            assert on_victim
            assert all(a.client and a.client.connections > 1 for a in on_victim)
            # Every client converges on what Redis holds: its own writes and the others'.
            for archer in archers:
                assert archer.client is not None
                own = archer.client.register()
                assert own is not None
                assert in_redis[archer.identity.archer_id] == (own.stamp, tuple(own.state.arrows))
                # The ack's event may still wait in the client's queue for count_acks.
                with trio.move_on_after(10):
                    while archer.acked < len(own.state.arrows):
                        await trio.sleep(0.05)  # polling, with the deadline above
                assert archer.acked == len(own.state.arrows)
            for archer in archers:
                client = archer.client
                assert client is not None
                with trio.fail_after(30):
                    await client.wait_until(
                        lambda c: (
                            {
                                aid: (r.stamp, tuple(r.state.arrows))  # type: ignore[attr-defined]
                                for aid, r in c.registers.items()
                            }
                            == in_redis
                        )
                    )
            nursery.cancel_scope.cancel()


async def _serve_in_process(nursery: trio.Nursery, redis_url: str) -> tuple[str, trio.CancelScope]:
    scope = trio.CancelScope()

    async def run(task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        from relay.server import serve_relay

        with scope:
            settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url, lease_s=30.0)
            await serve_relay(settings, task_status=task_status)

    url: str = await nursery.start(run)
    return url, scope


@pytest.mark.parametrize("readers", ["one per instance", "one per shoot (as on a cluster)"])
async def test_a_stopping_owner_hands_its_shoot_to_a_follower_without_closing_its_sessions(
    redis_url: str, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch, readers: str
) -> None:
    """The owner stops (a deploy): it gives its lease up and says so in the log, and the
    follower takes the shoot over at once (the lease is 30 s: nobody waits for it to
    expire), keeping its sessions: they go on writing, acknowledged by it now."""
    monkeypatch.setattr(RedisStore, "cluster", readers != "one per instance")
    with trio.fail_after(20):
        url_a, stop_a = await _serve_in_process(nursery, redis_url)
        url_b, _ = await _serve_in_process(nursery, redis_url)
        async with httpx.AsyncClient(base_url=url_a) as http:
            code = (await create_shoot(http))["code"]
            chris, token = await join(http, code, "Chris")  # A owns the shoot
        async with peer(url_b, code, archer=chris, token=token) as on_b:
            await on_b.expect(Welcome)
            await on_b.write(1, register(chris, (9,) * 6, device="c"))
            await on_b.expect(Ack)
            stop_a.cancel()
            await on_b.write(2, register(chris, (9,) * 12, device="c"))
            ack = await on_b.expect(Ack)
            assert ack.id == 2
            assert durable(redis_url, code)[chris][1] == (9,) * 12
            async with httpx.AsyncClient(base_url=url_b) as http:
                while "fastshoot_takeovers_total 1" not in (await http.get("/metrics")).text:
                    await trio.sleep(0.05)  # polling B's metrics under the deadline above
            # B's own actor answers the same session now.
            await on_b.write(3, register(chris, (9,) * 18, device="c"))
            assert (await on_b.expect(Ack)).id == 3
            assert durable(redis_url, code)[chris][1] == (9,) * 18
        assert sum(isinstance(m, Welcome) for m in on_b.seen) == 1
