"""The stream hypercorn serves a connection over: the bytes the door read first, then the
socket, watched for a WebSocket upgrade on a kept-alive connection.

Why watch: some clients (Node's built-in WebSocket, for one) send a WebSocket upgrade on
an HTTP connection they kept alive from an earlier request, so the door's routing of
each connection's *first* request is not enough. This stream follows the request
boundaries with its own h11 parser (answering it with a stand-in response to move it on
to the next request; hypercorn writes the real one). Bytes are passed to hypercorn as
they come, except a new request's head, which is held until it is whole: if it is a
``GET /ws`` upgrade, hypercorn is shown the end of the stream instead (it closes its side
of the connection, and its close is not passed on) and the door serves the WebSocket on
the same socket (:attr:`HandoffStream.takeover`). Anything else, including what h11
cannot follow, is hypercorn's as before; the watching stops at the first upgrade of any
other kind or a broken request, where hypercorn decides.
"""

from __future__ import annotations

from typing import Final

import h11
import trio

from .routing import MAX_HEAD_BYTES, is_websocket_upgrade

__all__ = ["HandoffStream"]

#: The stand-in answer that moves the watcher on to the next request.
_STAND_IN: Final = h11.Response(status_code=204, headers=[])


class HandoffStream(trio.abc.HalfCloseableStream):
    """A socket stream that replays ``head`` first and hands a later ``/ws`` upgrade back.

    hypercorn reads the peer's address from :attr:`socket` and tells plain TCP from TLS by
    the missing ``do_handshake``.
    """

    def __init__(self, stream: trio.SocketStream, head: bytes) -> None:
        self.stream = stream
        self.socket = stream.socket
        self.takeover: bytes | None = None
        """The upgrade request's bytes (and any after it) once the relay takes over."""
        self._replay = head
        self._watch: h11.Connection | None = h11.Connection(
            h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES
        )
        self._held = bytearray()  # bytes of the current request not passed on yet
        self.server_scope: trio.CancelScope | None = None
        """The scope hypercorn's server runs in: cancelled at the takeover, since hypercorn
        would otherwise keep the connection until its keep-alive timeout."""

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while self.takeover is None:
            if self._replay:
                await trio.lowlevel.checkpoint()
                data, self._replay = self._replay, b""
            else:
                data = bytes(await self.stream.receive_some(max_bytes))
            if self._watch is None or not data:
                return data
            passed = self._follow(data)
            if passed:
                return passed
            # A new request's head, incomplete: read on before deciding whose it is.
        if self.server_scope is not None:
            # hypercorn has answered every request before this one (clients do not
            # pipeline an upgrade), so there is nothing of its left to wait for.
            self.server_scope.cancel()
        await trio.lowlevel.checkpoint()
        return b""  # hypercorn sees the end of the stream

    def _follow(self, data: bytes) -> bytes:
        """Feed ``data`` to the watcher; the bytes hypercorn may have now."""
        watch = self._watch
        assert watch is not None
        watch.receive_data(data)
        self._held += data
        passed = bytearray()
        while True:
            try:
                event = watch.next_event()
            except h11.RemoteProtocolError:
                event = h11.PAUSED  # hypercorn answers it; stop following
            if event is h11.NEED_DATA:
                if watch.their_state is not h11.IDLE:  # in a body: nothing to decide
                    passed += self._held
                    self._held.clear()
                return bytes(passed)
            if isinstance(event, h11.Request):
                if is_websocket_upgrade(event):
                    self.takeover = bytes(self._held)
                    self._held.clear()
                    self._watch = None
                    return bytes(passed)
                passed += self._held
                self._held.clear()
            elif isinstance(event, h11.EndOfMessage):
                if not self._next_cycle(watch):
                    event = h11.PAUSED
                else:
                    rest = len(watch.trailing_data[0])  # the next request's start
                    cut = len(self._held) - rest
                    passed += self._held[:cut]
                    del self._held[:cut]
            if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                passed += self._held
                self._held.clear()
                self._watch = None
                return bytes(passed)

    @staticmethod
    def _next_cycle(watch: h11.Connection) -> bool:
        """Answer the watcher's request with the stand-in; whether another may follow."""
        try:
            watch.send(_STAND_IN)
            watch.send(h11.EndOfMessage())
            watch.start_next_cycle()
        except h11.LocalProtocolError:  # the request said "Connection: close"
            return False
        return True

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.takeover is None:
            await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        if self.takeover is None:
            await self.stream.send_eof()

    async def aclose(self) -> None:
        if self.takeover is None:
            await self.stream.aclose()
        else:
            await trio.lowlevel.checkpoint()
