"""``fast-shoot serve --workers 2`` as an operator runs it: one port, two processes, one
embedded Redis, workers restarted, SIGTERM graceful for all, nothing left behind.

Each worker's ``/health`` names its process (``pid``), so a test can tell which worker
answered; every request goes on a fresh connection so the kernel picks a worker anew.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from relay import sibling_dir
from relay.config import ConfigError, Settings
from relay.redis_server import free_port
from relay.server import run, wait_exit
from relay.sibling_dir import FALLBACK_BASES, MAX_SOCKET_PATH_BYTES
from relay.startup import StartupError, check_port_free, listen_reuse_port
from relay.workers import settings_from_json, settings_to_json
from sync.protocol import Ack, Hello, Update, Welcome
from tests.wire import Peer, create_shoot, join, peer, register, wait_healthy


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def temp_dir() -> Iterator[Path]:
    """The supervisors' temp folder (``TMPDIR``), private to the test so none of their
    socket directories lands among other files; short, as a Unix socket's path is
    limited to 107 bytes."""
    directory = Path(tempfile.mkdtemp(prefix="fs-wk-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def _serve(
    tmp_path: Path, port: int, temp_dir: Path, workers: int = 2
) -> Iterator[subprocess.Popen[bytes]]:
    tmp_path.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "FAST_SHOOT_DATA_DIR": str(tmp_path / "data"),
        "SHOOT_LEASE_S": "1",
        "TMPDIR": str(temp_dir),
    }
    env.pop("REDIS_URL", None)
    env.pop("WEB_CONCURRENCY", None)
    with open(tmp_path / "relay.log", "ab") as log, open(tmp_path / "banner.txt", "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "clients.cli", "serve", "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=log,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _health(url: str) -> dict[str, Any]:
    """One ``/health`` on a new connection (so the kernel chooses the worker again)."""
    async with httpx.AsyncClient(base_url=url) as http:
        body: dict[str, Any] = (await http.get("/health")).json()
    return body


async def _workers(url: str, count: int) -> dict[int, dict[str, Any]]:
    """Ask ``/health`` until ``count`` different processes have answered."""
    seen: dict[int, dict[str, Any]] = {}
    while len(seen) < count:
        try:
            body = await _health(url)
        except httpx.TransportError:
            await trio.sleep(0.05)  # a worker is (re)starting; poll under the caller's deadline
            continue
        seen[body["pid"]] = body
    return seen


def _redis_pid(tmp_path: Path) -> int:
    return int((tmp_path / "data" / "redis" / "redis.pid").read_text().split()[0])


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


async def test_two_workers_serve_one_shoots_subscribers_from_both_processes(
    tmp_path: Path, temp_dir: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    viewers = 16
    with _serve(tmp_path, port, temp_dir), trio.fail_after(60):
        await wait_healthy(url)
        # Both workers listen before anyone connects: the kernel spreads connections only
        # over the sockets already listening (a worker still starting would get none).
        await _workers(url, 2)
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            archer, token = await join(http, code, "Chris")
        async with AsyncExitStack() as stack:
            writer = await stack.enter_async_context(peer(url, code, archer=archer, token=token))
            watching: list[Peer] = [
                await stack.enter_async_context(peer(url, code)) for _ in range(viewers)
            ]
            for p in [writer, *watching]:  # each is served, on whichever worker holds it
                await p.expect(Welcome)
            # Every connection is counted by the worker that holds it.
            spread = await _spread(url, 2, viewers + 1)
            counts = {pid: body["connections"] for pid, body in spread.items()}
            assert all(count > 0 for count in counts.values()), counts  # both hold some

            # A National end (imperial scores: a 10 would be refused with invalid_arrow).
            await writer.write(1, register(archer, (9, 9, 7, 7, 5, 5)))
            await writer.expect(Ack)
            for viewer in watching:  # the joined archer is in the welcome, with no arrows
                while viewer.doc.registers()[archer].state.arrows != (9, 9, 7, 7, 5, 5):
                    await viewer.expect(Update)


async def _spread(url: str, count: int, expected: int) -> dict[int, dict[str, Any]]:
    """Each worker's ``/health`` once the ``count`` workers hold ``expected`` connections."""
    while True:
        seen = await _workers(url, count)
        if sum(body["connections"] for body in seen.values()) == expected:
            return seen
        await trio.sleep(0.05)  # connections still arriving or closing; under the deadline


