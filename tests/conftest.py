"""Shared fixtures: a real redis-server for the session, and one per chaos test.

``pytest --redis-cluster`` runs the Redis-facing tests (those that use the ``redis_url``
fixture, directly or through ``relay_url``) against a local 3-master Redis Cluster instead
(:mod:`relay.redis_cluster`), and deselects every other test: ``redis_url`` is then a
``redis+cluster://`` URL, which the relay and :func:`relay.redis_client.open_redis` reach
with redis-py's cluster client. Tests that stop, kill or restart a server of their own
(``own_redis``, ``redis_server``) have no cluster form and are deselected too.

Also hypothesis's ``ci`` profile, loaded when the ``CI`` environment variable is set
(``.ci/run`` sets it). Examples are derandomized: every CI run tries the same ones, so a
red run is never a matter of luck and rerunning it replays the failure; a failure also
prints a ``@reproduce_failure`` blob, to replay it anywhere. No example fails for being
slow: a deadline measures the machine, CI machines are loaded, and speed is the
benchmarks' business. Without ``CI``, hypothesis explores new examples on every run.
The ``mutants`` profile (``.ci/mutants.py`` sets ``HYPOTHESIS_PROFILE=mutants``) is the
CI one without shrinking: the check only asks whether a mutant fails, not how small.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, Phase, settings

from relay.redis_client import open_redis
from relay.redis_cluster import LocalRedisCluster
from relay.redis_server import RedisServer

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    print_blob=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "mutants",
    settings.get_profile("ci"),
    phases=[Phase.explicit, Phase.generate],
)
if os.environ.get("HYPOTHESIS_PROFILE") == "mutants":
    settings.load_profile("mutants")
elif os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--redis-cluster",
        action="store_true",
        help="run the Redis-facing tests against a local 3-master Redis Cluster (only them)",
    )


#: Fixtures that need one plain redis-server of their own (stopped, killed, restarted).
SINGLE_SERVER_FIXTURES = frozenset({"own_redis", "redis_server"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In cluster mode keep only the tests that reach Redis through ``redis_url``."""
    if not config.getoption("--redis-cluster"):
        return
    kept, dropped = [], []
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "redis_url" in names and not names & SINGLE_SERVER_FIXTURES:
            kept.append(item)
        else:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """A local Redis Cluster of three masters for the session (``--redis-cluster``)."""
    with LocalRedisCluster(tmp_path_factory.mktemp("cluster"), die_with_parent=True) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the whole test session, on a free loopback port; it dies
    with the test process, however that ends (spawned here, on the main thread)."""
    with RedisServer(tmp_path_factory.mktemp("redis"), die_with_parent=True) as server:
        yield server


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """The session's Redis (or Redis Cluster, with ``--redis-cluster``), emptied before
    the test."""
    if request.config.getoption("--redis-cluster"):
        cluster: LocalRedisCluster = request.getfixturevalue("redis_cluster")
        cluster.flushall()
        return cluster.url
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    if not redis_server.running:  # a previous test may have stopped it
        redis_server.start()
    client = open_redis(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for this test alone, free to be stopped, killed and restarted."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
async def relay_url(redis_url: str, nursery: trio.Nursery) -> str:
    """A real relay on a free loopback port, using the session's Redis."""
    from relay.config import Settings
    from relay.server import serve_relay

    settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url)
    url: str = await nursery.start(serve_relay, settings)
    return url


@pytest.fixture(scope="session")
def web_dist() -> Path:
    """The built web client in ``relay/static/dist``, rebuilt first if a source changed.

    ``pip install -e .`` builds it; this catches edits made since (about a second when
    nothing changed, a few seconds to rebuild).
    """
    import importlib.util

    root = Path(__file__).parent.parent
    spec = importlib.util.spec_from_file_location("hatch_build", root / "hatch_build.py")
    assert spec is not None
    assert spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    hook.build_web_client(root)
    return root / "relay" / "static" / "dist"


@pytest.fixture(scope="session")
def web_tests_built(web_dist: Path) -> Path:
    """The web client's Node tests and tools (``clients/web/test``) bundled by esbuild into
    ``clients/web/.test-build`` (``web_dist`` has installed the npm packages)."""
    import subprocess

    from .web_tools import WEB, node_path

    subprocess.run([str(node_path()), "build.mjs", "--tests"], cwd=WEB, check=True)
    return WEB / ".test-build"
