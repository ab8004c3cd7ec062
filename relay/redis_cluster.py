"""A real local Redis Cluster of three masters: the test harness for cluster mode.

The relay keeps every key of a shoot on one hash slot (the code is the hash tag), so it
runs unchanged on a Redis Cluster; the only way to know is to run it on one. This starts
three ``redis-server --cluster-enabled yes`` processes on loopback ports, joins them with
``redis-cli --cluster create`` (every slot assigned, no replicas) and waits until every
node reports ``cluster_state:ok`` (about 2 s, most of it the cluster settling after the
slots are assigned).

Ports: a cluster node also listens on its port + 10000 (the cluster bus), and refuses a
port above 55535, so ports are picked below :data:`MAX_PORT` with the bus port free too.
Each start uses a fresh directory per node: ``nodes-<port>.conf`` remembers the cluster a
node belonged to, and a node that remembers an old cluster does not join a new one.

Blocking code, like :mod:`relay.redis_server`.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Final

import redis

from .redis_server import RedisServer, RedisServerError, find_redis_server, port_is_free

__all__ = ["CLUSTER_BUS_OFFSET", "LocalRedisCluster", "cluster_url"]

#: A node's cluster bus listens this far above its port.
CLUSTER_BUS_OFFSET: Final = 10_000
#: Highest port picked for a node (its bus port must stay a valid port, and below the
#: ephemeral range's top so a picked port is rarely taken by an outgoing connection).
MAX_PORT: Final = 45_000
MIN_PORT: Final = 20_000
#: How long the cluster may take to agree that every slot is served.
READY_TIMEOUT_S: Final = 30.0


def cluster_url(host: str, port: int) -> str:
    """The relay's URL for a Redis Cluster reached through one of its nodes."""
    return f"redis+cluster://{host}:{port}/0"


def _cluster_ports(count: int) -> list[int]:
    """``count`` ports below :data:`MAX_PORT` that are free, with their bus ports free."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(MIN_PORT, MAX_PORT)
        if port in ports or port + CLUSTER_BUS_OFFSET in ports:
            continue
        if port_is_free(port) and port_is_free(port + CLUSTER_BUS_OFFSET):
            ports.append(port)
    return ports


class LocalRedisCluster:
    """Three (or ``masters``) redis-server processes forming one cluster.

    Args:
        work_dir: Where the nodes' directories go; each start empties them.
        die_with_parent: As for :class:`~relay.redis_server.RedisServer`.
    """

    def __init__(self, work_dir: Path, *, masters: int = 3, die_with_parent: bool = False) -> None:
        self.work_dir = work_dir
        self.masters = masters
        self.die_with_parent = die_with_parent
        self.nodes: list[RedisServer] = []
        executable = find_redis_server()
        cli = Path(executable).with_name("redis-cli")
        self._cli = str(cli) if cli.exists() else shutil.which("redis-cli")

    @property
    def url(self) -> str:
        return cluster_url("127.0.0.1", self.nodes[0].port)

    def start(self) -> None:
        """Start the nodes, join them into one cluster, and wait until it serves.

        Raises:
            RedisServerError: a node did not start, or the cluster did not come up.
        """
        if self._cli is None:
            raise RedisServerError("redis-cli is needed to create a Redis Cluster")
        shutil.rmtree(self.work_dir, ignore_errors=True)
        try:
            for port in _cluster_ports(self.masters):
                node = RedisServer(
                    self.work_dir / f"node-{port}",
                    port=port,
                    die_with_parent=self.die_with_parent,
                    extra_args=("--cluster-enabled", "yes", "--cluster-node-timeout", "5000"),
                )
                node.start()
                self.nodes.append(node)
            self._create()
            self._wait_ok()
        except BaseException:
            self.close()
            raise

    def _create(self) -> None:
        assert self._cli is not None
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        command = [self._cli, "--cluster", "create", *addresses]
        command += ["--cluster-replicas", "0", "--cluster-yes"]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=READY_TIMEOUT_S, check=False
        )
        if result.returncode != 0:
            raise RedisServerError(f"redis-cli --cluster create failed: {result.stdout[-500:]}")

    def _wait_ok(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        pending = list(self.nodes)
        while pending:
            node = pending[0]
            client = redis.Redis(port=node.port, socket_timeout=1.0)
            try:
                info = client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
                state = str(info.get("cluster_state"))
            except redis.RedisError as exc:
                state = str(exc)
            finally:
                client.close()
            if state == "ok":
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise RedisServerError(f"the cluster did not reach cluster_state:ok: {state}")
            time.sleep(0.05)  # polling a cluster that is settling

    def flushall(self) -> None:
        """Empty every node (between tests)."""
        for node in self.nodes:
            client = redis.Redis(port=node.port, socket_timeout=5.0)
            try:
                client.flushall()
            finally:
                client.close()

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        self.nodes = []

    def __enter__(self) -> LocalRedisCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
