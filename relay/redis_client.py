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

from collections.abc import Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.exceptions import AskError, MovedError, NoScriptError

__all__ = ["CLUSTER_SCHEMES", "is_cluster_url", "node_url", "open_redis", "script_then_waitaof"]

#: URL schemes that name a Redis Cluster, and the plain scheme each stands for.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


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


def node_url(url: str, host: str, port: int) -> str:
    """``url`` (a cluster URL) aimed at one node, as a plain URL: its credentials, TLS and
    options kept."""
    scheme, _, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    userinfo = netloc.rpartition("@")[0]
    address = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    plain = CLUSTER_SCHEMES.get(scheme.lower(), scheme)
    return f"{plain}://{address}{slash}{tail}"


def script_then_waitaof(
    client: redis.Redis | RedisCluster,
    script: Script,
    keys: Sequence[str],
    args: Sequence[Any],
    timeout_ms: int,
) -> tuple[Any, Any]:
    """Run ``script``, then ``WAITAOF 1 0 timeout_ms``, on one connection.

    ``WAITAOF`` waits for the writes of the connection it is sent on: sent on another
    connection of the pool (another thread's append went between), or on a cluster to
    another node, it would answer at once without waiting for this append. So both go in
    one pipeline, on one connection to the node that holds ``keys[0]``'s slot.

    Returns:
        The script's answer and ``WAITAOF``'s, either of which may be the exception the
        server answered with (the caller decides: the script may have written).
    """
    target: redis.Redis = client  # type: ignore[assignment]
    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(keys[0])  # type: ignore[no-untyped-call]
        if node is None or node.redis_connection is None:
            raise redis.ConnectionError(f"no cluster node serves {keys[0]}")
        target = node.redis_connection
    for attempt in range(2):
        pipe = target.pipeline(transaction=False)
        pipe.evalsha(script.sha, len(keys), *keys, *args)
        pipe.execute_command("WAITAOF", 1, 0, timeout_ms)  # type: ignore[no-untyped-call]
        result, waited = pipe.execute(raise_on_error=False)
        if not isinstance(result, NoScriptError) or attempt:
            break
        # A restarted Redis lost its scripts; nothing was written. (A script queued the
        # redis-py way would cost a SCRIPT EXISTS round trip on every append instead.)
        target.script_load(script.script)
    if isinstance(result, MovedError | AskError) and isinstance(client, RedisCluster):
        client.nodes_manager.initialize()  # the slot moved: learn where, then retry
    return result, waited
