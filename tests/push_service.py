"""A real push service for tests: an HTTP server on loopback that records what it gets.

It stands where FCM or Mozilla's autopush would be: the relay POSTs encrypted messages
to endpoints on it, and the test decrypts them with the subscription's private key, as a
browser would (RFC 8291), and checks the VAPID token (RFC 8292).
"""

from __future__ import annotations

import json
import os
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import http_ece
import hypercorn.config
import hypercorn.trio
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import jwt

#: The largest message body the test service accepts (RFC 8030 push services take 4 KB).
MAX_BODY = 8192


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class PushService:
    """Answers ``status[path]`` (201 by default) and records every request."""

    origin: str = ""
    status: dict[str, int] = field(default_factory=dict)
    redirect: dict[str, str] = field(default_factory=dict)
    """Paths answered with a 307 to another URL."""
    silent: set[str] = field(default_factory=set)
    """Paths never answered."""
    received: list[Received] = field(default_factory=list)
    arrived: trio.Event = field(default_factory=trio.Event)

    async def app(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                await send({"type": event["type"] + ".complete"})
                if event["type"] == "lifespan.shutdown":
                    return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if len(body) > MAX_BODY or not event.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append(Received(scope["path"], headers, body))
        self.arrived.set()
        self.arrived = trio.Event()
        if scope["path"] in self.silent:
            await trio.sleep_forever()
        status = self.status.get(scope["path"], 201)
        headers = []
        if scope["path"] in self.redirect:
            status, headers = 307, [(b"location", self.redirect[scope["path"]].encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def wait_for(self, path: str, count: int = 1) -> list[Received]:
        """The first ``count`` requests to ``path``, waiting for them (caller's deadline)."""
        while True:
            got = [r for r in self.received if r.path == path]
            if len(got) >= count:
                return got[:count]
            await self.arrived.wait()


async def start_push_service(nursery: trio.Nursery) -> PushService:
    service = PushService()
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    binds = await nursery.start(hypercorn.trio.serve, service.app, config)
    service.origin = str(binds[0])
    return service


def b64(raw: bytes) -> str:
    return urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Device:
    """A browser's side of a subscription: its key pair and auth secret."""

    endpoint: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` gives in a browser."""
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        keys = {"p256dh": b64(point), "auth": b64(self.auth)}
        return {"endpoint": self.endpoint, "expirationTime": None, "keys": keys}

    def open(self, message: Received) -> dict[str, Any]:
        """Decrypt a message as the browser would (aes128gcm, RFC 8291)."""
        assert message.headers["content-encoding"] == "aes128gcm"
        plain = http_ece.decrypt(
            message.body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        data: dict[str, Any] = json.loads(plain)
        return data


def vapid_claims(message: Received) -> tuple[dict[str, Any], str]:
    """The VAPID token's verified claims and the public key it was signed with."""
    scheme, _, rest = message.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    parts = dict(part.split("=", 1) for part in rest.split(","))
    claims: dict[str, Any] = jwt.decode(parts["t"], parts["k"])  # raises on a bad signature
    return claims, parts["k"]
