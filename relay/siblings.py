"""Shoot affinity between the workers of one ``fast-shoot serve --workers N`` family.

The problem: ``SO_REUSEPORT`` lets the kernel spread connections over the workers with no
regard for the shoot they are for, so each shoot's clients end up on every worker. One
worker owns the shoot (:mod:`relay.lease`); every other worker holding some of its
clients follows it (:mod:`relay.follower`): it tails the log, applies and fans out every
update a second time, and sends its clients' writes through Redis to the owner and back.
Measured, two workers cost 2-2.6 times the CPU per delivered message of one.

The fix: a WebSocket whose URL names its shoot (``/ws?code=1234``, as the clients we ship
send it) is served by the worker that owns that shoot. The door reads the request head
anyway (:mod:`relay.door`); when the shoot's lease names a sibling worker, the door passes
the TCP connection itself to that sibling over a Unix socket (``SCM_RIGHTS``), with the
bytes it already read and the client's address, and the sibling serves it as if it had
accepted it (the WebSocket handshake included). The client sees nothing of it.

Every worker of the family listens on a ``SOCK_SEQPACKET`` Unix socket in a private
directory the supervisor creates (mode 0700): the file is named after the worker's
instance name (a hash of it, as socket paths are short), the same name the leases carry,
so the lease alone says where to send a connection and no table has to be kept.

The exchange, bounded so a connection is never lost nor served twice:

1. the door connects to the sibling's socket and sends one message: the client's address,
   the head, and the descriptor;
2. the sibling answers ``R`` (ready) if it will serve it (not while it shuts down);
3. the door answers ``G`` (go) and closes its copy; the sibling serves the connection.

A sibling that is gone (no file, connection refused), does not answer ``R`` within
:data:`PASS_TIMEOUT_S`, or refuses, means the door serves the connection itself, as it
would without affinity (as a follower, if need be). The door decides alone: a sibling that
got ``R`` out but never sees ``G`` (the door gave up meanwhile, or died) drops its copy,
so at most one process ever serves the connection. Only if the door stalled for
:data:`GO_TIMEOUT_S` between reading ``R`` and sending ``G`` would nobody serve it: the
client then sees its connection close and reconnects.

A shoot nobody owns yet goes to the sibling its code picks among the family's sockets, so
all workers send a new shoot's first clients to the same one, which takes the lease; so
do the clients of a shoot whose owner was killed (its socket refuses: the file is removed
and the choice made again), and that worker takes the shoot over when the dead owner's
lease expires.

What stays as it was: the hello remains the authority on the shoot. A client whose hello
names another shoot than its URL is served normally by whichever worker got it (as a
follower of that other shoot if need be): correct, only without the saving. A URL without
a code, a shoot owned by this worker, or one owned by a relay on another machine (no
socket of that name here) are served locally. Redis being unreachable means serving
locally too.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import socket as stdlib_socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import trio

from .metrics import Metrics
from .routing import MAX_HEAD_BYTES
from .store import RedisStore

__all__ = [
    "GO_TIMEOUT_S",
    "PASS_TIMEOUT_S",
    "Siblings",
    "code_in_target",
    "lease_holder_of",
    "socket_path",
]

log = logging.getLogger(__name__)

#: How long the door waits for a sibling to take a connection before serving it itself.
PASS_TIMEOUT_S: Final = 5.0
#: How long a sibling that said ``R`` waits for ``G`` before dropping its copy.
GO_TIMEOUT_S: Final = 30.0
#: The longest client address carried beside the head (an IPv6 text form is 45 bytes).
MAX_PEER_BYTES: Final = 255
#: One handoff message: the address's length, the address, the head.
MAX_MESSAGE_BYTES: Final = 2 + MAX_PEER_BYTES + MAX_HEAD_BYTES
#: Handoffs waiting for the sibling to accept them (as the relay's TCP backlog: a
#: reconnect storm arrives at every worker at once).
BACKLOG: Final = 4096
_FULL_BACKLOG_PAUSE_S: Final = 0.005
#: Dead workers' sockets :meth:`Siblings.route` tries (and removes) before serving here.
_MAX_DEAD_SOCKETS: Final = 4
_READY: Final = b"R"
_GO: Final = b"G"
_CODE: Final = re.compile(rb"(?:^|&)code=([0-9]{4})(?:&|$)")

Serve = Callable[[stdlib_socket.socket, bytes, str], Awaitable[None]]
"""Serves a connection a sibling passed here: the socket, the head read, the address."""


def socket_path(directory: str, instance: str) -> str:
    """Where the worker named ``instance`` listens for connections its siblings pass."""
    name = hashlib.sha256(instance.encode()).hexdigest()[:20]
    return os.path.join(directory, f"{name}.sock")


def code_in_target(target: bytes) -> str | None:
    """The shoot code a ``/ws?code=1234`` request names, if it names one (4 digits)."""
    _, _, query = target.partition(b"?")
    found = _CODE.search(query)
    return None if found is None else found.group(1).decode()


def lease_holder_of(store: RedisStore, code: str) -> str | None:
    """The instance holding the lease of the live shoot with ``code``, if any (blocking:
    run it through :meth:`RedisStore.call`)."""
    shoot = store.load_meta(code)
    if shoot is None:
        return None
    token = store.lease_holder(shoot)
    if token is None:
        return None
    return token.partition(":")[2] or None


def _close(sock: stdlib_socket.socket) -> None:
    if sock.fileno() != -1:
        trio.lowlevel.notify_closing(sock)
        sock.close()


async def _recv(sock: stdlib_socket.socket, size: int) -> bytes:
    while True:
        try:
            return sock.recv(size)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)


class Siblings:
    """This worker's end of the handoffs: passes connections to siblings, takes theirs.

    Args:
        directory: The family's private directory of sockets.
        instance: This worker's instance name (as in its leases).
        metrics: Where the connections passed and taken are counted.
    """

    def __init__(self, directory: str, instance: str, metrics: Metrics) -> None:
        self.directory = directory
        self.instance = instance
        self._metrics = metrics

    def path_for(self, code: str, holder: str | None) -> str | None:
        """Which sibling's socket a WebSocket for shoot ``code`` goes to: the owner's
        (``holder``, the instance in its lease), or while nobody owns it, the one the
        code picks among the family's sockets, so every worker sends a new shoot's first
        clients to the same one (which then takes the lease); ``None``: this worker."""
        own = socket_path(self.directory, self.instance)
        if holder is not None:
            path = socket_path(self.directory, holder)
        else:
            try:
                names = sorted(n for n in os.listdir(self.directory) if n.endswith(".sock"))
            except OSError:
                return None
            if not names:
                return None
            path = os.path.join(self.directory, names[int(code) % len(names)])
        return None if path == own else path

    async def route(
        self, code: str, holder: str | None, sock: stdlib_socket.socket, head: bytes, peer: str
    ) -> bool:
        """Pass a WebSocket for shoot ``code`` (whose lease names ``holder``) to the sibling
        that should serve it (:meth:`path_for`); whether one took it. A socket nobody
        listens on (a killed worker's, possibly the lease holder's until its lease expires)
        is removed and the choice made again among the living, so every worker still
        sends the shoot's clients to the same one."""
        path = self.path_for(code, holder)
        for _ in range(_MAX_DEAD_SOCKETS):
            if path is None:
                return False
            taken = await self.pass_to(path, sock, head, peer)
            if taken is not None:
                return taken
            path = self.path_for(code, None)
        return False

    async def pass_to(
        self, path: str, sock: stdlib_socket.socket, head: bytes, peer: str
    ) -> bool | None:
        """Pass ``sock`` to the sibling listening at ``path``: ``True`` if it took it;
        ``False`` if not, and ``None`` if nobody listens there (the file is removed). Unless
        ``True``, the caller still holds the connection and serves it (see the module)."""
        address = peer.encode()[:MAX_PEER_BYTES]
        message = struct.pack("!H", len(address)) + address + head
        if len(message) > MAX_MESSAGE_BYTES:
            return False
        unix = stdlib_socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_SEQPACKET)
        unix.setblocking(False)
        try:
            with trio.move_on_after(PASS_TIMEOUT_S):
                await self._exchange(unix, path, message, sock)
                self._metrics.websockets_passed += 1
                return True
            log.warning("a sibling worker did not take a connection in time; serving it here")
            self._metrics.websockets_not_passed += 1
            return False
        except ConnectionRefusedError:
            # Nobody listens there: a worker that was killed (its name is never reused).
            with contextlib.suppress(OSError):
                os.unlink(path)  # a local directory: no wait worth a thread
            return None
        except FileNotFoundError:
            return False  # not a sibling: a relay on another machine owns the shoot
        except OSError:
            self._metrics.websockets_not_passed += 1
            return False  # the sibling is gone (reset) or refused: serve here
        finally:
            _close(unix)

    async def _exchange(
        self, unix: stdlib_socket.socket, path: str, message: bytes, sock: stdlib_socket.socket
    ) -> None:
        """Connect, send the message and the descriptor, wait for ``R``, send ``G``.

        Raises:
            OSError: the sibling is gone or refused.
        """
        while True:
            try:
                unix.connect(path)
                break
            except BlockingIOError:
                # Its backlog is full (a connection storm): a Unix socket has no
                # connect in progress to wait for, so try again shortly, under the
                # caller's deadline.
                await trio.sleep(_FULL_BACKLOG_PAUSE_S)
        while True:
            try:
                stdlib_socket.send_fds(unix, [message], [sock.fileno()])
                break
            except BlockingIOError:
                await trio.lowlevel.wait_writable(unix)
        if await _recv(unix, 1) != _READY:
            raise ConnectionAbortedError("the sibling did not take the connection")
        unix.send(_GO)  # the door's decision: from here the sibling serves it

    def listen(self) -> stdlib_socket.socket:
        """This worker's socket for its siblings' handoffs (a stale file is replaced)."""
        path = socket_path(self.directory, self.instance)
        Path(path).unlink(missing_ok=True)
        listener = stdlib_socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_SEQPACKET)
        try:
            listener.bind(path)
            listener.listen(BACKLOG)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        return listener

    def unlink(self) -> None:
        Path(socket_path(self.directory, self.instance)).unlink(missing_ok=True)

    async def accept(
        self,
        listener: stdlib_socket.socket,
        handlers: trio.Nursery,
        serve: Serve,
        closing: Callable[[], bool],
    ) -> None:
        """Take the connections siblings pass here until cancelled; each is served by
        ``serve`` in ``handlers`` (unless ``closing()``: the sibling then serves it)."""
        while True:
            try:
                unix, _ = listener.accept()
            except BlockingIOError:
                await trio.lowlevel.wait_readable(listener)
                continue
            except OSError as exc:
                log.warning("cannot accept a sibling's handoff: %s", exc.strerror)
                await trio.sleep(0.1)  # out of descriptors for now: a pause, then retry
                continue
            unix.setblocking(False)
            handlers.start_soon(self._take, unix, serve, closing)
            await trio.lowlevel.checkpoint()

    async def _take(
        self, unix: stdlib_socket.socket, serve: Serve, closing: Callable[[], bool]
    ) -> None:
        try:
            taken = None
            with trio.move_on_after(GO_TIMEOUT_S):
                taken = await self._receive(unix, closing)
        except OSError:
            taken = None  # the door is gone: it serves the connection, or nobody does
        finally:
            _close(unix)
        if taken is None:
            return
        self._metrics.websockets_taken += 1
        sock, head, peer = taken
        await serve(sock, head, peer)

    async def _receive(
        self, unix: stdlib_socket.socket, closing: Callable[[], bool]
    ) -> tuple[stdlib_socket.socket, bytes, str] | None:
        """Steps 1-3 of the exchange on this side: the connection to serve, or ``None``
        (its descriptor closed here: the door serves it, or it was malformed)."""
        while True:
            try:
                data, fds, flags, _ = stdlib_socket.recv_fds(unix, MAX_MESSAGE_BYTES, 1)
                break
            except BlockingIOError:
                await trio.lowlevel.wait_readable(unix)
        for fd in fds[1:]:
            os.close(fd)
        if not fds:
            return None
        sock = stdlib_socket.socket(fileno=fds[0])
        kept = False
        try:
            truncated = flags & (stdlib_socket.MSG_TRUNC | stdlib_socket.MSG_CTRUNC)
            if truncated or len(data) < 2 or closing():
                return None  # on closing, the door serves it (it sees the refusal)
            (length,) = struct.unpack_from("!H", data)
            peer = data[2 : 2 + length].decode(errors="replace")
            head = data[2 + length :]
            unix.send(_READY)
            if await _recv(unix, 1) != _GO:
                return None  # the door gave up and serves it itself
            kept = True
            return sock, head, peer
        finally:
            if not kept:
                sock.close()
