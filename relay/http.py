"""The HTTP side of the relay: the JSON API, QR codes, health and metrics.

Every error is ``{"error": {"code": ..., "message": ...}}`` with a fitting status, raised
as :class:`ApiError` and rendered in one place. Lookups by code (join, read, QR) count
unknown codes against the caller's address, like WebSocket hellos do; creating shoots is
throttled per address too (every shoot holds one of 9,000 codes for the rest of its day).
Bodies are read within a size cap (:mod:`relay.body`); QR codes render off the event loop
(:mod:`relay.qr`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import uuid
from typing import Any

import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sync.access import archer_access
from sync.clock import Stamp
from sync.codec import register_to_wire
from sync.errors import LimitExceeded, SyncError
from sync.models import (
    ArcherState,
    Profile,
    Shoot,
    shoot_expiry,
    validate_code,
    validate_name,
    validate_state,
    validate_title,
)
from sync.register import Register
from sync.rounds import RoundInfo, all_rounds, display_order

from .actor import (
    AddArcher,
    ForgetArcher,
    Read,
    Reply,
    ShootUnavailable,
    ShootView,
    Submit,
    WriteResult,
    wall_ms,
)
from .auth import AccessDenied, Throttled
from .body import BodyRejected, read_json_object
from .context import RelayContext
from .credentials import hash_token, new_token
from .names import NameTaken, claim_name, release_name
from .push.routes import push_routes
from .qr import QrBusy, QrCodes
from .refusals import REFUSALS, refusal_for
from .registry import DECODING_ERRORS, ShootExpired, UnknownShoot
from .store import ArcherRecord, NoCodeAvailable, StoreUnavailable
from .throttle import AddressThrottle, CreationThrottled
from .web import no_such_page, web_routes

__all__ = ["ApiError", "build_http_app"]

#: A Host header the relay will put into links: a host name or IP literal, maybe a port.
_HOST = re.compile(
    r"(?:[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?"
)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _api_error(exc: Exception) -> ApiError:
    """The single place where the relay's exceptions become HTTP errors."""
    match exc:
        case ApiError():
            return exc
        case LimitExceeded():
            return ApiError(409, exc.code, exc.message)
        case SyncError():
            return ApiError(400, exc.code, exc.message)
        case BodyRejected():
            return ApiError(exc.status, exc.code, exc.message)
        case NoCodeAvailable():
            return ApiError(503, "no_code_available", str(exc))
        case QrBusy():
            message = "Too many QR codes are being drawn; try again in a moment."
            return ApiError(503, "busy", message, {"Retry-After": "1"})
    known = refusal_for(exc)
    if known is None:
        raise exc
    headers = None
    if isinstance(exc, Throttled):
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    return ApiError(known.http_status, known.code, known.message, headers)


def _error_response(error: ApiError) -> JSONResponse:
    body = {"error": {"code": error.code, "message": error.message}}
    return JSONResponse(body, status_code=error.status, headers=error.headers)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _json_body(request: Request) -> dict[str, Any]:
    return await read_json_object(request)


def _text(data: dict[str, Any], name: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"Field {name!r} must be a string.")
    return value


def _public_origin(relay: RelayContext) -> str | None:
    return relay.settings.public_url.rstrip("/") if relay.settings.public_url else None


def _origin(relay: RelayContext, request: Request) -> str:
    """``PUBLIC_URL``, or else the request's own origin, whose Host must look like one."""
    public = _public_origin(relay)
    if public is not None:
        return public
    host = request.headers.get("host") or request.url.netloc  # raw: the URL would mend it
    if len(host) > 260 or not _HOST.fullmatch(host):
        raise ApiError(400, "invalid_host", "The Host header is not a valid host name.")
    return f"{request.url.scheme}://{host}"


