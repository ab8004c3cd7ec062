"""A fake camera for Chromium: a picture turned into a y4m video, in pure Python.

Chromium's ``--use-file-for-fake-video-capture`` plays a y4m file as the camera, and reads
the file again each time capture starts, so one browser serves every test: each writes
its picture to the same path before opening the camera.
"""

from __future__ import annotations

import io
from pathlib import Path

import png
import qrcode
import qrcode.image.pure

WIDTH, HEIGHT = 640, 480
FRAMES = 2


def _luma(png_bytes: bytes) -> bytes:
    """The picture's brightness, centred on a white 640x480 frame (nearest pixel)."""
    width, height, rows, _info = png.Reader(bytes=png_bytes).asRGBA8()
    pixels = [bytes(r) for r in rows]
    scale = min(1.0, (HEIGHT - 20) / height, (WIDTH - 20) / width)
    w, h = int(width * scale), int(height * scale)
    left, top = (WIDTH - w) // 2, (HEIGHT - h) // 2
    frame = bytearray(b"\xff" * (WIDTH * HEIGHT))
    for y in range(h):
        source = pixels[int(y / scale)]
        for x in range(w):
            i = int(x / scale) * 4
            r, g, b, a = source[i], source[i + 1], source[i + 2], source[i + 3]
            lum = (r * 299 + g * 587 + b * 114) // 1000
            frame[(top + y) * WIDTH + left + x] = (lum * a + 255 * (255 - a)) // 255
    return bytes(frame)


def write_camera(path: Path, png_bytes: bytes) -> None:
    """Make ``path`` a y4m video showing the PNG picture."""
    y = _luma(png_bytes)
    chroma = b"\x80" * ((WIDTH // 2) * (HEIGHT // 2))
    header = f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + (b"FRAME\n" + y + chroma + chroma) * FRAMES)


def qr_png_of(text: str) -> bytes:
    """A QR code of any text, as the relay draws its own."""
    image = qrcode.make(text, image_factory=qrcode.image.pure.PyPNGImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()
