"""``fast-shoot serve --workers N``: N relay processes on one port, one supervisor.

One relay process uses one core. The supervisor (this module, in the process the operator
started) runs N worker processes, each a whole relay (:func:`relay.server.run`) listening
on the same port with ``SO_REUSEPORT``, so the kernel spreads new connections over them.
The workers share nothing but Redis, and coordinate exactly as relays on separate machines
do: each live shoot is owned by one of them through its lease (:mod:`relay.lease`).

What the supervisor does:

- **Redis.** With ``REDIS_URL`` unset it starts the one embedded redis-server all workers
  use (it holds the data directory), keeps it running (restarted if it dies) and stops it
  last, after every worker has flushed. It dies with the supervisor, ``kill -9`` included.
- **Workers.** A supervisor that dies, ``kill -9`` included, takes its workers with it:
  they get SIGTERM and stop gracefully. On Linux each is spawned on the main thread with a
  parent-death signal; everywhere, a worker also watches its stdin, which the supervisor
  holds open while the worker runs, and takes its end (EOF: the kernel closed the
  supervisor's descriptors) as that SIGTERM, so no worker is left serving as an orphan.
  A worker that exits while the supervisor runs is logged as an error and started again,
  after a growing pause if it keeps dying at once.
- **Affinity.** It creates a private directory where each worker listens on a Unix
  socket, so a worker that accepted a shoot's WebSocket passes it to the sibling owning
  that shoot (:mod:`relay.siblings`): each shoot is then served by one process, not
  handled twice by an owner and a follower. The directory is in the temp folder, or in
  ``/tmp`` if ``TMPDIR`` is too long for a socket's path; it removes it when all have stopped;
  one left behind by a supervisor that was killed is swept when the next one starts, once
  that family's last process is gone (:mod:`relay.sibling_dir`).
- **Stopping.** SIGTERM or SIGINT: every worker gets SIGTERM at once and stops as a single
  relay does (sessions closed with 1001, shoots flushed, leases given up); one that is not
  gone within its budget is killed. Then the embedded Redis stops.

A worker's settings travel on its stdin as one line of JSON (never in its command line, where
``ps`` would show a password in ``REDIS_URL``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import httpx
import trio

from .config import Settings
from .redis_server import RedisServer, free_port, pdeathsig_preexec
from .server import open_embedded, shutdown_budget_s, wait_exit, watching
from .sibling_dir import prepare_sibling_dir
from .startup import RedisDescription, redact_redis_url, where_to_go

__all__ = ["settings_from_json", "settings_to_json", "supervise_workers", "worker_main"]

log = logging.getLogger("relay.workers")

#: Pauses between restarts of a worker that keeps dying soon after it started.
RESTART_MIN_S: Final = 0.5
RESTART_MAX_S: Final = 10.0
#: A worker that ran this long before dying is restarted at once.
STABLE_S: Final = 10.0
#: Added to the relay's own shutdown budget before a worker that will not stop is killed.
STOP_MARGIN_S: Final = 3.0
#: How long the supervisor waits for the first worker to answer /health before it says
#: where the relay is (the workers keep starting after that; it only delays the banner).
READY_TIMEOUT_S: Final = 60.0


def settings_to_json(settings: Settings) -> str:
    body = dataclasses.asdict(settings)
    body["data_dir"] = str(settings.data_dir)
    return json.dumps(body)


def settings_from_json(text: str) -> Settings:
    body: dict[str, Any] = json.loads(text)
    body = {k: tuple(v) if isinstance(v, list) else v for k, v in body.items()}  # JSON arrays
    body["data_dir"] = Path(body["data_dir"])
    return Settings(**body)


def _local_url(settings: Settings, port: int) -> str:
    host = settings.host
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Supervisor:
    def __init__(self, settings: Settings, shutdown: trio.Event, family_lock_fd: int) -> None:
        self.settings = settings
        self.shutdown = shutdown
        self.family_lock_fd = family_lock_fd
        self.stop_after_s = shutdown_budget_s(settings) + STOP_MARGIN_S

    def spawn(self, index: int) -> subprocess.Popen[bytes]:
        """Start worker ``index``; on the main thread, so its parent-death signal holds
        for as long as this process lives (see :mod:`relay.redis_server`). It inherits the
        family's lock (:mod:`relay.sibling_dir`): its directory is not swept while it runs."""
        preexec = None
        if sys.platform.startswith("linux"):
            assert threading.current_thread() is threading.main_thread()
            preexec = pdeathsig_preexec()
        process = subprocess.Popen(
            [sys.executable, "-m", "relay.workers", str(index)],
            stdin=subprocess.PIPE,
            preexec_fn=preexec,
            pass_fds=(self.family_lock_fd,),
        )
        assert process.stdin is not None
        # Small enough for the pipe's buffer: this never blocks. Kept open until the
        # worker exits: its end is how the worker learns this process is gone.
        process.stdin.write(settings_to_json(self.settings).encode() + b"\n")
        process.stdin.flush()
        log.info("worker %d started (pid %d)", index, process.pid)
        return process

    async def keep(self, index: int) -> None:
        """Run worker ``index`` until shutdown, restarting it whenever it exits."""
        delay = RESTART_MIN_S
        while not self.shutdown.is_set():
            process = self.spawn(index)
            started = trio.current_time()
            assert process.stdin is not None
            with process.stdin:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._stop_on_shutdown, process)
                    status = await wait_exit(process)
                    nursery.cancel_scope.cancel()
            if self.shutdown.is_set():
                log.info("worker %d (pid %d) stopped with status %s", index, process.pid, status)
                return
            log.error(
                "worker %d (pid %d) exited with status %s; restarting it",
                index,
                process.pid,
                status,
            )
            if trio.current_time() - started >= STABLE_S:
                delay = RESTART_MIN_S
                continue
            with trio.move_on_after(delay):  # a pause between restarts, or shutdown
                await self.shutdown.wait()
            delay = min(delay * 2, RESTART_MAX_S)

    async def _stop_on_shutdown(self, process: subprocess.Popen[bytes]) -> None:
        await self.shutdown.wait()
        process.send_signal(signal.SIGTERM)
        await trio.sleep(self.stop_after_s)  # the stop's deadline, not synchronisation
        log.error(
            "worker pid %d did not stop in %.0f s; killing it", process.pid, self.stop_after_s
        )
        process.kill()


