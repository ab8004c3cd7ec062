"""Redis commands sent from the event loop, for the one call every write makes: the append.

Why: the store runs redis-py on worker threads (``redis.asyncio`` does not run under
Trio), which costs every append a hop to a thread and back, a wake-up of the event loop
for the answer, and redis-py's command machinery on top. At a shoot's pace (one write at
a time, tens of milliseconds apart) that was most of what a write cost the relay outside
its actor (see ``benchmarks/README.md``, CPU per write). Here the command is built as
RESP by hand, written with a non-blocking ``send`` on a socket this module owns, and its
answer parsed here, on the event loop: no thread.

Scope: one server reached by ``redis://`` or ``unix://`` without TLS (the embedded Redis,
or one on a private network). :meth:`Wire.from_url` returns ``None`` for anything else
(``rediss://``, a Redis Cluster, options it does not know), and the store keeps its
thread path for those.

Connections: a small pool, each used by one request at a time (the commands are written
and every answer read before it goes back), so the appends of several shoots run side by
side as they did on threads, and ``appendfsync always`` still groups their fsyncs. A
connection that fails, times out or is cancelled in the middle of a request is closed,
never reused: its next answer would belong to the request that was cut. A request that
fails on a connection taken from the pool is sent once more on a new one (the server may
have closed an idle connection); the store's commands are safe to repeat (an append
applied twice changes no document).

Error handling: an error answer (``-ERR ...``) is returned in place, as the exception
redis-py raises for its code (:class:`redis.exceptions.NoScriptError` for ``NOSCRIPT``,
``LOADING``, ``NOAUTH`` and ``READONLY`` likewise, else
:class:`redis.exceptions.ResponseError`), like a pipeline with ``raise_on_error=False``;
Redis out of reach, a time-out, or an answer this module cannot read raise
:class:`~relay.records.StoreUnavailable`. Answers are bounded (:data:`MAX_ANSWER_BYTES`)
before they are parsed.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import trio
from redis.connection import parse_url
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)

from .records import StoreUnavailable

__all__ = [
    "IDLE_KEPT",
    "MAX_ANSWER_BYTES",
    "MAX_CONNECTIONS",
    "Arg",
    "Wire",
    "encode_commands",
    "parse_answer",
]

#: The largest answer read (the store's answers are tens of bytes).
MAX_ANSWER_BYTES: Final = 1 << 20
#: Idle connections kept; more may be open at once, up to :data:`MAX_CONNECTIONS`.
IDLE_KEPT: Final = 4
MAX_CONNECTIONS: Final = 16
RECV_BYTES: Final = 65_536
MAX_DEPTH: Final = 8

Arg = str | bytes | int | float


def encode_commands(commands: Sequence[Sequence[Arg]]) -> bytes:
    """The commands as RESP arrays of bulk strings, one after the other."""
    out: list[bytes] = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for arg in command:
            if isinstance(arg, bytes):
                data = arg
            elif isinstance(arg, str):
                data = arg.encode()
            elif isinstance(arg, int):
                data = b"%d" % arg
            else:
                data = repr(arg).encode()
            out.append(b"$%d\r\n" % len(data))
            out.append(data)
            out.append(b"\r\n")
    return b"".join(out)


class _Incomplete(Exception):
    """The buffer ends before the answer does."""


class _Broken(StoreUnavailable):
    """The connection failed (closed by Redis, or a socket error)."""


#: Error codes whose answers redis-py raises as types of their own (the store's handling
#: tells a refused ``WAITAOF`` from a server that is loading or wants a password).
_ERRORS: Final[dict[str, type[RedisError]]] = {
    "NOSCRIPT": NoScriptError,
    "LOADING": BusyLoadingError,
    "NOAUTH": AuthenticationError,
    "READONLY": ReadOnlyError,
}


def _error(message: str) -> RedisError:
    code, _, rest = message.partition(" ")
    kind = _ERRORS.get(code)
    if kind is not None:
        return kind(message if kind is NoScriptError else rest)
    return ResponseError(rest if code == "ERR" else message)


def parse_answer(buffer: bytes | bytearray, start: int = 0, depth: int = 0) -> tuple[Any, int]:
    """One RESP2 answer from ``buffer`` at ``start``: ``(value, end)``.

    Simple strings and bulk strings are ``bytes`` (a nil is ``None``), integers ``int``,
    arrays ``list``, and an error answer the exception redis-py would raise for it.

    Raises:
        _Incomplete: more bytes are needed.
        StoreUnavailable: not RESP2, or nested deeper than :data:`MAX_DEPTH`.
    """
    end = buffer.find(b"\r\n", start)
    if end < 0:
        raise _Incomplete
    kind = buffer[start : start + 1]
    line = bytes(buffer[start + 1 : end])
    after = end + 2
    try:
        if kind == b"+":
            return line, after
        if kind == b":":
            return int(line), after
        if kind == b"-":
            return _error(line.decode(errors="replace")), after
        if kind == b"$":
            length = int(line)
            if length < 0:
                return None, after
            if len(buffer) < after + length + 2:
                raise _Incomplete
            return bytes(buffer[after : after + length]), after + length + 2
        if kind == b"*":
            count = int(line)
            if count < 0:
                return None, after
            if depth >= MAX_DEPTH:
                raise StoreUnavailable("Redis answered with an array nested too deep.")
            items = []
            for _ in range(count):
                item, after = parse_answer(buffer, after, depth + 1)
                items.append(item)
            return items, after
    except ValueError as exc:
        raise StoreUnavailable(f"Redis answered with a malformed length: {line!r}") from exc
    raise StoreUnavailable(f"Redis answered with an unknown type {kind!r}.")


@dataclass(frozen=True, slots=True)
class _Address:
    host: str | None
    port: int
    path: str | None
    username: str | None
    password: str | None
    db: int


_PLAIN_OPTIONS: Final = {"host", "port", "db", "username", "password", "path", "connection_class"}


class _Connection:
    """One non-blocking socket to Redis, with what it has read past the last answer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.sock)
                continue
            view = view[sent:]

    async def answers(self, count: int) -> list[Any]:
        """Read ``count`` answers."""
        found: list[Any] = []
        start = 0
        while len(found) < count:
            try:
                value, start = parse_answer(self.buffer, start)
            except _Incomplete:
                if len(self.buffer) > MAX_ANSWER_BYTES:
                    raise StoreUnavailable("Redis answered with more than expected.") from None
                await self._receive()
                continue
            found.append(value)
        del self.buffer[:start]
        return found

    async def _receive(self) -> None:
        while True:
            try:
                data = self.sock.recv(RECV_BYTES)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self.sock)
                continue
            if not data:
                raise _Broken("Redis closed the connection.")
            self.buffer += data
            return

    def close(self) -> None:
        self.sock.close()


