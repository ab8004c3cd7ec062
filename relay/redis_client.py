"""One way to turn ``REDIS_URL`` into a redis-py client: a single server or a Redis Cluster.

A Redis Cluster is named by the scheme: ``redis+cluster://host:port/0`` (or
``rediss+cluster://`` with TLS) reaches the cluster through any one of its nodes, and the
client learns the others from it (``CLUSTER SLOTS``) and sends each command to the node
that holds its key's slot. Every other URL is one server, as redis-py reads it.

The relay needs nothing else to run on a cluster: every key of one shoot carries the
shoot's code as its hash tag (``shoot:{1234}:...``), so each Lua script and each
transaction touches one slot. Only the sweep for a free code reads keys of many slots,
through a non-transactional pipeline, which the cluster client splits by node.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import redis
from redis.cluster import RedisCluster

__all__ = ["CLUSTER_SCHEMES", "AnyRedis", "is_cluster_url", "open_redis"]

#: URL schemes that name a Redis Cluster, and the plain scheme each stands for.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

AnyRedis: TypeAlias = "redis.Redis | RedisCluster"


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://``)."""
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def open_redis(url: str, **options: Any) -> redis.Redis | RedisCluster:
    """A client for ``url``: :class:`redis.cluster.RedisCluster` for a cluster URL, else
    :class:`redis.Redis`; ``options`` go to either (time-outs, retries...)."""
    scheme, sep, rest = url.partition("://")
    plain = CLUSTER_SCHEMES.get(scheme.lower())
    if plain is None:
        return redis.Redis.from_url(url, **options)
    return RedisCluster.from_url(f"{plain}{sep}{rest}", **options)
