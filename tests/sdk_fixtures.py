"""Fixtures for the SDK and CLI tests: a real relay that a test can stop and restart, and
a fake one for timing tests.

Import the fixtures into a test module (``from tests.sdk_fixtures import relay``); the relay
uses the session's real redis-server (``redis_url`` from ``conftest.py``).

:class:`FakeRelay` is a real WebSocket server on loopback that speaks just enough of the
protocol to put the SDK in situations a healthy relay never creates on cue: a connection
that goes silent, a write whose answer is lost, a ``rate_limited`` refusal. It records
every frame it receives with the Trio time it arrived.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
import trio_websocket

from clients import ClientOptions, Identity, join_shoot
from relay.config import Settings
from relay.server import serve_relay
from sync.codec import decode_client, encode
from sync.document import ShootDocument
from sync.models import ArcherState, Shoot
from sync.protocol import Ack, ClientMessage, Hello, Ping, Pong, ServerMessage, Welcome, Write

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

    def __init__(self, nursery: trio.Nursery, redis_url: str, port: int, **settings: Any) -> None:
        self._nursery = nursery
        self._redis_url = redis_url
        self._settings = settings  # any other Settings field, e.g. shutdown_grace_s
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._scope: trio.CancelScope | None = None
        self._done = trio.Event()

    @property
    def running(self) -> bool:
        return self._scope is not None

    async def start(self) -> str:
        assert self._scope is None, "already running"
        settings = Settings(
            host="127.0.0.1", port=self.port, redis_url=self._redis_url, **self._settings
        )
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


# -- a fake relay for timing tests -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """A frame the fake relay received: when (Trio time), on which session, what."""

    at: float
    session: int
    message: ClientMessage


class FakeSession:
    """One connection to the fake relay (numbered from 1)."""

    def __init__(self, relay: FakeRelay, number: int, ws: trio_websocket.WebSocketConnection):
        self.relay = relay
        self.number = number
        self.ws = ws

    async def send(self, message: ServerMessage) -> None:
        await self.ws.send_message(encode(message))

    async def welcome(self, hello: Hello) -> None:
        """A valid ``welcome``: the shoot's metadata as a full-state Yjs update."""
        await self.send(
            Welcome(
                shoot=self.relay.shoot,
                reset=False,
                update=self.relay.doc.diff(),
                server_ms=time.time_ns() // 1_000_000,
                role=hello.role,
                archer=hello.archer,
            )
        )


#: What the fake relay does with each frame it receives (after recording it).
Answer = Callable[[FakeSession, ClientMessage], Awaitable[None]]


async def well_behaved(session: FakeSession, message: ClientMessage) -> None:
    """Welcome every hello, pong every ping, acknowledge every write."""
    match message:
        case Hello():
            await session.welcome(message)
        case Ping(nonce):
            await session.send(Pong(nonce, time.time_ns() // 1_000_000))
        case Write():
            await session.send(ack(message))


def ack(write: Write) -> Ack:
    return Ack(write.id, write.register.archer_id, write.register.stamp)


class FakeRelay:
    """A loopback WebSocket server that hands every frame to ``answer``.

    Start it with ``url = await fake.start(nursery)``; clients connect to ``url`` as to a
    relay, with the shoot code :attr:`code`.
    """

    code = "4242"

    def __init__(self, answer: Answer = well_behaved) -> None:
        self.answer = answer
        now = time.time_ns() // 1_000_000
        self.shoot = Shoot(
            code=self.code,
            shoot_id="fake-shoot",
            title="Fake",
            creator="Sam",
            created_ms=now,
            expires_ms=now + 86_400_000,
            time_zone="UTC",
        )
        self.doc = ShootDocument(client_id=1)
        self.doc.set_meta(self.shoot)
        self.received: list[Received] = []
        self.sessions = 0
        self._changed = trio.Event()

    async def start(self, nursery: trio.Nursery) -> str:
        server = await nursery.start(
            trio_websocket.serve_websocket, self._serve, "127.0.0.1", 0, None
        )
        return f"http://127.0.0.1:{server.port}"

    def frames(self, kind: type[Any], session: int | None = None) -> list[Received]:
        """The frames of one message type received so far (on one session, or all)."""
        return [
            r
            for r in self.received
            if isinstance(r.message, kind) and (session is None or r.session == session)
        ]

    async def wait_until(self, predicate: Callable[[FakeRelay], bool]) -> None:
        """Wait until ``predicate(self)`` holds; re-checked after every frame or session."""
        while not predicate(self):
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _serve(self, request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        self.sessions += 1
        session = FakeSession(self, self.sessions, ws)
        self._notify()
        try:
            while True:
                message = decode_client(await ws.get_message())
                self.received.append(Received(trio.current_time(), session.number, message))
                self._notify()
                await self.answer(session, message)
        except trio_websocket.ConnectionClosed:
            pass


def fake_identity(url: str, archer_id: str = "a00") -> Identity:
    """An archer of :class:`FakeRelay`'s shoot who can score before any welcome."""
    return Identity(
        relay_url=url,
        code=FakeRelay.code,
        archer_id=archer_id,
        token="secret-token",
        device_id="py-test",
        initial=ArcherState("Chris", "national"),
    )
