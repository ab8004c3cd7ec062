"""The relay's one public port: WebSocket sessions stay with the relay, HTTP goes to hypercorn.

Theory of operation
-------------------
The door accepts every connection itself and reads the request head (bounded by
:data:`MAX_HEAD_BYTES`, within ``read_timeout_s``), parsed by h11. A ``GET /ws`` asking to
upgrade to WebSocket stays with the relay (:mod:`relay.websocket`), on a socket it owns.
Anything else, including what h11 cannot parse, goes to hypercorn's trio ``TCPServer``
over the same socket, with the bytes already read replayed first, so hypercorn sees the
connection from its first byte and answers as it always has (the HTTP API, the pages, the
web client's files, a 400 for a broken request, keep-alive and pipelining). A ``/ws``
upgrade sent later on a kept-alive HTTP connection is taken back from hypercorn
(:mod:`relay.handoff`).

``TCPServer``, ``WorkerContext`` and ``wrap_app`` are hypercorn's private API: the
version is pinned exactly (``pyproject.toml``) and ``tests/test_door.py`` checks the
seam's shape, so an upgrade that changes it fails a test rather than the relay. Running
``TCPServer`` ourselves also means hypercorn runs no lifespan (the relay sets itself up
outside ASGI) and no graceful shutdown of its own: :meth:`Door.serve` stops accepting,
tells kept-alive connections to close (the worker context's ``terminated``) and gives
HTTP connections still open up to :data:`HTTP_GRACE_S` to finish, then cancels whatever
is left (no wait at all when no HTTP connection is open, the usual case).

With ``--workers`` (:mod:`relay.workers`), a ``/ws?code=1234`` upgrade for a shoot another
worker of the family owns is passed to that worker, socket and bytes read, before any
answer (:mod:`relay.siblings`); the door also serves the connections its siblings pass
to it.

Each connection runs inside a fence: whatever escapes its handler (a bug in hypercorn,
wsproto, h11 or the relay) is logged with its traceback and ends that connection alone;
cancellation still passes, so shutdown is unchanged.
"""

from __future__ import annotations

import errno
import logging
import socket as stdlib_socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Final

import h11
import hypercorn.config
import trio
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import wrap_app

from .asgi import App, proxy_for
from .context import RelayContext
from .handoff import HandoffStream
from .heartbeat import Heartbeat
from .registry import DECODING_ERRORS
from .routing import MAX_HEAD_BYTES, is_websocket_upgrade
from .siblings import Siblings, code_in_target, lease_holder_of
from .startup import listen, listen_reuse_port
from .store import StoreUnavailable
from .websocket import serve_websocket
from .wssocket import OwnedSocket, configure

__all__ = ["HTTP_GRACE_S", "Door", "hypercorn_config"]

log = logging.getLogger("relay.connections")

#: What HTTP requests still running at shutdown get, once the sessions are closed.
HTTP_GRACE_S: Final = 1.0
#: How long hypercorn keeps an idle HTTP connection open for another request.
KEEP_ALIVE_S: Final = 5.0
#: Longest the door waits for Redis to say which worker owns a shoot before serving its
#: WebSocket itself (the pass to the sibling has its own bound, relay.siblings).
LOOKUP_TIMEOUT_S: Final = 5.0
#: Accept errors that mean "out of resources for now": wait a little and go on.
_RESOURCE_ERRNOS: Final = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_RESOURCE_PAUSE_S: Final = 0.1


