"""Running the relay: the embedded Redis, the registry, the door, and graceful shutdown.

``serve_relay`` follows trio's ``serve_*`` convention: it runs until cancelled or until
``shutdown`` is set, and reports its URL through ``task_status.started``, so tests start
a real relay with ``url = await nursery.start(serve_relay, settings)``.

Shutdown order: stop accepting connections, and close every open session with 1001
(going away; clients reconnect elsewhere or later) in one pass that waits for none of
them (the relay owns their sockets, so each close frame is one non-blocking write, and
a session whose close went out is cancelled there and then), and wait until the sessions
have ended; then give HTTP connections still open up to :data:`~relay.door.HTTP_GRACE_S`
(none open: no wait); then the registry's actors flush what they hold to
Redis; then the embedded Redis (if any) stops.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final

import trio

from sync.protocol import CLOSE_GOING_AWAY
from sync.rounds import all_rounds

from .actor import ShootActor
from .asgi import build_app
from .collector import Collector
from .config import Settings
from .context import RelayContext
from .door import HTTP_GRACE_S, Door
from .follower import ShootFollower
from .hypercorn_patch import patch_hypercorn
from .metrics import Metrics
from .push.service import open_push
from .redis_server import RedisServer, RedisServerError
from .registry import open_registry
from .startup import (
    LISTEN_BACKLOG,
    RedisDescription,
    StartupError,
    check_port_free,
    listen_early,
    lock_data_dir,
    redact_redis_url,
    where_to_go,
)
from .store import RedisStore, StoreUnavailable

__all__ = [
    "open_embedded",
    "run",
    "serve_relay",
    "shutdown_budget_s",
    "supervise_embedded",
    "wait_exit",
    "watching",
]

log = logging.getLogger("relay")

#: How long the start-up check of an external Redis may take before it counts as down.
REDIS_CHECK_S: Final = 3.0
#: Pauses between attempts to restart an embedded redis-server that keeps failing.
RESTART_MIN_S: Final = 0.5
RESTART_MAX_S: Final = 10.0


def shutdown_budget_s(settings: Settings) -> float:
    """The longest a graceful stop (SIGTERM) takes: the sessions' grace, HTTP's, then the
    shoots' flush. A platform's kill time-out (fly.toml's ``kill_timeout``) must exceed it."""
    return 2 * settings.shutdown_grace_s + HTTP_GRACE_S


async def _check_redis(store: RedisStore, shown_url: str) -> bool:
    """Ask Redis at start what it promises with a write (which shows it is reachable);
    an unreachable one is a warning, not a reason to stop."""
    try:
        with trio.fail_after(REDIS_CHECK_S):
            await store.call(store.learn_durability)
    except (StoreUnavailable, trio.TooSlowError) as exc:
        log.warning(
            "Redis at %s is unreachable (%s). Serving anyway: creating and joining shoots "
            "fail until it is back, live shoots keep scores in memory, and /health reports "
            "it. Check REDIS_URL.",
            shown_url,
            exc.__cause__ or "no answer",
        )
        return False
    return True


async def serve_relay(
    settings: Settings,
    *,
    shutdown: trio.Event | None = None,
    announce: Callable[[list[str]], None] | None = None,
    listener: socket.socket | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled or ``shutdown`` is set; ``started`` with the relay's URL.

    Args:
        announce: Called once listening with the lines that tell the operator where the
            relay is and which Redis it uses (:func:`relay.startup.where_to_go`).
        listener: The socket already listening on the relay's port, if the process
            opened it before loading the relay (:func:`relay.startup.listen_early`);
            the relay serves it and closes it. ``None``: it listens once set up.
    """
    shutdown = trio.Event() if shutdown is None else shutdown
    patch_hypercorn()
    embedded: RedisServer | None = None
    redis_url = settings.redis_url
    if redis_url is None:
        embedded = await open_embedded(settings)
        redis_url = embedded.url
    store = RedisStore(redis_url)
    try:
        description = RedisDescription(
            redact_redis_url(redis_url),
            embedded_binary=None if embedded is None else embedded.executable,
            embedded_version=None if embedded is None else embedded.version,
            reachable=await _check_redis(store, redact_redis_url(redis_url)),
        )
        metrics = Metrics()
        async with (
            watching(embedded),
            open_push(store, settings) as push,
            open_registry(store, settings, metrics) as registry,
        ):
            registry.on_notice = push.sender.offer
            relay = RelayContext(settings, store, registry, metrics, push=push)
            door = Door(relay, build_app(relay), backlog=LISTEN_BACKLOG, listener=listener)
            sessions_closed = trio.Event()
            async with trio.open_nursery() as nursery:

                async def close_sessions() -> None:
                    await shutdown.wait()
                    started = trio.current_time()
                    relay.closing = True
                    door.stop_accepting()
                    log.info("closing %d sessions", len(door.sessions))
                    door.close_sessions(CLOSE_GOING_AWAY, "relay shutting down")
                    # The actors flush while the clients answer the closes, rather than
                    # after the last one did: a write that comes meanwhile is refused,
                    # unacknowledged, and its client sends it again to the next relay.
                    registry.close()
                    with trio.move_on_after(settings.shutdown_grace_s):
                        await relay.no_sessions.wait()
                    log.info(
                        "sessions closed in %.2f s (%d left); stopping the server",
                        trio.current_time() - started,
                        relay.metrics.connections,
                    )
                    sessions_closed.set()

                nursery.start_soon(close_sessions)
                try:
                    url = await nursery.start(door.serve, sessions_closed.wait)
                except OSError as exc:  # lost a race for the port checked free at start
                    raise StartupError(
                        f"Cannot listen on {settings.host}:{settings.port}: {exc.strerror}."
                    ) from exc
                log.info("relay listening on %s", url)
                if announce is not None:
                    announce(where_to_go(settings, url, description))
                task_status.started(url)
            actors = registry.actors()
            log.info("server stopped; flushing %d shoots to Redis", len(actors))
        _log_flushed(actors)
    finally:
        store.close()
        if embedded is not None:
            # Even when cancelled: a server left running would hold the data directory.
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(embedded.close)


@asynccontextmanager
async def watching(server: RedisServer | None) -> AsyncIterator[None]:
    """Keep the embedded redis-server (if any) running while the block runs: entered
    before the registry, it outlives the actors' last flush."""
    async with trio.open_nursery() as nursery:
        if server is not None:
            nursery.start_soon(supervise_embedded, server)
        yield
        nursery.cancel_scope.cancel()


async def open_embedded(settings: Settings) -> RedisServer:
    """Start the embedded redis-server for ``REDIS_URL`` unset (the caller closes it).

    Raises:
        StartupError: it did not start; nothing is left running.
    """
    embedded = RedisServer(settings.data_dir / "redis", die_with_parent=True)
    try:
        await start_embedded(embedded)
    except BaseException as exc:
        embedded.close()  # blocking for a moment, but the relay is not serving yet
        if isinstance(exc, RedisServerError):
            raise StartupError(f"The embedded redis-server did not start: {exc}") from exc
        raise
    log.info(
        "no REDIS_URL set: started an embedded redis-server at %s (version %s, %s), data in %s",
        embedded.url,
        embedded.version,
        embedded.executable,
        embedded.data_dir,
    )
    return embedded


async def start_embedded(server: RedisServer) -> None:
    """Start the embedded redis-server: the checks on a worker thread, the spawn on this
    (the main) thread so the kernel's parent-death signal is tied to the process, not to
    a worker thread that trio retires when idle."""
    await trio.to_thread.run_sync(server.prepare)
    server.spawn()
    await trio.to_thread.run_sync(server.wait_ready)


async def wait_exit(process: subprocess.Popen[bytes] | None) -> int | None:
    """Wait until a child process exits; its exit status."""
    if process is None:
        return None
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # not Linux >= 5.3: a worker thread waits instead
        return await trio.to_thread.run_sync(process.wait, abandon_on_cancel=True)
    try:
        await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)
    return process.wait()


async def supervise_embedded(server: RedisServer) -> None:
    """Restart the embedded redis-server whenever it dies while the relay runs.

    Its death is an error worth a log line at ERROR: every shoot is degraded until it is
    back (acks wait, nothing is lost: the persisters retry). A server that keeps dying at
    start is retried with a growing pause instead of in a tight loop.
    """
    delay = RESTART_MIN_S
    while True:
        status = await wait_exit(server.process)
        log.error(
            "the embedded redis-server (pid %s) exited with status %s; restarting it",
            server.pid,
            status,
        )
        try:
            await start_embedded(server)
        except RedisServerError as exc:
            log.error("the embedded redis-server did not restart: %s", exc)
            await trio.sleep(delay)  # a pause between attempts, not synchronisation
            delay = min(delay * 2, RESTART_MAX_S)
            continue
        delay = RESTART_MIN_S
        log.info("the embedded redis-server is back (pid %s)", server.pid)


def _log_flushed(actors: list[ShootActor | ShootFollower]) -> None:
    """Say that every shoot reached Redis only when it did (each actor flushes on stop)."""
    behind = [actor for actor in actors if actor.unpersisted]
    if not behind:
        log.info("every shoot flushed to Redis")
        return
    log.error(
        "%d of %d shoots could not flush %d updates to Redis before stopping; their "
        "archers' devices keep the unacknowledged scores and resend them on reconnect",
        len(behind),
        len(actors),
        sum(actor.unpersisted for actor in behind),
    )


async def _main(settings: Settings, listener: socket.socket | None) -> None:
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

            async def wait_for_signal() -> None:
                async for signum in signals:
                    log.info("received %s: shutting down", signal.Signals(signum).name)
                    _freeze_for_exit()
                    shutdown.set()
                    return

            nursery.start_soon(wait_for_signal)
            if settings.workers > 1:
                from .workers import supervise_workers  # the supervisor, not a worker

                await supervise_workers(settings, shutdown=shutdown, announce=_print_lines)
            else:
                # A supervisor's worker leaves the banner to the supervisor.
                announce = None if settings.reuse_port else _print_lines
                await serve_relay(settings, shutdown=shutdown, announce=announce, listener=listener)
            nursery.cancel_scope.cancel()


def _settle_heap() -> None:
    """Load what every shoot uses, then take it out of the garbage collector's sight; and
    keep full collections short from then on (:mod:`relay.collector`).

    The round catalogues, numpy and the handicap tables are tens of thousands of objects
    that live as long as the process; each full collection walked them all and stopped
    the event loop for 40-60 ms, which was the fan-out p99 (benchmarks/results).
    """
    all_rounds()
    gc.collect()
    gc.freeze()
    Collector().install()


def _freeze_for_exit() -> None:
    """Take the whole heap out of the garbage collector's sight for the way out, and
    collect nothing more.

    Stopping allocates (a cancellation and its traceback per task, thousands of them),
    which triggers collections, and a full one walked every session and shoot still in
    memory: with 5,000 sessions that was a third of the stop's CPU (0.6 of 1.8 s) and the
    interpreter's last collection at exit walked it again. Even with the heap frozen, the
    younger collections of what the stop allocates cost a tenth of it (1.0-1.2 s of CPU
    against 0.9-1.05 s without, 5,000 sessions). The process ends in seconds: reference
    counting frees most of that garbage, and the cycles go with the process.
    """
    gc.freeze()
    gc.disable()


def _startup_error(group: BaseExceptionGroup[BaseException]) -> StartupError | None:
    """The start-up failure inside the nurseries' exception groups, if that is what it is."""
    for exc in group.exceptions:
        if isinstance(exc, StartupError):
            return exc
        if isinstance(exc, RedisServerError):  # e.g. data written by another Redis version
            return StartupError(str(exc))
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            return StartupError(f"The relay's port is already in use: {exc.strerror}.")
        if isinstance(exc, BaseExceptionGroup):
            found = _startup_error(exc)
            if found is not None:
                return found
    return None


def _print_lines(lines: list[str]) -> None:
    print("\n".join(lines), flush=True)


def run(settings: Settings | None = None, *, listener: socket.socket | None = None) -> None:
    """The ``fast-shoot serve`` entry point.

    Args:
        listener: The relay's listening socket, if the caller opened it before importing
            this module (:func:`relay.startup.listen_early`: clients that come while the
            relay loads wait in the kernel's queue instead of being refused). Without
            one, a single relay listens here, before anything else starts.

    Raises:
        ConfigError: an environment variable it cannot use.
        StartupError: the port is taken, the data directory is in use, or the embedded
            redis-server did not start; nothing is left running.
    """
    settings = settings or Settings.from_env()
    if listener is None:
        listener = listen_early(settings)
    if listener is None and not settings.reuse_port:  # workers share the port it checked
        check_port_free(settings.host, settings.port)
    lock = None
    try:
        lock = None if settings.redis_url else lock_data_dir(settings.data_dir)
        if settings.workers == 1:  # a supervisor serves nothing itself
            _settle_heap()
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        try:
            trio.run(_main, settings, listener)
        except BaseExceptionGroup as group:
            cause = _startup_error(group)
            if cause is None:
                raise
            raise cause from None
    finally:
        if listener is not None:
            listener.close()  # closed already if the relay served it
        if lock is not None:
            lock.close()