class Wire:
    """Commands to one Redis server from the event loop (see the module docstring).

    Args:
        timeout_s: How long connecting, and each request, may take.
    """

    def __init__(self, address: _Address, timeout_s: float) -> None:
        self._address = address
        self._timeout_s = timeout_s
        self._idle: list[_Connection] = []
        self._slots = trio.Semaphore(MAX_CONNECTIONS)
        self._closed = False

    @classmethod
    def from_url(cls, url: str, timeout_s: float) -> Wire | None:
        """A wire for ``url``, or ``None`` when it names anything but one plain server."""
        if url.partition("://")[0].lower() not in ("redis", "unix"):
            return None
        try:
            options = parse_url(url)  # type: ignore[no-untyped-call]
        except ValueError:
            return None
        if not set(options) <= _PLAIN_OPTIONS:
            return None  # TLS, a protocol or other client options: the thread path has them
        return cls(
            _Address(
                host=options.get("host"),
                port=int(options.get("port") or 6379),
                path=options.get("path"),
                username=options.get("username"),
                password=options.get("password"),
                db=int(options.get("db") or 0),
            ),
            timeout_s,
        )

    async def execute(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        """Send ``commands`` in one write on one connection and read an answer to each.

        Raises:
            StoreUnavailable: Redis cannot be reached, did not answer in time, or answered
                something that is not RESP2.
        """
        data = encode_commands(commands)
        try:
            self._slots.acquire_nowait()  # no schedule point when a slot is free (usual)
        except trio.WouldBlock:
            await self._slots.acquire()
        try:
            if not self._idle:
                return await self._request(data, len(commands), fresh=True)
            try:
                return await self._request(data, len(commands), fresh=False)
            except _Broken:
                pass  # an idle connection the server (or a proxy) has closed meanwhile
            return await self._request(data, len(commands), fresh=True)
        finally:
            self._slots.release()

    async def _request(self, data: bytes, count: int, *, fresh: bool) -> list[Any]:
        connection = None if fresh or not self._idle else self._idle.pop()
        ok = False
        # A bare scope, not fail_after: this runs once per write (see the module docstring).
        deadline = trio.CancelScope(deadline=trio.current_time() + self._timeout_s)
        try:
            with deadline:
                if connection is None:
                    connection = await self._connect()
                await connection.send(data)
                answers = await connection.answers(count)
                ok = True
            if not ok:
                raise StoreUnavailable(f"Redis did not answer within {self._timeout_s:g} s.")
            return answers
        except OSError as exc:
            raise _Broken(f"Redis: {exc}") from exc
        finally:
            if connection is not None:
                if ok and not self._closed and len(self._idle) < IDLE_KEPT:
                    self._idle.append(connection)
                else:
                    connection.close()

    async def _connect(self) -> _Connection:
        address = self._address
        if address.path is not None:
            stream = await trio.open_unix_socket(address.path)
        else:
            stream = await trio.open_tcp_stream(address.host or "localhost", address.port)
        family, kind, proto = stream.socket.family, stream.socket.type, stream.socket.proto
        sock = socket.socket(family, kind, proto, fileno=stream.socket.detach())
        sock.setblocking(False)
        connection = _Connection(sock)
        try:
            hello: list[list[Arg]] = []
            if address.password is not None:
                user = [address.username] if address.username else []
                hello.append(["AUTH", *user, address.password])
            if address.db:
                hello.append(["SELECT", address.db])
            if hello:
                await connection.send(encode_commands(hello))
                for answer in await connection.answers(len(hello)):
                    if isinstance(answer, Exception):
                        raise StoreUnavailable(f"Redis refused the connection: {answer}")
        except BaseException:
            connection.close()
            raise
        return connection

    def close(self) -> None:
        """Close the idle connections; those in use close when their request ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
