"""The HTTP API of Web Push: the relay's public key, subscribing and unsubscribing a device.

- ``GET /api/push/key``: the VAPID public key a browser subscribes with.
- ``POST /api/shoots/{code}/push``: ``{"subscription": PushSubscription.toJSON(),
  "archer_id", "token"}`` (archer and token together, or neither for a viewer).
- ``DELETE /api/shoots/{code}/push``: ``{"endpoint": ...}``.

Bodies are read within :data:`MAX_PUSH_BODY_BYTES` and validated before anything is
stored; an endpoint that is not one of the allowed push services is refused here, with a
sentence saying so (:mod:`relay.push.services`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sync.models import Shoot

from ..auth import AccessDenied
from ..body import BodyRejected, read_json_object
from ..context import RelayContext
from ..credentials import token_matches
from ..store import StoreUnavailable
from .services import EndpointRefused
from .subscriptions import PushFull, parse_subscription

__all__ = ["MAX_PUSH_BODY_BYTES", "push_routes"]

#: A subscription is about 400 bytes of JSON; endpoints are at most 1,024 characters.
MAX_PUSH_BODY_BYTES: Final = 4096

Handler = Callable[[Request], Awaitable[Response]]
LiveShoot = Callable[..., Awaitable[Shoot]]


def _unavailable() -> StoreUnavailable:
    return StoreUnavailable("push notifications are not set up on this relay")


def push_routes(
    relay: RelayContext, guarded: Callable[[Handler], Any], live_shoot: LiveShoot
) -> list[Route]:
    """The routes; ``guarded`` renders errors as the API does, ``live_shoot`` finds the
    shoot in the path (throttled like every lookup by code)."""

    async def public_key(request: Request) -> Response:
        if relay.push is None:
            raise _unavailable()
        keys = await relay.push.keys.get()
        return JSONResponse({"public_key": keys.public_key})

    async def subscribe(request: Request) -> Response:
        if relay.push is None:
            raise _unavailable()
        data = await read_json_object(request, MAX_PUSH_BODY_BYTES)
        archer_id, token = data.get("archer_id"), data.get("token")
        if archer_id is not None and not isinstance(archer_id, str):
            raise BodyRejected(400, "invalid_field", "Field 'archer_id' must be a string.")
        try:
            subscription = parse_subscription(
                data.get("subscription"), relay.push.services, archer_id
            )
        except EndpointRefused as exc:
            raise BodyRejected(400, "push_endpoint_refused", str(exc)) from None
        shoot = await live_shoot(relay, request)
        if archer_id is not None:
            record = await relay.store.call(relay.store.get_archer, shoot, archer_id)
            if (
                record is None
                or not isinstance(token, str)
                or not token_matches(token, record.token_sha256)
            ):
                relay.throttle.failed(request.client.host if request.client else "unknown")
                raise AccessDenied(archer_id)
        try:
            await relay.store.call(relay.push.subscriptions.add, shoot, subscription)
        except PushFull as exc:
            raise BodyRejected(409, "push_full", str(exc)) from None
        return JSONResponse({"subscribed": True, "archer_id": archer_id}, status_code=201)

    async def unsubscribe(request: Request) -> Response:
        if relay.push is None:
            raise _unavailable()
        data = await read_json_object(request, MAX_PUSH_BODY_BYTES)
        endpoint = data.get("endpoint")
        if not isinstance(endpoint, str) or len(endpoint) > 2048:
            raise BodyRejected(400, "invalid_field", "Field 'endpoint' must be a string.")
        shoot = await live_shoot(relay, request)
        removed = await relay.store.call(relay.push.subscriptions.remove, shoot, endpoint)
        return JSONResponse({"unsubscribed": removed})

    return [
        Route("/api/push/key", guarded(public_key), methods=["GET"]),
        Route("/api/shoots/{code}/push", guarded(subscribe), methods=["POST"]),
        Route("/api/shoots/{code}/push", guarded(unsubscribe), methods=["DELETE"]),
    ]
