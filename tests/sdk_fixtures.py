"""Fixtures for the SDK and CLI tests: a real relay that a test can stop and restart.

Import the fixtures into a test module (``from tests.sdk_fixtures import relay``); the relay
uses the session's real redis-server (``redis_url`` from ``conftest.py``).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from clients import ClientOptions, Identity, join_shoot
from relay.config import Settings
from relay.server import serve_relay

#: Fast timings so reconnects happen in tens of milliseconds.
FAST: ClientOptions = ClientOptions(
    ping_interval_s=1.0,
    pong_timeout_s=2.0,
    resend_after_s=1.0,
    connect_timeout_s=3.0,
    backoff_base_s=0.05,
    backoff_cap_s=0.4,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RelayHandle:
    """A relay on a fixed port that can be stopped and started again."""

    def __init__(self, nursery: trio.Nursery, redis_url: str, port: int) -> None:
        self._nursery = nursery
        self._redis_url = redis_url
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._scope: trio.CancelScope | None = None
        self._done = trio.Event()

    @property
    def running(self) -> bool:
        return self._scope is not None

    async def start(self) -> str:
        assert self._scope is None, "already running"
        settings = Settings(host="127.0.0.1", port=self.port, redis_url=self._redis_url)
        self._scope = trio.CancelScope()
        self._done = trio.Event()
        self.url = await self._nursery.start(self._serve, settings, self._scope, self._done)
        return self.url

    async def stop(self) -> None:
        """Cancel the relay (connections drop as in a crash) and wait until it is gone."""
        assert self._scope is not None, "not running"
        self._scope.cancel()
        await self._done.wait()
        self._scope = None

    @staticmethod
    async def _serve(
        settings: Settings,
        scope: trio.CancelScope,
        done: trio.Event,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            with scope:
                await serve_relay(settings, task_status=task_status)
        finally:
            done.set()


@pytest.fixture
async def relay(nursery: trio.Nursery, redis_url: str) -> AsyncIterator[RelayHandle]:
    """A relay, not yet started, on a free port: ``await relay.start()``."""
    handle = RelayHandle(nursery, redis_url, free_port())
    yield handle
    if handle.running:
        await handle.stop()


async def new_archer(url: str, code: str, name: str = "Chris", round: str = "national") -> Identity:
    return await join_shoot(url, code, name=name, round=round)


def outbox(tmp_path: Path, name: str) -> Path:
    return tmp_path / f"{name}.outbox.json"
