"""Relay processes and a round-robin TCP proxy in front of them, for scale-out tests."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trio

from relay.store import RedisStore
from sync.clock import Stamp
from sync.document import ShootDocument


@contextmanager
def relay_process(
    tmp_path: Path, name: str, redis_url: str, port: int, lease_s: float = 1.0
) -> Iterator[subprocess.Popen[bytes]]:
    """``fast-shoot serve`` in a process of its own on ``port``, sharing ``redis_url``;
    killed (even if stopped) when the block ends. Its log is ``<name>.log``."""
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "REDIS_URL": redis_url,
        "SHOOT_LEASE_S": str(lease_s),
        "FAST_SHOOT_DATA_DIR": str(tmp_path / name),
    }
    with open(tmp_path / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "clients.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
        process.wait(timeout=10)


async def round_robin_proxy(
    ports: list[int],
    routes: list[int] | None = None,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """A TCP proxy on a free loopback port that sends each connection to the next of
    ``ports`` that accepts it (a dead relay refuses, and is skipped), as a load balancer
    in front of several relays would. Reports its port; runs until cancelled.

    Args:
        routes: If given, the port each connection went to is appended to it, in the
            order the relays accepted them (so a test knows which relay serves whom).
    """
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    turn = itertools.count()

    async def pipe(
        source: trio.SocketStream, sink: trio.SocketStream, done: trio.CancelScope
    ) -> None:
        try:
            async for chunk in source:
                await sink.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            done.cancel()

    async def handle(client: trio.SocketStream) -> None:
        start = next(turn)
        for step in range(len(ports)):
            try:
                port = ports[(start + step) % len(ports)]
                upstream = await trio.open_tcp_stream("127.0.0.1", port)
                break
            except OSError:
                continue
        else:
            await client.aclose()
            return
        if routes is not None:
            routes.append(port)
        async with client, upstream, trio.open_nursery() as nursery:
            nursery.start_soon(pipe, client, upstream, nursery.cancel_scope)
            nursery.start_soon(pipe, upstream, client, nursery.cancel_scope)

    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


def durable(redis_url: str, code: str) -> dict[str, tuple[Stamp, tuple[Any, ...]]]:
    """Each archer's register as Redis holds it: ``(stamp, arrows)``."""
    store = RedisStore(redis_url)
    try:
        stored = store.load_shoot(code)
    finally:
        store.close()
    assert stored is not None
    updates = ([stored.snapshot] if stored.snapshot else []) + [u for _, u in stored.log]
    registers = ShootDocument.load(updates).registers()
    return {aid: (r.stamp, tuple(r.state.arrows)) for aid, r in registers.items()}  # type: ignore[attr-defined]
