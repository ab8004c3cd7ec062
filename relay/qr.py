"""QR codes of a shoot's join link: SVG for pages, PNG for sharing.

Rendering one costs tens of milliseconds of pure-Python CPU, which on the Trio thread would
stall every shoot's fan-out for that long. So renders run on a worker thread, one at a
time: the render holds the GIL, so a second thread would not render any faster, it would
only take a larger share of the interpreter from the event loop. At most
:data:`MAX_WAITING_RENDERS` requests wait for it; more are refused with ``QrBusy`` (503)
rather than queueing without bound. Results are cached.

The cache is keyed by shoot code and image kind, and holds only codes pointing at the
configured public origin (``PUBLIC_URL``). Without one, join links use each request's own
origin (its ``Host`` header), which a client chooses freely: caching those would let one
client's Host fill the cache and evict everyone else's images, or, keyed by code alone,
serve its links to others. Such images are rendered each time instead. The cache is an LRU
of at most :data:`MAX_CACHED` images (a few MB).

qrcode needs an explicit image factory: without Pillow, ``qrcode.make()`` fails even
though pypng is installed. The SVG factory has no dependency; the PNG one uses pypng.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import qrcode
import qrcode.image.pure
import qrcode.image.svg
import trio

__all__ = [
    "MAX_CACHED",
    "MAX_CONCURRENT_RENDERS",
    "MAX_WAITING_RENDERS",
    "QrBusy",
    "QrCodes",
    "QrStatistics",
    "qr_png",
    "qr_svg",
]

Kind = Literal["svg", "png"]
Renderer = Callable[[Kind, str], bytes]

#: Images kept: two kinds for each of the busiest codes.
MAX_CACHED: Final = 512
#: Renders running at once on worker threads (more would only contend for the GIL).
MAX_CONCURRENT_RENDERS: Final = 1
#: Requests that may wait for a render; more are refused.
MAX_WAITING_RENDERS: Final = 32


class QrBusy(Exception):
    """Too many QR codes are waiting to be rendered; try again in a moment."""


def qr_svg(text: str) -> bytes:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def qr_png(text: str) -> bytes:
    image = qrcode.make(text, image_factory=qrcode.image.pure.PyPNGImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def render(kind: Kind, text: str) -> bytes:
    """Render synchronously (called on a worker thread)."""
    return qr_svg(text) if kind == "svg" else qr_png(text)


@dataclass(frozen=True, slots=True)
class QrStatistics:
    cached: int
    """Images in the cache now."""
    hits: int
    renders: int


class QrCodes:
    """Join-link QR codes, rendered off the event loop and cached for the public origin."""

    def __init__(
        self,
        public_origin: str | None,
        *,
        max_cached: int = MAX_CACHED,
        max_concurrent: int = MAX_CONCURRENT_RENDERS,
        max_waiting: int = MAX_WAITING_RENDERS,
        renderer: Renderer = render,
    ) -> None:
        self._max_waiting = max_waiting
        self._public_origin = public_origin
        self._max_cached = max_cached
        self._limiter = trio.CapacityLimiter(max_concurrent)
        self._render = renderer
        self._cache: OrderedDict[tuple[str, Kind], bytes] = OrderedDict()
        self._hits = 0
        self._renders = 0

    def statistics(self) -> QrStatistics:
        return QrStatistics(len(self._cache), self._hits, self._renders)

    async def image(self, kind: Kind, code: str, origin: str) -> bytes:
        """The QR image of ``{origin}/join/{code}``; cached only for the public origin."""
        key = (code, kind)
        cacheable = origin == self._public_origin
        if cacheable:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self._hits += 1
                return cached
        if self._limiter.statistics().tasks_waiting >= self._max_waiting:
            raise QrBusy
        self._renders += 1
        image = await trio.to_thread.run_sync(
            self._render, kind, f"{origin}/join/{code}", limiter=self._limiter
        )
        if cacheable:
            self._cache[key] = image
            self._cache.move_to_end(key)
            while len(self._cache) > self._max_cached:
                self._cache.popitem(last=False)
        return image
