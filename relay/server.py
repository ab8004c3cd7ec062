"""Running the relay: the embedded Redis, the registry, hypercorn, and graceful shutdown.

``serve_relay`` follows trio's ``serve_*`` convention: it runs until cancelled or until
``shutdown`` is set, and reports its URL through ``task_status.started``, so tests start
a real relay with ``url = await nursery.start(serve_relay, settings)``.

Shutdown order: stop accepting sessions and close every open one with 1001 (going away,
clients reconnect elsewhere or later); let hypercorn finish; then the registry's actors
flush what they hold to Redis; then the embedded Redis (if any) stops.
"""

from __future__ import annotations

import logging
import signal
from functools import partial

import hypercorn.config
import hypercorn.trio
import trio

from sync.protocol import CLOSE_GOING_AWAY, MAX_CLIENT_FRAME_BYTES

from .asgi import build_app
from .config import Settings
from .context import RelayContext
from .metrics import Metrics
from .redis_server import RedisServer
from .registry import open_registry
from .store import RedisStore

__all__ = ["run", "serve_relay"]

log = logging.getLogger("relay")


def _hypercorn_config(settings: Settings) -> hypercorn.config.Config:
    config = hypercorn.config.Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    # A send to a peer that stopped reading cannot be cancelled in hypercorn; pings and a
    # read timeout are what evict such peers.
    config.websocket_ping_interval = settings.ws_ping_interval_s
    config.read_timeout = int(settings.read_timeout_s)
    config.websocket_max_message_size = MAX_CLIENT_FRAME_BYTES
    config.graceful_timeout = settings.shutdown_grace_s
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


async def serve_relay(
    settings: Settings,
    *,
    shutdown: trio.Event | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled or ``shutdown`` is set; ``started`` with the relay's URL."""
    shutdown = trio.Event() if shutdown is None else shutdown
    embedded: RedisServer | None = None
    redis_url = settings.redis_url
    if redis_url is None:
        embedded = RedisServer(settings.data_dir / "redis")
        await trio.to_thread.run_sync(embedded.start)
        redis_url = embedded.url
        log.info("no REDIS_URL set: started an embedded redis-server at %s", redis_url)
    store = RedisStore(redis_url)
    try:
        metrics = Metrics()
        async with open_registry(store, settings, metrics) as registry:
            relay = RelayContext(settings, store, registry, metrics)
            app = build_app(relay)
            async with trio.open_nursery() as nursery:

                async def close_sessions() -> None:
                    await shutdown.wait()
                    relay.closing = True
                    for actor in registry.actors():
                        for subscriber in list(actor.subscribers):
                            subscriber.close(CLOSE_GOING_AWAY, "relay shutting down")

                nursery.start_soon(close_sessions)
                serve = partial(
                    hypercorn.trio.serve,
                    app,  # type: ignore[arg-type]  # hypercorn types scopes more narrowly
                    _hypercorn_config(settings),
                    shutdown_trigger=shutdown.wait,
                )
                binds = await nursery.start(serve)
                url = str(binds[0]).replace("0.0.0.0", "127.0.0.1")
                log.info("relay listening on %s", url)
                task_status.started(url)
    finally:
        store.close()
        if embedded is not None:
            await trio.to_thread.run_sync(embedded.stop)


async def _main(settings: Settings) -> None:
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

            async def wait_for_signal() -> None:
                async for signum in signals:
                    log.info("received %s: shutting down", signal.Signals(signum).name)
                    shutdown.set()
                    return

            nursery.start_soon(wait_for_signal)
            await serve_relay(settings, shutdown=shutdown)
            nursery.cancel_scope.cancel()


def run(settings: Settings | None = None) -> None:
    """The ``fast-shoot serve`` entry point."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    trio.run(_main, settings or Settings.from_env())
