"""``fast-shoot serve --workers 2`` as an operator runs it: one port, two processes, one
embedded Redis, workers restarted, SIGTERM graceful for all, nothing left behind.

Each worker's ``/health`` names its process (``pid``), so a test can tell which worker
answered; every request goes on a fresh connection so the kernel picks a worker anew.

How a shoot's WebSockets are shared between the workers: ``tests/test_workers_routing.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from relay import sibling_dir
from relay.config import ConfigError, Settings
from relay.redis_server import free_port
from relay.server import run, wait_exit
from relay.sibling_dir import MAX_SOCKET_PATH_BYTES
from relay.startup import StartupError, check_port_free, listen_reuse_port
from relay.workers import settings_from_json, settings_to_json
from tests.wire import create_shoot, join, wait_healthy
from tests.worker_family import _alive, _redis_pid, _serve, _workers, long_temp_dir, temp_dir

__all__ = ["long_temp_dir", "temp_dir"]


async def test_two_workers_share_a_port_are_restarted_and_stop_together(
    tmp_path: Path, temp_dir: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _serve(tmp_path, port, temp_dir) as supervisor, trio.fail_after(90):
        await wait_healthy(url)
        first = await _workers(url, 2)  # both answer on the one port
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            archer, _ = await join(http, code, "Chris")
        redis_pid = _redis_pid(tmp_path)

        killed = next(iter(first))
        os.kill(killed, signal.SIGKILL)
        while True:  # the survivor serves meanwhile; the supervisor starts a new worker
            now = await _workers(url, 2)
            if killed not in now and len(set(now) - set(first)) == 1:
                break
            await trio.sleep(0.05)  # polling the restart under the deadline
        async with httpx.AsyncClient(base_url=url) as http:  # the data is Redis's: still there
            body = (await http.get(f"/api/shoots/{code}")).json()
        assert archer in body["archers"]
        assert _redis_pid(tmp_path) == redis_pid  # one Redis all along, shared

        supervisor.send_signal(signal.SIGTERM)
        assert await trio.to_thread.run_sync(supervisor.wait) == 0
        banner = (tmp_path / "banner.txt").read_text()  # once, by the supervisor
        assert banner.count("fast-shoot relay is running.") == 1
        assert f"Workers:        2 processes on port {port}" in banner
        log = (tmp_path / "relay.log").read_text()
        assert "exited with status -9; restarting it" in log
        assert log.count("every shoot flushed to Redis") == 2  # each worker stopped cleanly
        for pid in [*now, redis_pid]:
            assert not _alive(pid)
        assert list(temp_dir.iterdir()) == []  # its socket directory is removed


async def test_workers_and_redis_die_with_a_killed_supervisor(
    tmp_path: Path, temp_dir: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _serve(tmp_path, port, temp_dir) as supervisor, trio.fail_after(60):
        await wait_healthy(url)
        workers = await _workers(url, 2)
        redis_pid = _redis_pid(tmp_path)
        supervisor.kill()
        await trio.to_thread.run_sync(supervisor.wait)
        left = [*workers, redis_pid]
        while any(_alive(pid) for pid in left):
            await trio.sleep(0.05)  # the parent-death signal is on its way; under the deadline


def _socket_dirs(temp_dir: Path) -> set[Path]:
    return {path for path in temp_dir.iterdir() if path.name.startswith("fast-shoot-workers-")}


@asynccontextmanager
async def _family(
    tmp_path: Path, temp_dir: Path
) -> AsyncIterator[tuple[subprocess.Popen[bytes], Path, list[int]]]:
    """A supervisor of two workers, once both answer: it, its socket directory (the one
    that appeared in ``temp_dir``) and its processes (the workers and its Redis)."""
    before = _socket_dirs(temp_dir)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _serve(tmp_path, port, temp_dir) as supervisor:
        await wait_healthy(url)
        workers = await _workers(url, 2)
        (directory,) = _socket_dirs(temp_dir) - before  # made before any worker started
        yield supervisor, directory, [*workers, _redis_pid(tmp_path)]


async def test_a_killed_supervisors_socket_directory_is_swept_by_the_next_one(
    tmp_path: Path, temp_dir: Path
) -> None:
    """Regression: a supervisor killed with SIGKILL (or by the OOM killer) left its
    private directory of sockets in the temp folder, one per crash, forever. Its workers
    stop; the next supervisor to start removes the directory, and leaves a live one's."""
    with trio.fail_after(120):
        async with (
            _family(tmp_path / "killed", temp_dir) as (killed, killed_dir, killed_pids),
            _family(tmp_path / "live", temp_dir) as (_, live_dir, _),
        ):
            assert (killed_dir / "family.lock").is_file()
            killed.kill()
            await wait_exit(killed)
            while any(_alive(pid) for pid in killed_pids):
                await trio.sleep(0.05)  # the workers stop on SIGTERM; under the deadline
            assert killed_dir.is_dir()  # left behind: nobody ran the supervisor's finally
            live_files = sorted(path.name for path in live_dir.iterdir())
            assert live_files.count("family.lock") == 1
            assert sum(name.endswith(".sock") for name in live_files) == 2

            async with _family(tmp_path / "next", temp_dir) as (_, next_dir, _):
                assert not killed_dir.exists()  # swept before its workers started
                assert sorted(path.name for path in live_dir.iterdir()) == live_files
                assert _socket_dirs(temp_dir) == {live_dir, next_dir}
            log = (tmp_path / "next" / "relay.log").read_text()
            swept = "removed 1 socket directories of worker families that are gone"
            assert f"{swept}: {killed_dir.name}\n" in log
        assert _socket_dirs(temp_dir) == set()  # the others stopped and removed their own


