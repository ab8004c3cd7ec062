"""The hypercorn close race, deterministically: a send meeting a close in progress is dropped.

``tests/test_relay_close_race.py`` races real clients against a relay process; this holds
the stream's send side the way ``send_eof`` does, so the collision happens every time.
"""

from __future__ import annotations

from contextlib import suppress

import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.events import Event, RawData
from hypercorn.trio.tcp_server import TCPServer

from relay.hypercorn_patch import patch_hypercorn


class Recorder:
    """Stands in for hypercorn's protocol object: notes what the server tells it."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def handle(self, event: Event) -> None:
        self.events.append(event)


async def test_a_send_during_a_close_is_dropped_instead_of_raising() -> None:
    patch_hypercorn()
    patch_hypercorn()  # idempotent
    left_socket, right_socket = trio.socket.socketpair()
    left, right = trio.SocketStream(left_socket), trio.SocketStream(right_socket)
    server = TCPServer(None, Config(), None, None, left)  # type: ignore[arg-type]
    server.protocol = Recorder()  # type: ignore[assignment]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def occupy_the_send_side() -> None:
                """What send_eof does while hypercorn closes: hold the stream's send side."""
                with suppress(trio.ClosedResourceError):
                    await left.send_all(b"x" * 10_000_000)  # nobody reads: it blocks

            nursery.start_soon(occupy_the_send_side)
            await trio.testing.wait_all_tasks_blocked()
            # The reader task answering a ping or a close frame: without the patch this
            # raised BusyResourceError, which stopped hypercorn for every client.
            await server.protocol_send(RawData(b"pong"))
            # Nothing else is sent on a dropped frame's behalf.
            assert server.protocol.events == []  # type: ignore[attr-defined]
            await left.aclose()
    await right.aclose()