async def _all_on_one_worker(url: str, connections: int) -> dict[int, int]:
    """Each of the 2 workers' WebSocket count, once they hold ``connections``, checked:
    all on one worker (the shoot's owner), none followed."""
    spread = await _spread(url, 2, connections)
    counts = {pid: body["connections"] for pid, body in spread.items()}
    assert sorted(counts.values()) == [0, connections], counts
    assert all(body["followed_shoots"] == 0 for body in spread.values()), spread
    return counts


async def _routed_peers(
    stack: AsyncExitStack, url: str, code: str, archer: str, token: str, viewers: int
) -> tuple[Peer, list[Peer]]:
    """An archer and ``viewers`` viewers naming the shoot in their URL, each welcomed;
    a connection refused while a worker restarts is retried, as the SDK would."""
    peers: list[Peer] = []
    while len(peers) < viewers + 1:
        writer = not peers
        try:
            p = await stack.enter_async_context(
                peer(
                    url,
                    code,
                    archer=archer if writer else None,
                    token=token if writer else None,
                    by_code=True,
                )
            )
            await p.expect(Welcome)
        except (OSError, trio_websocket.HandshakeError, trio_websocket.ConnectionClosed):
            await trio.sleep(0.05)  # a worker is restarting; retried under the deadline
            continue
        peers.append(p)
    return peers[0], peers[1:]


async def test_a_shoots_websockets_are_served_by_the_worker_that_owns_it(
    tmp_path: Path, temp_dir: Path
) -> None:
    """Issue 13: with the code in the URL, every client of a shoot ends up on its owner
    (no follower anywhere), writes are acknowledged, and after the owner is killed the
    reconnecting clients all gather on one surviving worker again."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    viewers = 16
    with _serve(tmp_path, port, temp_dir), trio.fail_after(120):
        await wait_healthy(url)
        await _workers(url, 2)
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            archer, token = await join(http, code, "Chris")
        async with AsyncExitStack() as stack:
            writer, watching = await _routed_peers(stack, url, code, archer, token, viewers)
            counts = await _all_on_one_worker(url, viewers + 1)
            owner = next(pid for pid, count in counts.items() if count)

            await writer.write(1, register(archer, (9, 9, 7, 7, 5, 5)))
            await writer.expect(Ack)
            for viewer in watching:
                while viewer.doc.registers()[archer].state.arrows != (9, 9, 7, 7, 5, 5):
                    await viewer.expect(Update)
            # The hello is the authority: a URL naming another shoot is served all the same.
            ws_url = url.replace("http://", "ws://") + "/ws?code=9999"
            async with trio_websocket.open_websocket_url(ws_url) as ws:
                stray = Peer(ws)
                await stray.send(Hello(code, "viewer", b"\x00", None, None))
                await stray.expect(Welcome)
                assert stray.doc.registers()[archer].state.arrows == (9, 9, 7, 7, 5, 5)
            os.kill(owner, signal.SIGKILL)
        while owner in await _workers(url, 2) or len(await _workers(url, 2)) < 2:
            await trio.sleep(0.05)  # waiting for the restarted worker; under the deadline

        async with AsyncExitStack() as stack:  # the devices reconnect
            writer, watching = await _routed_peers(stack, url, code, archer, token, viewers)
            for p in [writer, *watching]:  # the acknowledged end survived the owner
                assert p.doc.registers()[archer].state.arrows == (9, 9, 7, 7, 5, 5)
            await writer.write(2, register(archer, (9, 9, 7, 7, 5, 5, 3)))
            await writer.expect(Ack)
            for viewer in watching:
                while viewer.doc.registers()[archer].state.arrows != (9, 9, 7, 7, 5, 5, 3):
                    await viewer.expect(Update)
            while True:  # the one that served them during the lease's expiry now owns it
                spread = await _spread(url, 2, viewers + 1)
                if all(body["followed_shoots"] == 0 for body in spread.values()):
                    break
                await trio.sleep(0.05)  # the takeover is at most a lease away
            counts = {pid: body["connections"] for pid, body in spread.items()}
            assert owner not in counts
            assert sorted(counts.values()) == [0, viewers + 1], counts


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


@pytest.fixture
def long_temp_dir(tmp_path: Path) -> Path:
    """A ``TMPDIR`` too long for the sockets of a family's directory (a pytest
    ``tmp_path`` alone nearly is)."""
    directory = tmp_path / ("long-temp-dir-" + "t" * 50)
    directory.mkdir()
    return directory


async def _passed_total(url: str) -> int:
    """``fastshoot_websockets_passed_total`` of whichever worker answered."""
    async with httpx.AsyncClient(base_url=url) as http:
        text = (await http.get("/metrics")).text
    (line,) = [ln for ln in text.splitlines() if ln.startswith("fastshoot_websockets_passed")]
    return int(line.split()[1])


def _moved_dir(log: Path, temp_dir: Path) -> Path:
    """The family's directory a supervisor says it made elsewhere than in ``temp_dir``."""
    found = re.search(
        rf"TMPDIR {re.escape(str(temp_dir))} is too long for the workers' Unix sockets "
        r"\(\d+ bytes, at most \d+\): their private directory is (\S+) instead\n",
        log.read_text(),
    )
    assert found is not None
    return Path(found.group(1))