def _spawn_worker(log_path: Path) -> subprocess.Popen[bytes]:
    """A worker as the supervisor starts one, less its parent-death signal."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "relay.workers", "0"], stdin=subprocess.PIPE, stderr=log
        )


async def test_a_worker_stops_gracefully_when_its_stdin_ends(
    tmp_path: Path, redis_url: str
) -> None:
    """A worker whose supervisor is gone must not keep serving as an orphan. The
    parent-death signal says so on Linux alone; the end of the worker's stdin (the
    supervisor holds the other end) says so everywhere. Spawned here without the signal,
    the worker stops on its stdin's end alone, as at SIGTERM."""
    port = free_port()
    settings = Settings(
        host="127.0.0.1",
        port=port,
        redis_url=redis_url,
        data_dir=tmp_path / "data",
        workers=1,
        reuse_port=True,
    )
    worker = _spawn_worker(tmp_path / "worker.log")
    assert worker.stdin is not None
    try:
        with trio.fail_after(60):
            worker.stdin.write(settings_to_json(settings).encode() + b"\n")
            worker.stdin.flush()
            await wait_healthy(f"http://127.0.0.1:{port}")
            worker.stdin.close()  # what the kernel does when the supervisor dies
            assert await wait_exit(worker) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    text = (tmp_path / "worker.log").read_text()
    assert "received SIGTERM: shutting down" in text
    assert "every shoot flushed to Redis" in text


def test_worker_settings_travel_whole() -> None:
    settings = Settings(
        host="127.0.0.1",
        port=8123,
        redis_url="redis://" + ":made-up" + "@127.0.0.1:1/0",  # a password travels too
        data_dir=Path("somewhere"),
        proxy_trusted_peers=("10.0.0.0/8",),
        push_services=("https://push.example.org",),
        workers=1,
        reuse_port=True,
    )
    assert settings_from_json(settings_to_json(settings)) == settings


def test_web_concurrency_and_a_required_redis_url() -> None:
    assert Settings.from_env({"WEB_CONCURRENCY": "3"}).workers == 3
    assert Settings.from_env({}).workers == 1
    with pytest.raises(ConfigError, match="WEB_CONCURRENCY"):
        Settings.from_env({"WEB_CONCURRENCY": "0"})
    with pytest.raises(ConfigError, match="REDIS_URL is required"):
        Settings.from_env({"FAST_SHOOT_EMBEDDED_REDIS": "0"})
    env = {"FAST_SHOOT_EMBEDDED_REDIS": "0", "REDIS_URL": "redis://redis:6379/0"}
    assert Settings.from_env(env).redis_url == "redis://redis:6379/0"


def test_workers_listen_side_by_side_where_a_plain_bind_is_refused() -> None:
    port = free_port()
    first = listen_reuse_port("127.0.0.1", port, 16)
    second = listen_reuse_port("127.0.0.1", port, 16)
    try:
        with pytest.raises(StartupError, match="already in use"):
            check_port_free("127.0.0.1", port)  # what a second plain relay would hit
        for sock in (first, second):
            assert sock.getsockname()[1] == port
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
    finally:
        first.close()
        second.close()


def test_no_place_for_the_workers_sockets_stops_the_start_in_one_line(
    tmp_path: Path, long_temp_dir: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a ``TMPDIR`` too long and no short temp folder to use instead, the
    supervisor refuses to start before anything is started, naming ``TMPDIR`` and the
    limit, rather than leaving its workers to crash and be restarted forever."""
    monkeypatch.setattr(tempfile, "tempdir", str(long_temp_dir))
    monkeypatch.setattr(sibling_dir, "FALLBACK_BASES", (str(tmp_path / "missing"),))
    settings = Settings(
        host="127.0.0.1", port=free_port(), redis_url=redis_url, data_dir=tmp_path, workers=2
    )
    with pytest.raises(StartupError) as caught:
        run(settings)
    message = str(caught.value)
    assert "\n" not in message
    assert f"TMPDIR {long_temp_dir} is too long for the workers' Unix sockets" in message
    assert f"the limit is {MAX_SOCKET_PATH_BYTES}" in message
    assert list(long_temp_dir.iterdir()) == []
