"""The relay's settings, read from environment variables (documented in the README)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sync.heartbeat import PING_INTERVAL_S, PONG_TIMEOUT_S
from sync.limits import (
    HELLO_TIMEOUT_S,
    MAX_ARCHERS_PER_SHOOT,
    MAX_DOCUMENT_BYTES,
    WRITES_BURST,
    WRITES_PER_S,
)

from .push.services import DEFAULT_PUSH_SERVICES, ServiceOrigin

__all__ = ["ConfigError", "Settings"]


class ConfigError(ValueError):
    """An environment variable holds something the relay cannot use; says which and why."""


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, not {raw!r}.") from exc


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name} must be a port number from 0 to 65535, not {raw!r}.")
    return port


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    parts = [part.strip() for part in env.get(name, "").split(",") if part.strip()]
    for part in parts:
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError as exc:
            raise ConfigError(
                f"{name} must list IP networks such as 10.0.0.0/8, not {part!r}."
            ) from exc
    return tuple(parts)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0, not {env.get(name)!r}.")


def _push_services(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("PUSH_SERVICES", "")
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts:
        return DEFAULT_PUSH_SERVICES
    for part in parts:
        try:
            ServiceOrigin.parse(part)
        except ValueError as exc:
            raise ConfigError(f"PUSH_SERVICES: {exc}.") from exc
    return tuple(parts)


def _vapid_key(env: Mapping[str, str]) -> str | None:
    raw = env.get("PUSH_VAPID_PRIVATE_KEY", "").strip()
    if not raw:
        return None
    from .push.keys import parse_private_key  # only then: it loads cryptography and redis

    try:
        parse_private_key(raw)
    except ValueError as exc:
        raise ConfigError(
            f"PUSH_VAPID_PRIVATE_KEY must be a raw P-256 private key in base64url: {exc}."
        ) from exc
    return raw


def _push_subject(env: Mapping[str, str]) -> str | None:
    raw = env.get("PUSH_SUBJECT", "").strip()
    if not raw:
        return None
    from .push.keys import subject_signs  # only then: it loads cryptography and redis

    if not subject_signs(raw):
        raise ConfigError(
            "PUSH_SUBJECT must be a mailto: address (mailto:ops@example.org) or an "
            f"https:// URL, not {raw!r}."
        )
    return raw


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if not value > 0:
        raise ConfigError(f"{name} must be a number above 0, not {env.get(name)!r}.")
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, not {raw!r}.")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything that can be tuned without changing code."""

    host: str = "0.0.0.0"
    port: int = 8080
    redis_url: str | None = None
    """``None`` starts an embedded redis-server whose data lives in :attr:`data_dir`;
    ``redis+cluster://`` names a Redis Cluster (:mod:`relay.redis_client`)."""
    embedded_redis: bool = True
    """``False`` (``FAST_SHOOT_EMBEDDED_REDIS=0``, as in the container image, which has no
    redis-server) makes ``REDIS_URL`` required instead of starting one."""
    workers: int = 1
    """Relay processes sharing the port (``--workers``, ``WEB_CONCURRENCY``); above 1 a
    supervisor runs them (:mod:`relay.workers`)."""
    reuse_port: bool = False
    """Listen with ``SO_REUSEPORT``, beside the other workers on the same port (set by the
    supervisor for its workers, never from the environment)."""
    sibling_dir: str | None = None
    """The private directory where the workers of one ``--workers`` family listen for the
    connections they pass each other (:mod:`relay.siblings`); set by the supervisor for
    its workers, never from the environment. ``None``: no affinity (a single relay)."""
    data_dir: Path = field(default_factory=lambda: Path(".fast-shoot"))
    public_url: str | None = None
    """Origin used in join links and QR codes; by default the request's own origin."""
    idle_timeout_s: float = 300.0
    """A shoot nobody is connected to is unloaded after this long (it stays in Redis)."""
    hello_timeout_s: float = HELLO_TIMEOUT_S
    ws_ping_interval_s: float = PING_INTERVAL_S
    """The relay pings every WebSocket this often (see :attr:`read_timeout_s` and
    :mod:`sync.heartbeat`)."""
    read_timeout_s: float = PONG_TIMEOUT_S
    """A WebSocket whose ping is unanswered this long is closed (a phone that lost its
    network, or a client that stopped reading); also how long an HTTP connection may stay
    silent, and how long the relay waits for the answer to its close."""
    subscriber_queue: int = 256
    """Frames buffered per subscriber before it is resynced (a slow phone never stalls
    the others, and its memory stays bounded)."""
    compact_every: int = 500
    """Log entries after which a shoot's snapshot is rewritten and the log trimmed."""
    shutdown_grace_s: float = 5.0
    """How long shutdown waits for sessions to close, and then for shoots to flush."""
    answer_timeout_s: float = 10.0
    """Longest an HTTP request waits for a shoot's actor before answering 503."""
    lease_s: float = 3.0
    """Length of a shoot's ownership lease in Redis (renewed every third of it): how long
    a shoot waits, at most, before another instance takes over from a dead owner."""
    max_archers: int = MAX_ARCHERS_PER_SHOOT
    max_document_bytes: int = MAX_DOCUMENT_BYTES
    writes_burst: int = WRITES_BURST
    writes_per_s: float = WRITES_PER_S
    """Writes one connection may send at once, then per second (more get ``rate_limited``).
    Ten a second is far more than an archer scores; the benchmark's capacity ramp lifts
    it to offer a thousand writes a second to one shoot from 50 connections."""
    shoot_creates_burst: int = 10
    shoot_creates_per_hour: float = 20.0
    """Shoots one client address may create at once, then per hour after that. Every shoot
    holds one of 9,000 codes until its day ends; a club creates a handful a day, while
    taking every code from one address at 20 an hour would take more than 18 days."""
    proxy_client_header: str | None = None
    """The header a trusted reverse proxy puts the client's address in (``Fly-Client-IP``,
    ``X-Forwarded-For``); ``None`` ignores such headers, which any client can forge."""
    proxy_hops: int = 1
    """How many proxies of ours append to that header; the address is the one this many
    entries from the right (entries further left were written by the client)."""
    proxy_trusted_peers: tuple[str, ...] = ()
    """Networks (CIDR) the proxy connects from; the header is believed only from them.
    Empty: from any peer (the relay must then be reachable through the proxy alone)."""
    push_services: tuple[str, ...] = DEFAULT_PUSH_SERVICES
    """Origins of the push services the relay may send notices to (see
    :mod:`relay.push.services`); a subscription to anything else is refused."""
    push_vapid_private_key: str | None = None
    """The VAPID private key (raw P-256, base64url); ``None``: one generated once and
    shared by every instance through Redis."""
    push_subject: str | None = None
    """The VAPID contact (``mailto:`` or ``https:``) push services see."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings; raises :class:`ConfigError` naming a variable it cannot use."""
        env = os.environ if env is None else env
        defaults = cls()
        redis_url = env.get("REDIS_URL") or None
        embedded = _flag(env, "FAST_SHOOT_EMBEDDED_REDIS", defaults.embedded_redis)
        if redis_url is None and not embedded:
            raise ConfigError(
                "REDIS_URL is required: FAST_SHOOT_EMBEDDED_REDIS=0 says not to start a "
                "redis-server here. Set REDIS_URL=redis://host:6379/0 (a secret, never in a "
                "committed file)."
            )
        return cls(
            host=env.get("HOST", defaults.host),
            port=_port(env, "PORT", defaults.port),
            redis_url=redis_url,
            embedded_redis=embedded,
            workers=_positive_int(env, "WEB_CONCURRENCY", defaults.workers),
            data_dir=Path(env.get("FAST_SHOOT_DATA_DIR", ".fast-shoot")),
            public_url=(env.get("PUBLIC_URL") or None),
            idle_timeout_s=_float(env, "SHOOT_IDLE_TIMEOUT_S", defaults.idle_timeout_s),
            lease_s=_positive_float(env, "SHOOT_LEASE_S", defaults.lease_s),
            ws_ping_interval_s=_float(env, "WS_PING_INTERVAL_S", defaults.ws_ping_interval_s),
            read_timeout_s=_float(env, "READ_TIMEOUT_S", defaults.read_timeout_s),
            shoot_creates_burst=_positive_int(
                env, "SHOOT_CREATES_BURST", defaults.shoot_creates_burst
            ),
            shoot_creates_per_hour=_positive_float(
                env, "SHOOT_CREATES_PER_HOUR", defaults.shoot_creates_per_hour
            ),
            proxy_client_header=(env.get("PROXY_CLIENT_HEADER", "").strip() or None),
            proxy_hops=_positive_int(env, "PROXY_HOPS", defaults.proxy_hops),
            proxy_trusted_peers=_networks(env, "PROXY_TRUSTED_PEERS"),
            push_services=_push_services(env),
            push_vapid_private_key=_vapid_key(env),
            push_subject=_push_subject(env),
        )