def shoot_json(shoot: Shoot, origin: str) -> dict[str, Any]:
    return {
        "code": shoot.code,
        "shoot_id": shoot.shoot_id,
        "title": shoot.title,
        "creator": shoot.creator,
        "created_ms": shoot.created_ms,
        "expires_ms": shoot.expires_ms,
        "time_zone": shoot.time_zone,
        "join_url": f"{origin}/join/{shoot.code}",
        "viewer_url": f"{origin}/view/{shoot.code}",
        "qr_svg_url": f"{origin}/api/shoots/{shoot.code}/qr.svg",
        "qr_png_url": f"{origin}/api/shoots/{shoot.code}/qr.png",
    }


async def _find_shoot(relay: RelayContext, request: Request, *, probation: bool = False) -> Shoot:
    """The shoot named in the path, live or ended but still kept (throttled).

    ``probation`` is :meth:`JoinThrottle.screen`'s answer for a request the caller has
    already screened (one with credentials); any failure then answers 429.
    """
    address = _client(request)
    if not probation:
        relay.throttle.check(address)
    code = validate_code(request.path_params["code"])
    try:
        shoot = await relay.store.call(relay.store.load_meta, code)
    except DECODING_ERRORS as exc:
        raise relay.registry.unreadable(code, exc) from exc
    if shoot is None:
        relay.throttle.failed(address, probation=probation)
        raise UnknownShoot(code)
    return shoot


async def _live_view(relay: RelayContext, shoot: Shoot) -> ShootView:
    """A live shoot's view: from its actor here, or, when another relay instance owns it,
    from what Redis holds (durable, so never ahead of what that owner acknowledged)."""
    if not relay.registry.serves(shoot.code):
        holder = await relay.store.call(relay.store.lease_holder, shoot)
        if holder is not None and not holder.endswith(f":{relay.registry.instance}"):
            try:
                view = await relay.ended.durable_view(shoot)
            except DECODING_ERRORS as exc:
                raise relay.registry.unreadable(shoot.code, exc) from exc
            if view is None:
                raise ShootExpired(shoot.code)  # its code went to a newer shoot meanwhile
            return view
    read = Read()
    return await relay.registry.request(shoot.code, read, read.reply)


async def _live_shoot(relay: RelayContext, request: Request, *, probation: bool = False) -> Shoot:
    """The shoot named in the path, checked for existence and expiry (throttled)."""
    shoot = await _find_shoot(relay, request, probation=probation)
    if shoot.expires_ms <= wall_ms():
        if probation:
            raise relay.throttle.error(_client(request))
        raise ShootExpired(shoot.code)
    return shoot


def _passes_json(info: RoundInfo) -> list[dict[str, Any]]:
    """Each pass of a round: its arrows, the values allowed and the top ring's value."""
    passes, first = [], 0
    for arrows, _system in info.passes:
        passes.append(
            {
                "arrows": arrows,
                "values": display_order(info.allowed_at(first)),
                "gold": info.gold_value(first),
            }
        )
        first += arrows
    return passes


def _name_taken(name: str, asked: str) -> ApiError:
    """Two archers with one name would be indistinguishable on every leaderboard."""
    return ApiError(
        409,
        "name_taken",
        f"An archer called {name!r} is already in this shoot; "
        f"add an initial to tell you apart, e.g. {asked + ' B'!r}.",
    )