async def test_workers_pass_websockets_to_each_other_whatever_the_temp_folders_length(
    tmp_path: Path, long_temp_dir: Path
) -> None:
    """Regression: with a ``TMPDIR`` so long that a socket in the family's directory
    exceeded the Unix socket path limit, every worker crashed binding its socket and was
    restarted forever. The directory now goes to a short private place, and each shoot's
    clients still gather on its owner: those the kernel gave to the other worker were
    passed to it. The next supervisor with that ``TMPDIR`` sweeps a killed one's there."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    viewers = 16
    first = tmp_path / "first"
    with _serve(first, port, long_temp_dir) as supervisor, trio.fail_after(120):
        await wait_healthy(url)
        await _workers(url, 2)
        family = _moved_dir(first / "relay.log", long_temp_dir)
        assert str(family.parent) in FALLBACK_BASES
        assert family.stat().st_mode & 0o777 == 0o700
        assert list(long_temp_dir.iterdir()) == []
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            archer, token = await join(http, code, "Chris")
        async with AsyncExitStack() as stack:
            writer, watching = await _routed_peers(stack, url, code, archer, token, viewers)
            workers = await _all_on_one_worker(url, viewers + 1)
            while await _passed_total(url) == 0:  # until the worker that passed answers
                await trio.sleep(0.05)  # each request picks a worker anew; under the deadline
            await writer.write(1, register(archer, (9, 9, 7, 7, 5, 5)))
            await writer.expect(Ack)
            for viewer in watching:
                while viewer.doc.registers()[archer].state.arrows != (9, 9, 7, 7, 5, 5):
                    await viewer.expect(Update)
        names = sorted(path.name for path in family.iterdir())
        assert names.count("family.lock") == 1
        assert sum(name.endswith(".sock") for name in names) == 2

        left = [*workers, _redis_pid(first)]
        supervisor.kill()  # its directory stays behind, until its family is gone
        await wait_exit(supervisor)
        while any(_alive(pid) for pid in left):
            await trio.sleep(0.05)  # the workers stop on SIGTERM; under the deadline
        assert family.is_dir()

        following = tmp_path / "next"
        with _serve(following, port, long_temp_dir) as supervisor:
            await wait_healthy(url)
            assert not family.exists()  # swept before its workers started
            again = _moved_dir(following / "relay.log", long_temp_dir)
            assert again.is_dir()
            supervisor.send_signal(signal.SIGTERM)
            assert await wait_exit(supervisor) == 0
        assert not again.exists()
    swept = "removed \\d+ socket directories of worker families that are gone: (.*)\n"
    found = re.search(swept, (following / "relay.log").read_text())
    assert found is not None
    assert family.name in found.group(1).split(", ")  # among others this user's, maybe
    for log in (first / "relay.log", following / "relay.log"):
        assert "Traceback" not in log.read_text()


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
