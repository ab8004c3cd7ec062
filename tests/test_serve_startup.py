"""`fast-shoot serve` as an operator meets it: what it prints, and how it refuses to start."""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from clients import ShootClient, connect, create_shoot, join_shoot
from relay import websocket
from relay.config import Settings
from relay.redis_server import RedisServer, free_port
from relay.server import serve_relay
from relay.startup import RedisDescription, listen_early, redact_redis_url, where_to_go
from sync.protocol import Welcome
from tests.sdk_fixtures import FAST
from tests.wire import create_shoot as create_shoot_raw
from tests.wire import peer, wait_healthy

ROOT = Path(__file__).resolve().parent.parent


def _serve(tmp_path: Path, **env: str) -> subprocess.Popen[bytes]:
    full = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOST": "127.0.0.1",
        "FAST_SHOOT_DATA_DIR": str(tmp_path / "data"),
        **env,
    }
    full.pop("REDIS_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "clients.cli", "serve"],
        cwd=ROOT,
        env=full,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _refused(child: subprocess.Popen[bytes]) -> str:
    _, err = child.communicate(timeout=60)
    assert child.returncode == 1, err
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, err.decode()
    assert lines[0].startswith("fast-shoot: ")
    return lines[0]


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("PORT", "abc", "PORT must be a port number from 0 to 65535, not 'abc'"),
        ("READ_TIMEOUT_S", "soon", "READ_TIMEOUT_S must be a number, not 'soon'"),
        ("PROXY_TRUSTED_PEERS", "lan", "PROXY_TRUSTED_PEERS must list IP networks"),
    ],
)
def test_a_setting_it_cannot_use_is_one_line(
    tmp_path: Path, variable: str, value: str, said: str
) -> None:
    assert said in _refused(_serve(tmp_path, **{variable: value}))