def build_http_app(relay: RelayContext) -> Starlette:
    settings = relay.settings
    creations = AddressThrottle(
        settings.shoot_creates_burst,
        settings.shoot_creates_per_hour / 3600,
        error=CreationThrottled,
    )
    qr_codes = QrCodes(_public_origin(relay))

    async def create_shoot(request: Request) -> Response:
        data = await _json_body(request)
        creator = validate_name(_text(data, "creator"))
        title = validate_title(_text(data, "title", ""))
        time_zone = _text(data, "time_zone", "UTC")
        now = wall_ms()
        expires = shoot_expiry(now, time_zone)
        origin = _origin(relay, request)
        creations.take(_client(request))  # only requests that would create a shoot count

        def make(code: str) -> Shoot:
            return Shoot(code, uuid.uuid4().hex, title, creator, now, expires, time_zone)

        shoot = await relay.store.call(relay.store.create_shoot, make)
        return JSONResponse(shoot_json(shoot, origin), status_code=201)

    async def join_shoot(request: Request) -> Response:
        data = await _json_body(request)
        address = _client(request)
        # Only failures count against the address; once it has used them up, only an
        # archer's own device (archer id + token) is still let in (see relay.auth).
        credentialed = "archer_id" in data
        probation = relay.throttle.screen(address, credentialed=credentialed)
        shoot = await _live_shoot(relay, request, probation=probation)
        if credentialed:  # another device of an archer who has joined
            archer_id, token = _text(data, "archer_id"), _text(data, "token")
            record = await relay.store.call(relay.store.get_archer, shoot, archer_id)
            known = None if record is None else record.token_sha256
            if archer_access(token, known) == "denied":
                relay.throttle.failed(address, probation=probation)
                raise AccessDenied(archer_id)
            return JSONResponse(
                {
                    "archer_id": archer_id,
                    "token": token,
                    "shoot": shoot_json(shoot, _origin(relay, request)),
                }
            )
        state = ArcherState(
            name=validate_name(_text(data, "name")),
            round=_text(data, "round"),
            profile=Profile(
                _text(data, "bowstyle", "recurve"),
                _text(data, "age_group", "adult"),
                _text(data, "gender", "open"),
            ),
        )
        validate_state(state)
        archer_id, token = secrets.token_urlsafe(9), new_token()
        record = ArcherRecord(hash_token(token), state.name, wall_ms())
        # The name is claimed in Redis first, atomically, so two joins of one name
        # (through this relay or another) cannot both pass (relay.names).
        read = Read()
        view = await relay.registry.request(shoot.code, read, read.reply)
        try:
            claim = await claim_name(relay.store, view, state.name, archer_id, wall_ms())
        except NameTaken as exc:
            raise _name_taken(exc.name, state.name) from exc
        try:
            # The shoot's actor admits the archer first (it is where the archer limit holds
            # exactly; a full shoot refuses with nothing stored), then the record is stored.
            admit = AddArcher(archer_id, record)
            try:
                await relay.registry.request(shoot.code, admit, admit.reply)
                await relay.store.call(relay.store.add_archer, shoot, archer_id, record)
            except (ShootUnavailable, StoreUnavailable):
                # No token was handed out, so the seat is only freed: best effort, briefly.
                with contextlib.suppress(*REFUSALS), trio.move_on_after(1):
                    await relay.registry.send(shoot.code, ForgetArcher(archer_id))
                raise
        except BaseException:  # refused, failed or cancelled: nobody got the name
            await release_name(relay.store, shoot, claim)
            raise
        # Tell the shoot again, now that the record is stored: if its actor restarted
        # in between, the new one loaded Redis before the record was there (a repeat
        # for the same actor changes nothing, and its answer is not needed).
        with contextlib.suppress(*REFUSALS):
            await relay.registry.send(shoot.code, AddArcher(archer_id, record))
        # The archer appears on the leaderboard at once. The smallest possible stamp
        # means any write from the archer's own device wins over this one. The join
        # stands even if this write is not durable in time: the device's first write
        # carries the state.
        reply: Reply[WriteResult] = Reply()
        initial = Register(archer_id, Stamp(0, 0, "join"), state)
        with contextlib.suppress(*REFUSALS):
            await relay.registry.send(shoot.code, Submit(initial, reply=reply))
        with contextlib.suppress(*REFUSALS), trio.move_on_after(2):
            await reply.wait()
        body = {
            "archer_id": archer_id,
            "token": token,
            "shoot": shoot_json(shoot, _origin(relay, request)),
        }
        return JSONResponse(body)

    async def read_shoot(request: Request) -> Response:
        shoot = await _find_shoot(relay, request)
        ended = shoot.expires_ms <= wall_ms()
        if ended:  # the final results, kept for a day after the end
            final = await relay.ended.view(shoot)
            if final is None:
                raise ShootExpired(shoot.code)
            view = final
        else:
            view = await _live_view(relay, shoot)
        archers = {
            archer_id: register_to_wire(register)["state"]
            for archer_id, register in view.registers.items()
        }
        body = {
            "shoot": shoot_json(view.shoot, _origin(relay, request)),
            "ended": ended,
            "leaderboard": view.leaderboard.to_dict(),
            "archers": archers,
        }
        return JSONResponse(body)

    async def qr(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in ("svg", "png"):
            raise ApiError(404, "not_found", "QR codes come as qr.svg or qr.png.")
        shoot = await _live_shoot(relay, request)
        image = await qr_codes.image(kind, shoot.code, _origin(relay, request))
        media_type = "image/svg+xml" if kind == "svg" else "image/png"
        return Response(image, media_type=media_type)

    async def rounds(request: Request) -> Response:
        body = [
            {
                "codename": info.codename,
                "name": info.name,
                "location": info.location,
                "total_arrows": info.total_arrows,
                "end_size": info.end_size,
                "max_score": info.max_score,
                "values": display_order(info.allowed_at(0)),
                # Per pass, for clients that score and rank (a round may change faces).
                "tie_break": info.tie_break,
                "passes": _passes_json(info),
            }
            for info in all_rounds()
        ]
        return JSONResponse(body, headers={"Cache-Control": "public, max-age=3600"})

    async def health(request: Request) -> Response:
        try:
            with trio.fail_after(1):
                redis_ok = await relay.store.call(relay.store.ping)
        except (StoreUnavailable, trio.TooSlowError):
            redis_ok = False
        degraded = relay.metrics.redis_degraded_shoots
        status = "ok" if redis_ok and not degraded else "degraded"
        body = {
            "status": status,
            "redis": redis_ok,
            "degraded_shoots": degraded,
            "live_shoots": relay.registry.live_shoots,
            "connections": relay.metrics.connections,
            "followed_shoots": relay.metrics.followed_shoots,
            # Which process answered: one of several workers or instances behind one address.
            "instance": relay.registry.instance,
            "pid": os.getpid(),
        }
        return JSONResponse(body, status_code=200 if status == "ok" else 503)

    async def metrics(request: Request) -> Response:
        text = relay.metrics.render()
        if relay.push is not None:
            text += relay.push.sender.statistics.render()
        return Response(text, media_type="text/plain; version=0.0.4")

    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)  # type: ignore[no-any-return]
            except Exception as exc:
                return _error_response(_api_error(exc))

        return endpoint

    routes = [
        Route("/api/shoots", guarded(create_shoot), methods=["POST"]),
        Route("/api/shoots/{code}/join", guarded(join_shoot), methods=["POST"]),
        Route("/api/shoots/{code}", guarded(read_shoot), methods=["GET"]),
        Route("/api/shoots/{code}/qr.{kind:str}", guarded(qr), methods=["GET"]),
        Route("/api/rounds", guarded(rounds), methods=["GET"]),
        *push_routes(relay, guarded, _live_shoot),
        Route("/health", guarded(health), methods=["GET"]),
        Route("/metrics", guarded(metrics), methods=["GET"]),
        *web_routes(),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _routing_error})


async def _routing_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, a method the route does not take) in the
    API's error format rather than its plain text; a browser opening a path that does not
    exist gets the app instead, which says so (:func:`relay.web.no_such_page`)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        page = no_such_page(request)
        if page is not None:
            return page
        code, message = "not_found", "There is nothing at this address."
    elif exc.status_code == 405:
        code, message = "method_not_allowed", f"This address does not take {request.method}."
    else:
        code, message = "http_error", exc.detail
    return _error_response(ApiError(exc.status_code, code, message, dict(exc.headers or {})))
