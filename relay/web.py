"""Serving the browser client: the app shell on every app route, hashed files, the worker.

The files come from ``relay/static/dist``, built at install time (``hatch_build.py``).
``manifest.json`` there maps logical names (``main.js``, ``app.css``) to content-hashed
ones; ``index.html`` is a template whose ``{{main.js}}``-style placeholders become
``/static/<hashed name>``. Every app route (``/``, ``/join/{code}``, ``/shoot/{code}``,
``/view/{code}``, ``/results/{code}``) answers the same shell, and the client reads ``location.pathname``.
A page load of a path the relay does not have gets the shell too, with status 404
(:func:`no_such_page`, from the relay's 404 handler): the app says there is no such page.

Caching: hashed files never change, so they are ``immutable`` for a year; the shell and
``/sw.js`` are ``no-cache`` so a new build is picked up on the next load. Files are read
once per build (the manifest's mtime tells a rebuild) and gzip-compressed once, so a
phone downloads the compressed bytes.

A missing or broken build is never a crash: the app routes answer 503 with a page that
says the web client was not built and how to build it; the JSON API keeps working.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

__all__ = ["DIST", "WebBuild", "load_build", "no_such_page", "web_routes"]

DIST: Final = Path(__file__).parent / "static" / "dist"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
NO_CACHE: Final = "no-cache"
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
_SAFE_NAME: Final = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9]+)+$")
_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".map": "application/json",
}
_COMPRESSIBLE: Final = (".js", ".css", ".svg", ".json", ".webmanifest", ".map", ".html")

NOT_BUILT_PAGE: Final = (
    "<!doctype html><html lang=en><meta charset=utf-8>"
    "<meta name=viewport content='width=device-width, initial-scale=1'>"
    "<title>fast-shoot: web client not built</title>"
    "<h1>The web client is not built</h1>"
    "<p>This relay's JSON API and WebSocket work, but the browser app was not built when "
    "the package was installed. Reinstall with <code>pip install -e .</code> (without "
    "<code>FAST_SHOOT_SKIP_WEB_BUILD</code>), or run <code>python hatch_build.py</code> in "
    "the source tree.</p></html>"
)


@dataclass(frozen=True, slots=True)
class Asset:
    """One built file, held in memory with its gzip form (when that is smaller)."""

    body: bytes
    gzipped: bytes | None
    media_type: str


@dataclass(frozen=True, slots=True)
class WebBuild:
    """A complete build: the rendered shell and every servable file by name."""

    shell: bytes
    assets: dict[str, Asset]
    manifest: dict[str, str]
    shell_asset: Asset


def _asset(path: Path) -> Asset:
    body = path.read_bytes()
    media_type = _TYPES.get(path.suffix, "application/octet-stream")
    gzipped = None
    if path.suffix in _COMPRESSIBLE:
        packed = gzip.compress(body, compresslevel=9, mtime=0)
        gzipped = packed if len(packed) < len(body) else None
    return Asset(body, gzipped, media_type)


def render_shell(template: str, manifest: dict[str, str]) -> str:
    """Fill ``{{logical name}}`` placeholders with the hashed file's URL."""

    def url(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in manifest:
            raise ValueError(f"index.html names {name!r}, which the build did not produce")
        return f"/static/{manifest[name]}"

    return _PLACEHOLDER.sub(url, template)


def load_build(dist: Path) -> WebBuild | None:
    """Read a build from ``dist``; ``None`` when it is missing or incomplete."""
    try:
        raw = json.loads((dist / "manifest.json").read_text("utf-8"))
        manifest = {str(k): str(v) for k, v in raw.items()}
        template = (dist / manifest["index.html"]).read_text("utf-8")
        shell = render_shell(template, manifest).encode("utf-8")
        assets = {
            path.name: _asset(path)
            for path in dist.iterdir()
            if path.is_file() and _SAFE_NAME.match(path.name) and path.name != "manifest.json"
        }
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    page = Asset(shell, gzip.compress(shell, compresslevel=9, mtime=0), "text/html; charset=utf-8")
    return WebBuild(shell, assets, manifest, page)


class _BuildCache:
    """The current build, reloaded when ``manifest.json`` changes (a rebuild swaps it in)."""

    def __init__(self, dist: Path) -> None:
        self.dist = dist
        self._stamp: float | None = None
        self._build: WebBuild | None = None

    def get(self) -> WebBuild | None:
        try:
            stamp: float | None = (self.dist / "manifest.json").stat().st_mtime
        except OSError:
            stamp = None
        if stamp != self._stamp or (stamp is not None and self._build is None):
            self._build = load_build(self.dist) if stamp is not None else None
            self._stamp = stamp
        return self._build


_CACHES: dict[Path, _BuildCache] = {}


def _cache_for(dist: Path) -> _BuildCache:
    """One cache per build folder, shared by the routes and :func:`no_such_page`."""
    cache = _CACHES.get(dist)
    if cache is None:
        cache = _CACHES[dist] = _BuildCache(dist)
    return cache


def no_such_page(request: Request, dist: Path = DIST) -> Response | None:
    """The app's shell with status 404 for a browser opening a path the relay does not
    have (a mistyped or old link): the app says there is no such page and offers the home
    screen. ``None`` for anything else (the JSON API, scripts, other methods), which keeps
    the API's JSON 404."""
    page_load = request.method in ("GET", "HEAD") and "text/html" in request.headers.get(
        "accept", ""
    )
    if not page_load or request.url.path.startswith("/api/"):
        return None
    build = _cache_for(dist).get()
    if build is None:
        return None
    response = _send(request, build.shell_asset, NO_CACHE)
    response.status_code = 404
    return response


def _send(request: Request, asset: Asset, cache_control: str) -> Response:
    headers = {
        "Cache-Control": cache_control,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    accepts_gzip = "gzip" in request.headers.get("accept-encoding", "")
    if asset.gzipped is not None and accepts_gzip:
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def web_routes(dist: Path = DIST) -> list[Route]:
    """The browser client's routes, to be added to the relay's HTTP app."""
    cache = _cache_for(dist)

    async def shell(request: Request) -> Response:
        build = cache.get()
        if build is None:
            return HTMLResponse(
                NOT_BUILT_PAGE, status_code=503, headers={"Cache-Control": NO_CACHE}
            )
        return _send(request, build.shell_asset, NO_CACHE)

    async def static(request: Request) -> Response:
        build = cache.get()
        name = request.path_params["name"]
        asset = build.assets.get(name) if build is not None else None
        if asset is None or name in ("index.html", "sw.js"):
            return Response("Not Found", status_code=404, media_type="text/plain")
        return _send(request, asset, IMMUTABLE)

    async def service_worker(request: Request) -> Response:
        build = cache.get()
        asset = build.assets.get("sw.js") if build is not None else None
        if asset is None:
            return Response("Not Found", status_code=404, media_type="text/plain")
        response = _send(request, asset, NO_CACHE)
        response.headers["Service-Worker-Allowed"] = "/"
        return response

    return [
        Route("/", shell, methods=["GET", "HEAD"]),
        Route("/join/{code}", shell, methods=["GET", "HEAD"]),
        Route("/shoot/{code}", shell, methods=["GET", "HEAD"]),
        Route("/view/{code}", shell, methods=["GET", "HEAD"]),
        Route("/results/{code}", shell, methods=["GET", "HEAD"]),
        Route("/static/{name}", static, methods=["GET", "HEAD"]),
        Route("/sw.js", service_worker, methods=["GET", "HEAD"]),
    ]
