"""A bare protocol peer for relay tests: raw frames over a real WebSocket, no SDK."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import trio
import trio_websocket

from sync.clock import Stamp
from sync.codec import decode_server, encode
from sync.document import ShootDocument
from sync.models import ArcherState
from sync.protocol import Error, Hello, Message, ServerMessage, Update, Welcome, Write
from sync.register import Register

M = TypeVar("M")


class Peer:
    """One client connection with its replica, reading frames only when asked to."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws
        self.doc = ShootDocument()
        self.seen: list[ServerMessage] = []

    async def send(self, message: Message) -> None:
        await self.ws.send_message(encode(message))

    async def receive(self) -> ServerMessage:
        message = decode_server(await self.ws.get_message())
        self.seen.append(message)
        if isinstance(message, Update):
            self.doc.apply_update(message.update)
        if isinstance(message, Welcome):
            if message.reset:
                self.doc = ShootDocument()
            self.doc.apply_update(message.update)
        return message

    async def expect(self, kind: type[M]) -> M:
        """Read until a message of ``kind`` arrives (updates on the way are applied).

        An ``error`` answering a request (one with an ``id``) fails at once with its code
        and message: a refused write gets it instead of an ``ack``, so skipping it would
        only show as a timeout, with the reason thrown away. A session's error (no ``id``)
        is read past: the close that follows it is what such tests look at.
        """
        while True:
            message = await self.receive()
            if isinstance(message, kind):
                return message
            if isinstance(message, Error) and message.id is not None:
                raise AssertionError(f"expected {kind.__name__}, got {message!r}")

    async def write(self, request_id: int, register: Register) -> None:
        await self.send(Write(request_id, register))


@asynccontextmanager
async def peer(
    relay_url: str,
    code: str,
    *,
    archer: str | None = None,
    token: str | None = None,
    sv: bytes = b"\x00",
    by_code: bool = False,
) -> AsyncIterator[Peer]:
    """A raw protocol peer; ``by_code`` names the shoot in the URL, as the shipped
    clients do (``/ws?code=1234``), so several workers route it to the shoot's owner."""
    ws_url = relay_url.replace("http://", "ws://") + "/ws" + (f"?code={code}" if by_code else "")
    async with trio_websocket.open_websocket_url(ws_url) as ws:
        p = Peer(ws)
        role = "archer" if archer else "viewer"
        await p.send(Hello(code, role, sv, archer, token))
        yield p


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def register(
    archer: str,
    arrows: tuple[Any, ...],
    *,
    device: str = "dev",
    ms: int | None = None,
    **state: Any,
) -> Register:
    fields: dict[str, Any] = {"name": "Chris", "round": "national", "arrows": arrows, **state}
    return Register(
        archer, Stamp(ms if ms is not None else now_ms(), 0, device), ArcherState(**fields)
    )


async def create_shoot(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/shoots", json={"creator": "Sam", **body})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def join(
    client: httpx.AsyncClient, code: str, name: str, round_: str = "national"
) -> tuple[str, str]:
    response = await client.post(f"/api/shoots/{code}/join", json={"name": name, "round": round_})
    assert response.status_code == 200, response.text
    return response.json()["archer_id"], response.json()["token"]


async def wait_healthy(url: str, timeout: float = 90.0) -> None:
    """Poll the relay at ``url`` until ``/health`` answers 200.

    Fails after ``timeout`` seconds (or the caller's deadline, if sooner) with the last
    answer or error, so a relay that never became healthy says why (its log has the rest).
    """
    last = "no answer yet"
    async with httpx.AsyncClient(base_url=url) as http:
        with trio.move_on_after(timeout):
            while True:
                try:
                    answer = await http.get("/health")
                    if answer.status_code == 200:
                        return
                    last = f"{answer.status_code} {answer.text[:500]}"
                except httpx.TransportError as exc:
                    last = f"not reachable: {exc!r}"  # not listening yet
                await trio.sleep(0.05)  # polling pace under the deadline above
    raise AssertionError(f"{url} was not healthy within {timeout:g} s; last: {last}")


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    """Poll a condition with a deadline (for state that has no event to wait on)."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


@dataclass
class OpenDoor:
    relay: Any
    """The :class:`relay.context.RelayContext` behind the door."""
    door: Any
    """The :class:`relay.door.Door` itself."""
    url: str


@asynccontextmanager
async def open_door(redis_url: str, *, closing: bool = False) -> AsyncIterator[OpenDoor]:
    """The relay's parts without ``serve_relay`` (so a test can hold them in a state, or
    call the door directly): a registry, a context and the door, listening on a free
    port until the block ends."""
    from relay.asgi import build_app
    from relay.config import Settings
    from relay.context import RelayContext
    from relay.door import Door
    from relay.metrics import Metrics
    from relay.registry import open_registry
    from relay.store import RedisStore

    settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url)
    store = RedisStore(redis_url)
    try:
        async with open_registry(store, settings, Metrics()) as registry:
            relay = RelayContext(settings, store, registry, Metrics(), closing=closing)
            door = Door(relay, build_app(relay), backlog=64)
            async with trio.open_nursery() as serving:
                url = await serving.start(door.serve, trio.sleep_forever)
                yield OpenDoor(relay, door, url)
                serving.cancel_scope.cancel()
    finally:
        store.close()
