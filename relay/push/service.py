"""Web Push wired together for the relay: settings in, a running sender out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import redis
import trio

from ..config import Settings
from ..store import RedisStore
from .keys import KeyHolder, VapidKeys, parse_private_key, subject_signs
from .sender import PushSender
from .services import PushServices
from .subscriptions import SubscriptionStore

__all__ = ["PushService", "open_push"]

#: The longest one request to a push service may take, connecting included.
PUSH_TIMEOUT_S: Final = 10.0
#: Requests to push services in flight at once, over all shoots.
PUSH_CONCURRENCY: Final = 8


@dataclass(frozen=True, slots=True)
class PushService:
    keys: KeyHolder
    subscriptions: SubscriptionStore
    services: PushServices
    sender: PushSender


def subject_for(settings: Settings) -> str:
    """The VAPID contact: ``PUSH_SUBJECT``, else an https ``PUBLIC_URL``, else a
    placeholder that push services accept (set one in production: it is how a push
    service's operator reaches you before blocking a misbehaving sender)."""
    if settings.push_subject:
        return settings.push_subject
    public = (settings.public_url or "").rstrip("/")
    if public.startswith("https://") and subject_signs(public):  # not one with a port
        return public
    return "mailto:fast-shoot@localhost"


@asynccontextmanager
async def open_push(store: RedisStore, settings: Settings) -> AsyncIterator[PushService]:
    """Push, with its sender running until the block ends."""
    client = redis.Redis.from_url(
        store.url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=10
    )
    configured = None
    if settings.push_vapid_private_key:
        configured = VapidKeys(parse_private_key(settings.push_vapid_private_key))
    keys = KeyHolder(store, client, configured)
    subscriptions = SubscriptionStore(client)
    services = PushServices(settings.push_services)
    sender = PushSender(
        store,
        subscriptions,
        keys,
        services=services,
        subject=subject_for(settings),
        timeout_s=PUSH_TIMEOUT_S,
        concurrency=PUSH_CONCURRENCY,
    )
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender.run)
            yield PushService(keys, subscriptions, services, sender)
            nursery.cancel_scope.cancel()
    finally:
        client.close()
