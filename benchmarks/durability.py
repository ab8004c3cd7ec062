"""What ``appendfsync always`` costs: one store append, timed against each fsync policy.

The embedded Redis runs ``appendfsync always`` so that an ``ack`` survives a crash of
Redis or of the machine (README, "What an ack promises"). The price is an fsync per
append: per *batch*, since the persister sends every waiting update in one script call.
This times :meth:`relay.store.RedisStore.append` (the fenced Lua script, no thread hop)
for batches of 1, 10 and 50 updates of 40 bytes against two fresh redis-servers on the
same disk, one per policy.
"""

from __future__ import annotations

import statistics
import time
import uuid
from pathlib import Path
from typing import Any, Final

from relay.redis_server import RedisServer
from relay.store import Owner, RedisStore
from sync.models import Shoot

__all__ = ["BATCHES", "POLICIES", "measure_append_cost"]

POLICIES: Final = ("always", "everysec")
BATCHES: Final = (1, 10, 50)
ROUNDS: Final = 300


def _bench_shoot(code: str) -> Shoot:
    now = time.time_ns() // 1_000_000
    return Shoot(code, uuid.uuid4().hex, "", "Bench", now, now + 3_600_000, "UTC")


def _median_us(store: RedisStore, shoot: Shoot, owner: Owner, batch: list[bytes]) -> float:
    store.append(shoot, owner, batch)  # loads the script and finds out the server's durability
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        store.append(shoot, owner, batch)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def measure_append_cost(work_dir: Path) -> dict[str, Any]:
    """Median µs per append, by policy and batch size (blocking; run it on a thread)."""
    results: dict[str, Any] = {"rounds": ROUNDS, "median_us": {}}
    for policy in POLICIES:
        with RedisServer(work_dir / f"fsync-{policy}", appendfsync=policy) as server:
            store = RedisStore(server.url)
            try:
                shoot = store.create_shoot(_bench_shoot)
                owner = store.acquire_lease(shoot, "bench", 3_600_000)
                assert isinstance(owner, Owner)
                results["median_us"][policy] = {
                    str(n): _median_us(store, shoot, owner, [b"u" * 40] * n) for n in BATCHES
                }
            finally:
                store.close()
    return results
