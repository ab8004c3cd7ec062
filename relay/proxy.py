"""The client's address behind a reverse proxy (fly.io, nginx, a load balancer).

Behind a proxy every connection comes from the proxy, so the per-address throttles would
put every phone in one bucket. The proxy says whose request it forwards in a header
(``Fly-Client-IP``, ``X-Real-IP``, ``X-Forwarded-For``), but any client can send that
header too, so it is read only when the operator says which header their proxy sets
(``PROXY_CLIENT_HEADER``) and how many proxies of theirs stand in front
(``PROXY_HOPS``, default 1). Then the relay must not be reachable except through that
proxy, or ``PROXY_TRUSTED_PEERS`` must name the networks the proxy connects from: the
header is then believed only on connections from them.

``X-Forwarded-For`` is a list each proxy appends the address it saw to; anything left of
what our own proxies appended was written by the client and is ignored: the address taken
is the ``PROXY_HOPS``-th from the right. A single-valued header such as ``Fly-Client-IP``
is the same rule with one value. A missing or unparsable value leaves the connection's own
address in place (the proxy's: one shared bucket, which fails safe).

This is hypercorn's ``ProxyFixMiddleware`` narrowed to the one thing the relay needs: it
rewrites only the ASGI scope's ``client`` (join links use ``PUBLIC_URL``, not forwarded
hosts), accepts any header name, and keeps only values that parse as an IP address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Final

__all__ = ["MAX_ADDRESS_CHARS", "ClientAddressFromProxy", "forwarded_address"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The longest address text considered (an IPv6 address with brackets and a port).
MAX_ADDRESS_CHARS: Final = 64


def _parse_address(raw: str) -> str | None:
    """An IP address, normalised, from ``1.2.3.4``, ``1.2.3.4:5678``, ``::1`` or ``[::1]:5``."""
    if not raw or len(raw) > MAX_ADDRESS_CHARS:
        return None
    candidates = [raw]
    if raw.startswith("["):
        candidates = [raw[1:].split("]", 1)[0]]
    elif raw.count(":") == 1:
        candidates.append(raw.split(":", 1)[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def forwarded_address(headers: Iterable[tuple[bytes, bytes]], name: str, hops: int) -> str | None:
    """The client address the ``hops``-th proxy from us wrote into header ``name``."""
    wanted = name.lower().encode("latin-1")
    values: list[str] = []
    for header, value in headers:
        if header.lower() == wanted:
            values.extend(part.strip() for part in value.decode("latin-1").split(","))
    if hops < 1 or len(values) < hops:
        return None
    return _parse_address(values[-hops])


class ClientAddressFromProxy:
    """ASGI middleware: replace the scope's client address with the proxy's word for it."""

    def __init__(
        self, app: App, header: str, hops: int = 1, trusted_peers: Iterable[str] = ()
    ) -> None:
        if hops < 1:
            raise ValueError("PROXY_HOPS must be at least 1")
        self.app, self.header, self.hops = app, header, hops
        self.trusted = [ipaddress.ip_network(peer, strict=False) for peer in trusted_peers]

    def _trusts(self, peer_address: str) -> bool:
        if not self.trusted:
            return True
        try:
            peer = ipaddress.ip_address(peer_address)
        except ValueError:
            return False
        return any(peer in network for network in self.trusted)

    def client_address(self, peer: str, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
        """The client's address per the proxy's header, when the peer is trusted to say;
        ``None`` to keep the connection's own (the relay's WebSocket door asks this too)."""
        if not self._trusts(peer):
            return None
        return forwarded_address(headers, self.header, self.hops)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            address = self.client_address(
                str(client[0]) if client else "", scope.get("headers") or ()
            )
            if address is not None:
                scope = dict(scope)
                scope["client"] = (address, 0)
        await self.app(scope, receive, send)
