"""Chaos: 20 archers scoring while the relay and its Redis are killed (``kill -9``) at
random and come back. Nothing acknowledged is lost, and no register in Redis goes back.

The relay runs as ``fast-shoot serve`` in its own process with its embedded redis-server
(``appendfsync always``), as a user runs it: killing the relay takes its redis-server down
with it (the parent-death signal) and the next start picks up the data directory;
killing the redis-server alone is noticed by the relay, which restarts it. The archers
are SDK clients in this process, with the SDK's outbox and reconnects.

Checked all along: every write acknowledged before a sample of Redis was taken is in it,
and each archer's register in Redis only ever moves forward (its stamp never decreases).
Acknowledgements are counted from every ``ack`` (:class:`~clients.WriteAcked` reports a
write whose ack came after a newer write had replaced it in the outbox too), so the
check compares real numbers even when archers score faster than acks come back.
Checked at the end: once the killing stops, every archer's last write is acknowledged
and reaches Redis and the relay, exactly. Bounded: 25 s of chaos, loopback only, a
fixed random seed.

Load: the 20 clients share this one process, and each applies every update of the shoot
(20 archers' writes, to 20 replicas). On a loaded 2-core machine this process may get a
tenth of a core; the pace of the archers keeps what they ask of it within that, and the
liveness deadline is a bound against hanging, not a measure of speed. (Each update once
cost a client a full decoding of the document, 10-50 ms on such a machine: the clients
fell tens of seconds behind their connections, and acks waited unread in the sockets.)
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import httpx
import pytest
import trio

from clients import (
    ClientOptions,
    ConnectionState,
    Identity,
    ShootClient,
    connect,
    create_shoot,
    join_shoot,
)
from clients._events import WriteAcked
from relay.redis_server import free_port
from relay.store import RedisStore
from sync.clock import Stamp
from sync.document import ShootDocument

ARCHERS = 20
CHAOS_S = 25.0
#: From the end of the chaos until every archer's last write is acknowledged: seconds
#: normally; generous, because it is a bound, not a speed check.
SETTLE_S = 60.0
#: Starting the relay and joining 20 archers (each join an fsynced write) takes seconds
#: on a loaded 2-core machine: a bound against hanging, not a speed check.
SETUP_S = 90.0
#: One crash and recovery: a fresh relay process imports everything and loads the shoot;
#: under a load average of 20 that alone has taken 30 s. Again a bound, not a check.
RESTART_S = 90.0
#: Quick reconnects, but heartbeats that tolerate a relay slowed by a loaded machine (a
#: pong late by a second must not look like a dead connection).
OPTIONS = ClientOptions(
    ping_interval_s=2.0,
    pong_timeout_s=5.0,
    resend_after_s=2.0,
    connect_timeout_s=5.0,
    backoff_base_s=0.05,
    backoff_cap_s=0.5,
)
ROUND = "york"  # 144 arrows: room for a write every half second for the whole test
#: Seconds between an archer's writes: ~16 writes a second from 20 archers, each fanned out
#: to 20 replicas in this process.
PACE_S = (0.5, 2.0)
#: Seconds between two samples of Redis (each loads and decodes the whole shoot).
SAMPLE_EVERY_S = 0.5
#: Samples taken while Redis was up, at least. Redis is down while a killed relay restarts
#: (its embedded Redis died with it), which has taken 17 s here, twice in one run; the
#: pauses between crashes still leave it up for several seconds.
MIN_SAMPLES = 5
SEED = 8


#: ``fast-shoot serve`` that prints every thread's stack to its log on SIGUSR1, so a
#: failure shows where the relay was stuck.
DUMPABLE_RELAY = """
import faulthandler, signal, sys
faulthandler.register(signal.SIGUSR1, all_threads=True)
from clients.cli import main
sys.exit(main())
"""


@dataclass
class Archer:
    identity: Identity
    acked: int = 0
    """Arrows in the newest write the relay acknowledged (durable)."""
    acks: int = 0
    """Writes acknowledged so far."""
    client: ShootClient | None = None


@dataclass
class Chaos:
    tmp_path: Path
    port: int
    http: httpx.AsyncClient
    """For ``/health`` and the final read; one client for the whole test (making one
    builds an SSL context: milliseconds of this process's scarce CPU each time)."""
    process: subprocess.Popen[bytes] | None = None
    kills: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return url_of(self.port)

    @property
    def redis_dir(self) -> Path:
        return self.tmp_path / "data" / "redis"

    def log_tail(self) -> str:
        path = self.tmp_path / "relay.log"
        return path.read_text(errors="replace")[-12000:] if path.exists() else ""

    def _spawn_relay(self) -> None:
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "FAST_SHOOT_DATA_DIR": str(self.tmp_path / "data"),
        }
        env.pop("REDIS_URL", None)
        with open(self.tmp_path / "relay.log", "ab") as log:  # the child keeps its own
            self.process = subprocess.Popen(
                [sys.executable, "-c", DUMPABLE_RELAY, "serve"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    async def start_relay(self) -> None:
        self._spawn_relay()
        await self.healthy()

    async def healthy(self) -> None:
        """Wait until the relay answers and its Redis is up (deadline: the caller's)."""
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the relay exited: {self.log_tail()}")
            try:
                if (await self.http.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            await trio.sleep(0.05)  # polling pace

    async def kill_relay(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await trio.to_thread.run_sync(self.process.wait)
        self.kills.append(f"relay at {trio.current_time():.1f}")
        await self.start_relay()
        self.kills.append(f"relay back at {trio.current_time():.1f}")

    async def kill_redis(self) -> None:
        pid = int((self.redis_dir / "redis.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        self.kills.append(f"redis at {trio.current_time():.1f}")
        await self.healthy()  # the relay restarts it
        self.kills.append(f"redis back at {trio.current_time():.1f}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def url_of(port: int) -> str:
    return f"http://127.0.0.1:{port}"


async def count_acks(archer: Archer) -> None:
    """Keep ``archer.acked`` at the arrows of the newest write the relay acknowledged, and
    ``archer.acks`` at how many writes it acknowledged."""
    assert archer.client is not None
    while True:
        event = await archer.client.events.get()
        if isinstance(event, WriteAcked):
            archer.acks += 1
            archer.acked = max(archer.acked, len(event.register.state.arrows))


def _durable(redis_dir: Path, code: str) -> dict[str, tuple[Stamp, int]] | None:
    """Each archer's register as Redis has it: ``(stamp, arrows)``; ``None`` if Redis is
    down right now."""
    port = int((redis_dir / "redis-port").read_text())
    store = RedisStore(f"redis://127.0.0.1:{port}/0")
    try:
        stored = store.load_shoot(code)
    except Exception:  # Redis is being killed or restarted: no sample this time
        return None
    finally:
        store.close()
    assert stored is not None
    updates = ([stored.snapshot] if stored.snapshot else []) + [u for _, u in stored.log]
    registers = ShootDocument.load(updates).registers()
    return {aid: (r.stamp, len(r.state.arrows)) for aid, r in registers.items()}


@pytest.mark.slow
async def test_nothing_acknowledged_is_lost_when_relay_and_redis_are_killed(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with httpx.AsyncClient(base_url=url_of(port), timeout=2) as http:
        await _chaos(Chaos(tmp_path, port, http))


async def _chaos(chaos: Chaos) -> None:
    try:
        with trio.fail_after(SETUP_S):
            await chaos.start_relay()
            shoot = await create_shoot(chaos.url, creator="Sam")
            archers = [
                Archer(await join_shoot(chaos.url, shoot.code, name=f"Archer {n}", round=ROUND))
                for n in range(ARCHERS)
            ]
        await _run(chaos, shoot.code, archers)
    except BaseException:
        print(f"kills: {chaos.kills}\nrelay log:\n{chaos.log_tail()}")
        raise
    finally:
        chaos.stop()


async def _run(chaos: Chaos, code: str, archers: list[Archer]) -> None:
    samples = 0
    compared = 0  # archers with acknowledged writes, summed over the samples
    last_seen: dict[str, Stamp] = {}
    chaos_over = trio.Event()

    async def score(archer: Archer, rng: random.Random) -> None:
        assert archer.client is not None
        while True:
            await trio.sleep(rng.uniform(*PACE_S))  # an archer's pace, not synchronisation
            if chaos_over.is_set():
                return
            await archer.client.score_arrow(rng.choice([9, 7, 5, 3, 1, "M"]))

    async def scoring(task_status: trio.TaskStatus[trio.Event]) -> None:
        """Every archer scores until the chaos is over; the event is set once each has made
        its last write (one made after the wait for pending writes would be newer than
        what the final check reads from Redis)."""
        done = trio.Event()
        task_status.started(done)
        async with trio.open_nursery() as scorers:
            for n, archer in enumerate(archers):
                scorers.start_soon(score, archer, random.Random(SEED + n))
        done.set()

    async def sample() -> bool:
        """Compare Redis with what was acknowledged before looking; False if Redis is down."""
        nonlocal samples, compared
        floor = {a.identity.archer_id: a.acked for a in archers}
        durable = await trio.to_thread.run_sync(_durable, chaos.redis_dir, code)
        if durable is None:
            return False
        samples += 1
        compared += sum(1 for acked in floor.values() if acked)
        for archer_id, acked in floor.items():
            stamp, arrows = durable.get(archer_id, (Stamp(0, 0, ""), 0))
            assert arrows >= acked, f"{archer_id}: {acked} arrows acknowledged, Redis has {arrows}"
            if archer_id in last_seen:
                assert stamp >= last_seen[archer_id], f"{archer_id} went back in Redis"
            last_seen[archer_id] = stamp
        return True

    async def sampler() -> None:
        while not chaos_over.is_set():
            await sample()
            await trio.sleep(SAMPLE_EVERY_S)  # the sampling pace

    async def killer() -> None:
        rng = random.Random(SEED)
        # The first two crashes are one of each kind, the rest at random: on a loaded
        # machine a restart can take seconds, and the few crashes that fit in CHAOS_S
        # must still cover both.
        for kind in ("relay", "redis"):
            await trio.sleep(rng.uniform(1.0, 3.0))  # time between crashes
            with trio.fail_after(RESTART_S):
                await (chaos.kill_relay() if kind == "relay" else chaos.kill_redis())
        with trio.move_on_after(CHAOS_S):
            while True:
                await trio.sleep(rng.uniform(1.0, 3.0))  # time between crashes
                with trio.fail_after(RESTART_S):
                    if rng.random() < 0.4:
                        await chaos.kill_relay()
                    else:
                        await chaos.kill_redis()
        chaos_over.set()

    async with trio.open_nursery() as nursery:
        for n, archer in enumerate(archers):
            archer.client = await nursery.start(_client, chaos.url, code, archer.identity, n)
            nursery.start_soon(count_acks, archer)
        scored: trio.Event = await nursery.start(scoring)
        nursery.start_soon(sampler)
        await killer()
        assert any(k.startswith("relay at") for k in chaos.kills), chaos.kills
        assert any(k.startswith("redis at") for k in chaos.kills), chaos.kills
        # The safety check compared acknowledged writes, not only zeros.
        assert compared > 0, [a.acks for a in archers]
        chaos.kills.append(f"settling at {trio.current_time():.1f}")

        # The killing is over: every archer's last write gets through.
        def synced(c: ShootClient) -> bool:
            return c.state is ConnectionState.CONNECTED and not c.pending

        with trio.move_on_after(SETTLE_S) as settling:
            await scored.wait()
            for archer in archers:
                assert archer.client is not None
                await archer.client.wait_until(synced)
            while not await sample():
                await trio.sleep(0.1)
        if settling.cancelled_caught:
            await _report_stuck(chaos, code, archers, synced)
        chaos.kills.append(f"settled at {trio.current_time():.1f}")
        body = (await chaos.http.get(f"/api/shoots/{code}")).json()
        durable = await trio.to_thread.run_sync(_durable, chaos.redis_dir, code)
        assert durable is not None
        for archer in archers:
            assert archer.client is not None
            own = archer.client.register()
            assert own is not None
            archer_id = archer.identity.archer_id
            assert body["archers"][archer_id]["arrows"] == list(own.state.arrows)
            assert durable[archer_id] == (own.stamp, len(own.state.arrows))
            assert archer.acked == len(own.state.arrows)
        assert samples >= MIN_SAMPLES, samples
        print(f"{samples} samples; acks per archer: {[a.acks for a in archers]}; {chaos.kills}")
        nursery.cancel_scope.cancel()


async def _report_stuck(
    chaos: Chaos, code: str, archers: list[Archer], synced: Callable[[ShootClient], bool]
) -> NoReturn:
    """Fail with what each archer that is not synced has pending, acknowledged and in
    Redis, and the relay's metrics; the relay's threads go to its log (printed too)."""
    now_durable = await trio.to_thread.run_sync(_durable, chaos.redis_dir, code) or {}
    stuck = [
        f"{a.identity.archer_id}: {a.client.state.value}, pending "
        f"{[len(r.state.arrows) for r in a.client.pending]} arrows, {a.acked} acked, "
        f"{now_durable.get(a.identity.archer_id, (None, None))[1]} in Redis, "
        f"{a.client.connections} sessions, last error {a.client.error!r}"
        for a in archers
        if a.client is not None and not synced(a.client)
    ]
    try:
        metrics = (await chaos.http.get("/metrics")).text
    except httpx.TransportError as exc:
        metrics = f"(not reachable: {exc!r})"
    assert chaos.process is not None
    chaos.process.send_signal(signal.SIGUSR1)  # the relay's threads, into its log
    with trio.move_on_after(5):
        while "most recent call first" not in chaos.log_tail():
            await trio.sleep(0.05)  # polling the log for the dump
    raise AssertionError(
        f"{len(stuck)} archers not synced {SETTLE_S} s after the chaos: {stuck}\n"
        f"relay metrics:\n{metrics}"
    )


async def _client(
    url: str,
    code: str,
    identity: Identity,
    seed: int,
    task_status: trio.TaskStatus[ShootClient] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with connect(url, code, identity=identity, options=OPTIONS, rng=random.Random(seed)) as c:
        await c.wait_connected()
        task_status.started(c)
        await trio.sleep_forever()
