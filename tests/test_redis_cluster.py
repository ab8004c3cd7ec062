"""Cluster-safety of the relay's keys, and the local Redis Cluster harness itself.

On a Redis Cluster a script or a transaction may touch one hash slot only, and a key the
script does not declare fails only when it lives on another node; so every key the relay
writes must carry its shoot's code as the hash tag. The first test drives a shoot through
the real relay (create, join, scores, compaction, an ended shoot's final results) and then
reads every key Redis holds: whichever Redis ``redis_url`` is, a single server or the
3-master cluster of ``pytest --redis-cluster``.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
import trio
from redis.cluster import RedisCluster
from redis.crc import key_slot

from relay.config import Settings
from relay.push.keys import VAPID_KEY
from relay.redis_client import is_cluster_url, open_redis
from relay.redis_cluster import CLUSTER_BUS_OFFSET, LocalRedisCluster
from relay.server import serve_relay
from relay.store import CODES, NoCodeAvailable, RedisStore
from sync.models import Shoot
from sync.protocol import Ack
from tests.wire import create_shoot, join, now_ms, peer, register

TAGGED = re.compile(rb"^shoot:\{(\d{4})\}:")
#: Keys of no shoot: each alone in every command that touches it (so on any one slot).
GLOBAL_KEYS = frozenset({VAPID_KEY.encode()})


async def test_every_key_of_a_shoot_shares_its_hash_slot(
    redis_url: str, nursery: trio.Nursery
) -> None:
    settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url, compact_every=3)
    url = await nursery.start(serve_relay, settings)
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=url) as http:
            codes = [(await create_shoot(http))["code"] for _ in range(3)]
            for code in codes:
                archer, token = await join(http, code, "Chris")
                async with peer(url, code, archer=archer, token=token) as p:
                    for end in range(1, 6):  # past compact_every: a snapshot and a trim
                        await p.write(end, register(archer, (9,) * (6 * end)))
                        await p.expect(Ack)
    client = open_redis(redis_url)
    try:
        keys = list(client.scan_iter(count=1000))
    finally:
        client.close()
    by_code: dict[bytes, set[int]] = defaultdict(set)
    for key in keys:
        if key in GLOBAL_KEYS:
            continue
        match = TAGGED.match(key)
        assert match is not None, f"a key without its shoot's hash tag: {key!r}"
        by_code[match.group(1)].add(key_slot(key))
    assert {code.encode() for code in codes} <= set(by_code)
    assert all(len(slots) == 1 for slots in by_code.values())
    if is_cluster_url(redis_url):  # the shoots really are spread over the nodes
        cluster = open_redis(redis_url)
        assert isinstance(cluster, RedisCluster)
        assert len(cluster.get_primaries()) == 3
        cluster.close()


def test_a_cluster_url_opens_a_cluster_client() -> None:
    assert is_cluster_url("redis+cluster://127.0.0.1:7000/0")
    assert is_cluster_url("rediss+cluster://" + "user:pw" + "@example.com:7000/0")  # made up
    assert not is_cluster_url("redis://127.0.0.1:6379/0")
    client = open_redis("redis://127.0.0.1:1/0")
    assert not isinstance(client, RedisCluster)
    client.close()


@pytest.mark.slow
def test_local_cluster_spreads_slots_over_three_masters(tmp_path: Path) -> None:
    with LocalRedisCluster(tmp_path / "cluster") as cluster:
        nodes = list(cluster.nodes)
        ports = [node.port for node in nodes]
        assert all(port + CLUSTER_BUS_OFFSET <= 65535 for port in ports)
        client = open_redis(cluster.url)
        assert isinstance(client, RedisCluster)
        try:
            owners = {
                client.get_node_from_key(f"shoot:{{{code}}}:meta").port
                for code in range(1000, 1100)
            }
            assert owners == set(ports)  # a hundred codes land on all three nodes
            store = RedisStore(cluster.url)
            try:
                assert store.ping()
            finally:
                store.close()
        finally:
            client.close()
    assert not any(node.running for node in nodes)


def test_the_sweep_for_a_free_code_reads_every_slot(redis_url: str) -> None:
    """With all codes but one taken, random tries miss and the sweep (a pipeline of
    ``EXISTS`` over many slots, split by node on a cluster) finds the free one; with none
    left it says so."""
    client = open_redis(redis_url)
    store = RedisStore(redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for code in CODES:
            if code != 7777:
                pipe.set(f"shoot:{{{code}}}:meta", "{}")
        pipe.execute()
        shoot = store.create_shoot(_shoot)
        assert shoot.code == "7777"
        with pytest.raises(NoCodeAvailable):
            store.create_shoot(_shoot)
    finally:
        store.close()
        client.close()


def _shoot(code: str) -> Shoot:
    now = now_ms()
    return Shoot(code, uuid.uuid4().hex, "", "Sam", now, now + 3_600_000, "UTC")
