"""The baseline: a bare broadcast server on hypercorn's trio worker.

What the relay is compared with, started by the benchmark in the same run: hypercorn's
trio worker serving a raw ASGI app (no framework), configured as the relay configured
hypercorn when its WebSockets ran on it (same ping interval, read timeout and frame
limit), that does nothing but send each binary message it receives to every connection
of the same room. Its CPU time per delivered message is
the floor the relay's fan-out is measured against ("what the server stack alone can
push"); the relay does the CRDT write, Redis persistence, acks and leaderboard on top.

Session shape, mirroring the relay's so the same load clients drive both: the first
frame is the relay's CBOR ``hello`` (only its ``shoot`` is read, as the room); the server
answers with one small frame (the stand-in for ``welcome``); every later frame is
broadcast, unchanged, to everyone in the room, the sender included (the relay sends an
archer its own update too).

Run it as ``python -m benchmarks.baseline --port N``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Awaitable, Callable
from functools import partial

import cbor2
import hypercorn.config
import hypercorn.trio
import trio

from relay.asgi import Receive, Scope, Send
from relay.config import Settings
from sync.protocol import MAX_CLIENT_FRAME_BYTES

from .limits import raise_fd_limit

__all__ = ["build_baseline_app", "main"]


#: The stand-in for ``welcome``: an empty CBOR map.
JOINED = b"\xa0"


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer hypercorn's lifespan scope (a raw ASGI app must)."""
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build_baseline_app() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    rooms: dict[str, set[Send]] = {}

    async def websocket(receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        event = await receive()
        if event["type"] != "websocket.receive" or not event.get("bytes"):
            return
        hello = cbor2.loads(event["bytes"])
        room = rooms.setdefault(str(hello.get("shoot")), set())
        await send({"type": "websocket.send", "bytes": JOINED})
        room.add(send)
        try:
            while True:
                event = await receive()
                if event["type"] == "websocket.disconnect":
                    return
                data = event.get("bytes")
                if data:
                    message = {"type": "websocket.send", "bytes": data}
                    for peer in list(room):
                        await peer(message)
        finally:
            room.discard(send)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await websocket(receive, send)
        elif kind == "lifespan":
            await serve_lifespan(receive, send)
        else:  # any HTTP request: the readiness probe
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    return app


def hypercorn_config(port: int) -> hypercorn.config.Config:
    """The relay's hypercorn settings (``relay/server.py``), on 127.0.0.1."""
    settings = Settings()
    config = hypercorn.config.Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.websocket_ping_interval = settings.ws_ping_interval_s
    config.read_timeout = int(settings.read_timeout_s)
    config.websocket_max_message_size = MAX_CLIENT_FRAME_BYTES
    config.graceful_timeout = settings.shutdown_grace_s
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    raise_fd_limit()
    logging.basicConfig(level=logging.WARNING)
    app = build_baseline_app()
    serve = partial(
        hypercorn.trio.serve,
        app,  # type: ignore[arg-type]  # hypercorn types scopes more narrowly
        hypercorn_config(args.port),
    )
    trio.run(serve)


if __name__ == "__main__":
    main()