async def _wait_ready(url: str) -> bool:
    """Poll ``url``/health until a worker answers (any status: Redis may be down)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per poll
    with trio.move_on_after(READY_TIMEOUT_S):
        async with httpx.AsyncClient(base_url=url, timeout=2.0) as http:
            while True:
                try:
                    await http.get("/health")
                    return True
                except httpx.TransportError:
                    await trio.sleep(0.05)  # polling workers that are starting
    return False


async def supervise_workers(
    settings: Settings,
    *,
    shutdown: trio.Event,
    announce: Callable[[list[str]], None] | None = None,
) -> None:
    """Run ``settings.workers`` workers until ``shutdown`` is set, then stop them all.

    Raises:
        StartupError: the embedded redis-server did not start, or there is no place for
            the workers' sockets (a ``TMPDIR`` too long, and no short temp folder).
    """
    # Private (0700): the workers' sockets for passing connections (relay.siblings).
    # First, as a check: a start that cannot succeed leaves nothing started.
    sibling_dir = await trio.to_thread.run_sync(prepare_sibling_dir)
    embedded: RedisServer | None = None
    try:
        redis_url = settings.redis_url
        if redis_url is None:
            embedded = await open_embedded(settings)
            redis_url = embedded.url
        port = settings.port or free_port()
        worker_settings = dataclasses.replace(
            settings,
            redis_url=redis_url,
            port=port,
            workers=1,
            reuse_port=True,
            sibling_dir=sibling_dir.path,
        )
        supervisor = _Supervisor(worker_settings, shutdown, sibling_dir.lock_fd)
        async with watching(embedded), trio.open_nursery() as nursery:
            for index in range(settings.workers):
                nursery.start_soon(supervisor.keep, index)
            url = _local_url(settings, port)
            if await _wait_ready(url) and announce is not None:
                description = RedisDescription(
                    redact_redis_url(redis_url),
                    embedded_binary=None if embedded is None else embedded.executable,
                    embedded_version=None if embedded is None else embedded.version,
                )
                lines = where_to_go(settings, url, description)
                lines.insert(2, f"  Workers:        {settings.workers} processes on port {port}")
                announce(lines)
        log.info("every worker has stopped")
    finally:
        sibling_dir.remove()
        if embedded is not None:  # last: the workers flushed their shoots into it
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(embedded.close)


def _stop_when_supervisor_is_gone() -> None:
    """SIGTERM this worker (a graceful stop) when its stdin ends: the supervisor holds the
    pipe's other end while the worker runs, and the kernel closes it when the supervisor
    dies, however it dies. Portable where the parent-death signal is Linux's alone; a
    thread, as a blocking read of a pipe is what it takes to see its end everywhere."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(0, 4096):  # nothing more is sent; only its end matters
                pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def worker_main() -> None:
    """``python -m relay.workers INDEX``: one worker, its settings on stdin."""
    from .server import run
    from .startup import StartupError

    index = int(sys.argv[1])
    settings = settings_from_json(sys.stdin.readline())
    _stop_when_supervisor_is_gone()
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s worker-{index}[{os.getpid()}] %(name)s: %(message)s",
    )
    try:
        run(settings)
    except StartupError as exc:
        log.error("worker %d cannot start: %s", index, exc)
        sys.exit(1)
    finally:
        logging.shutdown()


if __name__ == "__main__":
    worker_main()
