"""What ``fast-shoot serve`` checks before it starts, and what it tells the operator.

Checks come before anything is started, so a mistake costs one clear line and leaves
nothing behind: a busy port used to surface only after an embedded redis-server had
been started on the data directory another relay was using, as a 74-line exception
group. The data directory is locked for the same reason (two redis-servers appending to
one file corrupt it).

Then :func:`where_to_go` says where the relay can be reached (this machine, the local
network phones use, the public URL), which Redis holds the data, and where.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final
from urllib.parse import urlsplit, urlunsplit

from .config import Settings

__all__ = [
    "LISTEN_BACKLOG",
    "RedisDescription",
    "StartupError",
    "check_port_free",
    "lan_address",
    "listen",
    "listen_early",
    "listen_reuse_port",
    "lock_data_dir",
    "redact_redis_url",
    "where_to_go",
]

LOCK_FILE: Final = "relay.lock"
#: Pending connections the kernel queues for us: a reconnect storm after a restart is
#: thousands of clients at once, and a dropped SYN is retried only after 1 s, then 3 s.
LISTEN_BACKLOG: Final = 4096


class StartupError(Exception):
    """The relay cannot start; the message says why and what to change."""


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`StartupError` if ``host:port`` cannot be listened on (port 0: any)."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"HOST {host!r} is not an address to listen on ({exc}).") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            sock.bind(address)
        except OSError as exc:
            raise StartupError(_bind_problem(host, port, exc)) from exc


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """A non-blocking socket listening on ``host:port`` (the relay's one port).

    Raises:
        OSError: the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=backlog)
    sock.setblocking(False)
    return sock


def listen_early(settings: Settings) -> socket.socket | None:
    """The relay's listening socket, opened before the relay's code is loaded; ``None``
    with ``--workers`` (the supervisor serves nothing, its workers listen with
    ``SO_REUSEPORT``).

    Loading the relay takes a second or more (1.4 s of imports on the 2-core development
    machine; several seconds on a loaded one), most of a restart. A relay that listened
    only once loaded refused every client that came back meanwhile, and each refused
    client backed off before trying again. Listening first, the kernel completes their
    connections and queues them (up to :data:`LISTEN_BACKLOG`), and the relay serves them
    the moment it runs. A busy port is found here, before anything is started.

    Raises:
        StartupError: the port cannot be listened on.
    """
    if settings.workers > 1 or settings.reuse_port:
        return None
    try:
        return listen(settings.host, settings.port, LISTEN_BACKLOG)
    except socket.gaierror as exc:
        raise StartupError(
            f"HOST {settings.host!r} is not an address to listen on ({exc})."
        ) from exc
    except OSError as exc:
        raise StartupError(_bind_problem(settings.host, settings.port, exc)) from exc


def listen_reuse_port(host: str, port: int, backlog: int) -> socket.socket:
    """A non-blocking socket listening on ``host:port`` with ``SO_REUSEPORT``, so several worker processes each hold their own listening socket on one
    port and the kernel spreads new connections over them.

    Raises:
        StartupError: the address cannot be bound (another program holds the port without
            ``SO_REUSEPORT``, or the host is not this machine's).
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise StartupError(_bind_problem(host, port, exc)) from exc
    return sock


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"Port {port} on {host} is already in use (another relay?); "
            "stop that program or choose another port with PORT."
        )
    if exc.errno == errno.EACCES:
        return f"Not allowed to listen on port {port}; ports below 1024 need privileges."
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"HOST {host} is not an address of this machine."
    return f"Cannot listen on {host}:{port}: {exc.strerror or exc}."


def lock_data_dir(data_dir: Path) -> IO[bytes]:
    """Hold the data directory for this process until the returned file is closed.

    Raises:
        StartupError: another relay holds it.
    """
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(data_dir / LOCK_FILE, "a+b")  # noqa: SIM115 (held open on purpose)
    except OSError as exc:
        raise StartupError(f"Cannot use the data directory {data_dir}: {exc.strerror}.") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise StartupError(
            f"The data directory {data_dir.resolve()} is in use by another relay; stop it "
            "or give this one its own FAST_SHOOT_DATA_DIR."
        ) from exc
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n".encode())
    handle.flush()
    return handle


def redact_redis_url(url: str) -> str:
    """The Redis URL without user name, password or query (which may hold a password)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return urlunsplit((parts.scheme, "", parts.path, "", ""))
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def lan_address() -> str | None:
    """This machine's address on its local network (where phones reach it), if it has one.

    A UDP socket "connected" to an outside address sends nothing, but makes the kernel
    pick the interface and address it would route through.
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 80))  # TEST-NET-1: routed like the internet, never used
            address = str(sock.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@dataclass(frozen=True, slots=True)
class RedisDescription:
    """Which Redis the relay uses, as the operator needs to know it."""

    url: str
    """Where it is, without credentials."""
    embedded_binary: str | None = None
    """The redis-server this relay started, when ``REDIS_URL`` is unset."""
    embedded_version: str | None = None
    reachable: bool = True

    def line(self) -> str:
        if self.embedded_binary is None:
            where = f"{self.url} (REDIS_URL)"
        else:
            version = f" {self.embedded_version}" if self.embedded_version else ""
            where = f"embedded redis-server{version} ({self.embedded_binary}) at {self.url}"
        return where if self.reachable else where + ": UNREACHABLE, see the warning above"


def where_to_go(settings: Settings, url: str, redis: RedisDescription) -> list[str]:
    """The lines ``fast-shoot serve`` prints once it is listening."""
    port = urlsplit(url).port
    lines = ["fast-shoot relay is running.", f"  This machine:   {url}"]
    if settings.host in ("127.0.0.1", "localhost", "::1"):
        lines.append(
            f"  Local network:  none: HOST is {settings.host}; set HOST=0.0.0.0 for phones"
        )
    else:
        lan = lan_address()
        if lan is None:
            lines.append("  Local network:  no network address found on this machine")
        else:
            lines.append(f"  Local network:  http://{lan}:{port}  (phones on the same network)")
    if settings.public_url:
        lines.append(f"  PUBLIC_URL:     {settings.public_url}  (join links and QR codes use it)")
    else:
        lines.append("  PUBLIC_URL:     not set; join links use the address each request came to")
    lines.append(f"  Redis:          {redis.line()}")
    if redis.embedded_binary is None:
        lines.append("  Data directory: not used (the data lives in REDIS_URL's Redis)")
    else:
        lines.append(f"  Data directory: {settings.data_dir.resolve()}")
    lines.append(f"  Next:           open {url}/ in a browser (phones: the local network URL),")
    lines.append(f"                  or fast-shoot create --creator YOUR_NAME --relay {url}")
    return lines
