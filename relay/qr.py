"""QR codes of a shoot's join link: SVG for pages, PNG for sharing.

qrcode needs an explicit image factory: without Pillow, ``qrcode.make()`` fails even
though pypng is installed. The SVG factory has no dependency; the PNG one uses pypng.
"""

from __future__ import annotations

import io
from functools import lru_cache

import qrcode
import qrcode.image.pure
import qrcode.image.svg

__all__ = ["qr_png", "qr_svg"]


@lru_cache(maxsize=256)
def qr_svg(text: str) -> bytes:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


@lru_cache(maxsize=256)
def qr_png(text: str) -> bytes:
    image = qrcode.make(text, image_factory=qrcode.image.pure.PyPNGImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()