def hypercorn_config(read_timeout_s: float) -> hypercorn.config.Config:
    config = hypercorn.config.Config()
    config.read_timeout = int(read_timeout_s)
    config.keep_alive_timeout = KEEP_ALIVE_S
    config.h11_max_incomplete_size = MAX_HEAD_BYTES
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def _url(sock: stdlib_socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host == "0.0.0.0":
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _close(sock: stdlib_socket.socket) -> None:
    if sock.fileno() != -1:
        trio.lowlevel.notify_closing(sock)
        sock.close()


class Door:
    """Accepts connections on the relay's port and routes each one (see the module).

    Args:
        backlog: The listen backlog of the socket the door opens itself.
        listener: A socket already listening on the relay's port
            (:func:`relay.startup.listen_early`), which the door serves and closes;
            ``None``: the door opens its own when it starts serving.
    """

    def __init__(
        self,
        relay: RelayContext,
        app: App,
        *,
        backlog: int,
        listener: stdlib_socket.socket | None = None,
    ) -> None:
        self._relay = relay
        self._backlog = backlog
        self._listener = listener
        config = hypercorn_config(relay.settings.read_timeout_s)
        self._http_app = wrap_app(
            app,  # type: ignore[arg-type]  # hypercorn types scopes more narrowly
            config.wsgi_max_body_size,
            "asgi",
        )
        self._config = config
        self._context = WorkerContext(None)
        proxy = proxy_for(relay, app)
        self._address_rule = None if proxy is None else proxy.client_address
        self.sessions: set[OwnedSocket] = set()
        """The open WebSocket sessions."""
        settings = relay.settings
        self._heartbeat = Heartbeat(settings.ws_ping_interval_s, settings.read_timeout_s)
        self._accepting = trio.CancelScope()
        self._accepting_siblings = trio.CancelScope()
        self._http_connections = 0
        self._http_idle = trio.Event()
        self._http_idle.set()
        sibling_dir = relay.settings.sibling_dir
        self.siblings = (
            None
            if sibling_dir is None
            else Siblings(sibling_dir, relay.registry.instance, relay.metrics)
        )
        """Passes each shoot's WebSockets to the worker owning it (``--workers``)."""

    def close_sessions(self, code: int, reason: str) -> None:
        """Close every open session, in one pass without waiting (see
        :meth:`relay.wssocket.OwnedSocket.going_away`)."""
        for owned in list(self.sessions):
            owned.going_away(code, reason)

    async def serve(
        self,
        stop: Callable[[], Awaitable[None]],
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on the relay's host and port until ``stop`` returns; ``started`` with the
        URL. Then stop accepting, and give HTTP connections still open up to
        :data:`HTTP_GRACE_S`."""
        settings = self._relay.settings
        if self._listener is not None:
            listener, self._listener = self._listener, None
        elif settings.reuse_port:  # one of several workers on this port (relay.workers)
            listener = listen_reuse_port(settings.host, settings.port, self._backlog)
        else:
            listener = listen(settings.host, settings.port, self._backlog)
        try:
            async with trio.open_nursery() as handlers:
                async with trio.open_nursery() as acceptor:
                    acceptor.start_soon(self._accept, listener, handlers)
                    acceptor.start_soon(self._heartbeat.run)
                    if self.siblings is not None:
                        acceptor.start_soon(self._accept_siblings, self.siblings, handlers)
                    task_status.started(_url(listener))
                    await stop()
                    self.stop_accepting()
                    acceptor.cancel_scope.cancel()  # and the heartbeat
                _close(listener)
                await self._context.terminated.set()  # kept-alive HTTP connections close
                # The grace is for HTTP requests in flight: none, none to wait for (the
                # WebSocket sessions have had their close frames).
                with trio.move_on_after(HTTP_GRACE_S):
                    await self._http_idle.wait()
                handlers.cancel_scope.cancel()
        finally:
            _close(listener)

    def stop_accepting(self) -> None:
        """Accept no more connections (the listening socket closes as the accept loop ends).

        Shutdown calls it first: clients whose sessions it closes reconnect at once, and a
        refused connection costs the kernel nothing, while each refused handshake would
        cost this relay's event loop what it needs to close the others.
        """
        self._accepting.cancel()
        self._accepting_siblings.cancel()  # siblings then serve what they accepted themselves

    async def _accept_siblings(self, siblings: Siblings, handlers: trio.Nursery) -> None:
        """Take the connections the sibling workers pass here, until accepting stops."""
        unix = siblings.listen()
        try:
            with self._accepting_siblings:
                await siblings.accept(
                    unix, handlers, self._passed_here, lambda: self._relay.closing
                )
        finally:
            siblings.unlink()
            _close(unix)

    async def _accept(self, listener: stdlib_socket.socket, handlers: trio.Nursery) -> None:
        try:
            with self._accepting:
                await self._accept_loop(listener, handlers)
        finally:
            _close(listener)  # refused from now on, not left waiting in the backlog

    async def _accept_loop(self, listener: stdlib_socket.socket, handlers: trio.Nursery) -> None:
        while True:
            try:
                sock, address = listener.accept()
            except BlockingIOError:
                await trio.lowlevel.wait_readable(listener)
                continue
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRNOS:
                    if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                        continue  # that one connection is gone before we got it
                    raise
                log.error("cannot accept connections for now (%s); retrying", exc.strerror)
                await trio.sleep(_RESOURCE_PAUSE_S)  # a pause before retrying
                continue
            handlers.start_soon(self._connection, sock, str(address[0]))
            await trio.lowlevel.checkpoint()

    async def _connection(self, sock: stdlib_socket.socket, peer: str) -> None:
        await self._fenced(sock, partial(self._route, sock, peer))

    async def _passed_here(self, sock: stdlib_socket.socket, head: bytes, peer: str) -> None:
        """A WebSocket a sibling passed here: served as if it had been accepted here."""
        await self._fenced(sock, partial(self._websocket, sock, head, peer))

    async def _fenced(
        self, sock: stdlib_socket.socket, serve: Callable[[], Awaitable[None]]
    ) -> None:
        """One connection, fenced: its failure is logged and ends it alone."""
        try:
            configure(sock)
            await serve()
        except* Exception as failure:
            # `except*` keeps any Cancelled in the group propagating: only errors stop here.
            log.error("one connection failed and was closed; the relay goes on", exc_info=failure)
        finally:
            _close(sock)

    async def _route(self, sock: stdlib_socket.socket, peer: str) -> None:
        head = bytearray()
        parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        event: Any = h11.NEED_DATA
        with trio.move_on_after(self._relay.settings.read_timeout_s):
            while event is h11.NEED_DATA:
                try:
                    data = sock.recv(MAX_HEAD_BYTES)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(sock)
                    continue
                except ConnectionError:
                    return
                if not data:
                    return  # closed before sending a request
                head += data
                parser.receive_data(data)
                try:
                    event = parser.next_event()
                except h11.RemoteProtocolError:
                    event = None  # hypercorn answers it
        if event is h11.NEED_DATA:
            return  # no whole request head in time
        if isinstance(event, h11.Request) and is_websocket_upgrade(event):
            early, _ = parser.trailing_data  # the client's first frames, if already here
            if not await self._pass_to_owner(sock, bytes(head), peer, event.target):
                await self._websocket(sock, (event, bytes(early)), peer)
            return
        stream = HandoffStream(trio.SocketStream(trio.socket.from_stdlib_socket(sock)), bytes(head))
        server = TCPServer(self._http_app, self._config, self._context, {}, stream)  # type: ignore[arg-type]
        self._http_opened()
        try:
            with trio.CancelScope() as stream.server_scope:
                await server.run()
        finally:
            self._http_closed()
            # hypercorn's connection and its protocol refer to each other (the protocol
            # keeps the connection's send method): without this, every closed connection
            # would wait in a cycle for the collector's next walk of the whole heap.
            vars(server).pop("protocol", None)
        if stream.takeover is not None:  # a WebSocket upgrade on a kept-alive connection
            await self._websocket(sock, stream.takeover, peer)

    async def _pass_to_owner(
        self, sock: stdlib_socket.socket, head: bytes, peer: str, target: bytes
    ) -> bool:
        """Whether a sibling worker owning the shoot the URL names took the connection
        (:mod:`relay.siblings`); if not, it is served here."""
        siblings = self.siblings
        code = code_in_target(target)
        if siblings is None or code is None or self._relay.registry.owns(code):
            return False
        store = self._relay.store
        holder: str | None = None
        with trio.move_on_after(LOOKUP_TIMEOUT_S) as lookup:
            try:
                holder = await store.call(lease_holder_of, store, code)
            except (StoreUnavailable, *DECODING_ERRORS):
                return False  # served here, as without affinity
        if lookup.cancelled_caught:
            self._relay.metrics.websockets_not_passed += 1
            return False  # Redis is slow: served here (the session will need it anyway)
        return await siblings.route(code, holder, sock, head, peer)

    def _http_opened(self) -> None:
        self._http_connections += 1
        if self._http_idle.is_set():
            self._http_idle = trio.Event()

    def _http_closed(self) -> None:
        self._http_connections -= 1
        if self._http_connections == 0:
            self._http_idle.set()

    async def _websocket(
        self, sock: stdlib_socket.socket, head: bytes | tuple[h11.Request, bytes], peer: str
    ) -> None:
        await serve_websocket(
            sock, head, peer, self._relay, self.sessions, self._address_rule, self._heartbeat
        )
