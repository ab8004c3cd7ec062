"""A ``fast-shoot serve --workers N`` family for the worker tests (``tests/test_workers.py``
and ``tests/test_workers_routing.py``): its supervisor started as an operator starts it,
its workers told apart by their ``/health``, and the temp folders it is given.

Import the fixtures into a test module (``from tests.worker_family import temp_dir``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio


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


@pytest.fixture
def long_temp_dir(tmp_path: Path) -> Path:
    """A ``TMPDIR`` too long for the sockets of a family's directory (a pytest
    ``tmp_path`` alone nearly is)."""
    directory = tmp_path / ("long-temp-dir-" + "t" * 50)
    directory.mkdir()
    return directory