def test_a_busy_port_is_one_line_and_starts_no_redis(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = _refused(_serve(tmp_path, PORT=str(port)))
    assert f"Port {port} on 127.0.0.1 is already in use" in line
    assert not (tmp_path / "data").exists()  # checked before anything was started


def test_a_data_directory_in_use_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with open(data / "relay.lock", "ab") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what a running relay holds
        line = _refused(_serve(tmp_path, PORT=str(free_port())))
    assert "is in use by another relay" in line
    assert not (data / "redis").exists()


async def test_a_client_that_comes_while_the_relay_loads_waits_and_is_served(
    redis_url: str, nursery: trio.Nursery
) -> None:
    """The relay listens before it loads (``listen_early``): a client coming back to a
    restarting relay is queued by the kernel instead of refused, and answered once the
    relay runs."""
    settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url)
    listener = listen_early(settings)
    assert listener is not None
    port = listener.getsockname()[1]
    with trio.fail_after(30):
        stream = await trio.open_tcp_stream("127.0.0.1", port)  # no relay running yet
        await stream.send_all(b"GET /health HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
        url = await nursery.start(partial(serve_relay, settings, listener=listener))
        assert url == f"http://127.0.0.1:{port}"
        response = b""
        while chunk := await stream.receive_some(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200")


async def test_a_client_that_gave_up_while_queued_costs_no_handshake(
    redis_url: str, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that timed out in the kernel's queue and closed (to try again) is dropped
    when its connection comes out of the queue: no handshake, no session."""
    opened: list[object] = []
    original = websocket.open_socket

    def counted(*args: Any) -> Any:
        opened.append(args)
        return original(*args)

    monkeypatch.setattr(websocket, "open_socket", counted)
    settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url)
    listener = listen_early(settings)
    assert listener is not None
    port = listener.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port)) as gave_up:
        gave_up.sendall(
            b"GET /ws HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    with trio.fail_after(30):
        url = await nursery.start(partial(serve_relay, settings, listener=listener))
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot_raw(http))["code"]
        async with peer(url, code) as viewer:
            await viewer.expect(Welcome)
            await trio.testing.wait_all_tasks_blocked()  # the one that gave up is done
    assert len(opened) == 1  # the viewer's


def test_workers_listen_on_their_own_not_early() -> None:
    """With ``--workers`` the supervisor serves nothing and each worker listens with
    ``SO_REUSEPORT`` itself, so nothing listens before they load."""
    settings = Settings(host="127.0.0.1", port=0)
    assert listen_early(dataclasses.replace(settings, workers=2)) is None
    assert listen_early(dataclasses.replace(settings, reuse_port=True)) is None


async def test_serve_says_where_to_go_and_that_every_shoot_flushed(tmp_path: Path) -> None:
    port = free_port()
    child = _serve(tmp_path, PORT=str(port))
    try:
        with trio.fail_after(30):
            await wait_healthy(f"http://127.0.0.1:{port}")
    finally:
        child.terminate()
        out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err.decode()
    text = out.decode()
    assert f"This machine:   http://127.0.0.1:{port}" in text
    assert "Local network:  none: HOST is 127.0.0.1; set HOST=0.0.0.0" in text
    assert "PUBLIC_URL:     not set" in text
    assert "Redis:          embedded redis-server" in text
    assert f"Data directory: {(tmp_path / 'data').resolve()}" in text
    assert "every shoot flushed to Redis" in err.decode()


def test_banner_names_the_lan_url_public_url_and_hides_redis_credentials() -> None:
    settings = Settings(host="0.0.0.0", public_url="https://shoot.example")
    credentials = "user:s3cret"  # made up: the banner must never print it
    redis = RedisDescription(
        redact_redis_url(f"redis://{credentials}@redis.internal:6380/2?password=x")
    )
    lines = "\n".join(where_to_go(settings, "http://127.0.0.1:8080", redis))
    assert "s3cret" not in lines
    assert "password" not in lines
    assert "Redis:          redis://redis.internal:6380/2 (REDIS_URL)" in lines
    assert "PUBLIC_URL:     https://shoot.example" in lines
    assert "Local network:  " in lines
    assert "Data directory: not used" in lines


async def test_an_unreachable_redis_url_is_a_warning_and_health_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    credentials = ":secret"  # made up; nothing listens there
    nowhere = f"redis://{credentials}@127.0.0.1:{free_port()}/0"
    settings = Settings(host="127.0.0.1", port=0, redis_url=nowhere, shutdown_grace_s=0.5)
    announced: list[str] = []
    caplog.set_level(logging.WARNING, logger="relay")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(
                lambda task_status: serve_relay(
                    settings, announce=announced.extend, task_status=task_status
                )
            )
            async with httpx.AsyncClient(base_url=url) as http:
                health = await http.get("/health")
            nursery.cancel_scope.cancel()
    assert health.status_code == 503
    assert health.json()["redis"] is False
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("is unreachable" in w and "Check REDIS_URL" in w for w in warnings), warnings
    assert not any("secret" in w for w in warnings)
    redis_line = next(line for line in announced if "Redis:" in line)
    assert "UNREACHABLE" in redis_line
    assert "secret" not in redis_line


async def test_flushed_is_logged_only_when_redis_has_everything(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis dies under a live shoot: stopping says what did not reach it, never "flushed"."""
    settings = Settings(host="127.0.0.1", port=0, redis_url=own_redis.url, shutdown_grace_s=0.5)
    shutdown = trio.Event()
    caplog.set_level(logging.INFO, logger="relay")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(
                lambda task_status: serve_relay(
                    settings, shutdown=shutdown, task_status=task_status
                )
            )
            shoot = await create_shoot(url, creator="Sam")
            me = await join_shoot(url, shoot.code, name="Chris", round="national")
            async with (
                connect(url, shoot.code, identity=me, options=FAST) as client,
                connect(url, shoot.code, options=FAST) as viewer,
            ):
                await client.score_end([9, 9, 9, 9, 9, 9])
                await client.wait_synced()
                await trio.to_thread.run_sync(own_redis.kill)
                await client.score_end([7, 7, 7, 7, 7, 7])

                def relay_has_it(c: ShootClient) -> bool:
                    standing = c.leaderboard.standing(me.archer_id)
                    return standing is not None and standing.total == 96

                # Applied and fanned out by the relay from memory; Redis never got it.
                await viewer.wait_until(relay_has_it)
            shutdown.set()
    messages = [r.getMessage() for r in caplog.records]
    assert not any("every shoot flushed" in m for m in messages), messages
    assert any("1 of 1 shoots could not flush" in m for m in messages), messages


async def test_what_redis_promises_is_asked_and_logged_once_at_start(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Known before the first write: the first appends of several shoots neither ask it
    each (a thread hop and three round trips apiece) nor log it each."""
    settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url)
    caplog.set_level(logging.INFO, logger="relay")
    shutdown = trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(
                lambda task_status: serve_relay(
                    settings, shutdown=shutdown, task_status=task_status
                )
            )

            def promises() -> list[str]:
                said = [r.getMessage() for r in caplog.records if r.name == "relay.store"]
                return [m for m in said if m.startswith("Redis ")]

            assert len(promises()) == 1, "said when the relay started, before any shoot"
            for creator in ("Sam", "Alex", "Jo"):
                shoot = await create_shoot(url, creator=creator)
                me = await join_shoot(url, shoot.code, name=creator, round="national")
                async with connect(url, shoot.code, identity=me, options=FAST) as client:
                    await client.score_end([9, 9, 9, 9, 9, 9])
                    await client.wait_synced()
            shutdown.set()
    assert len(promises()) == 1, promises()
