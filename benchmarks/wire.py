"""Bytes on the wire for one arrow, and writing a whole archer's register.

:func:`wire_bytes` measures what one subscriber receives when one arrow is scored in a
realistic shoot, next to the whole shoot's size (what the original app sent on every
arrow). :func:`score` writes one archer's register over a WebSocket and waits for its
ack; the CPU-per-write run fills its shoot with it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import trio

from sync.clock import Stamp
from sync.codec import decode_server, encode
from sync.models import ArcherState
from sync.protocol import Hello, Notice, Update, Welcome, Write
from sync.register import Register
from sync.rounds import Arrow

from .load import ROUND, ws_overhead
from .wsclient import ConnectionClosed, connect

if TYPE_CHECKING:
    from .scenarios import Bench

__all__ = ["score", "wire_bytes"]


def _register(archer: str, count: int) -> Register:
    """An archer with ``count`` arrows shot, stamped now by a realistic device id."""
    values: tuple[Arrow, ...] = ("X", 10, 9, 9, 8, 7)
    arrows = tuple(values[i % len(values)] for i in range(count))
    state = ArcherState(name="Archer", round=ROUND, arrows=arrows)
    return Register(archer, Stamp(time.time_ns() // 1_000_000, 0, "phone-3f9c"), state)


async def score(port: int, code: str, archer: str, token: str, arrows: int) -> None:
    """One archer's register with ``arrows`` arrows, written and acknowledged."""
    ws = await connect("127.0.0.1", port)
    try:
        await ws.send(encode(Hello(code, "archer", b"\x00", archer, token)))
        await ws.receive()  # the welcome: nothing may be sent before it
        await ws.send(encode(Write(1, _register(archer, arrows))))
        while b"dtypecack" not in await ws.receive():
            pass
    finally:
        await ws.aclose()


async def wire_bytes(bench: Bench, archers: int = 20, arrows: int = 36) -> None:
    """Bytes one subscriber receives for a one-arrow update, in a realistic shoot.

    ``archers`` archers have each shot ``arrows`` arrows; a viewer joins (its welcome
    is the whole shoot, what the original app sent on every arrow), then one archer
    scores one more arrow with a realistic device id.
    """
    assert bench.relay is not None
    bench.progress.step("bytes on the wire")
    (code, joined), *_ = await bench.create_shoots(1, archers)
    for archer, token in joined:
        await score(bench.relay.port, code, archer, token, arrows)
    viewer = await connect("127.0.0.1", bench.relay.port)
    try:
        await viewer.send(encode(Hello(code, "viewer")))
        welcome = decode_server(first := await viewer.receive())
        assert isinstance(welcome, Welcome)
        await score(bench.relay.port, code, *joined[0], arrows + 1)
        updates: list[tuple[int, int]] = []
        notices: list[int] = []
        with trio.move_on_after(1.0):
            while True:
                frame = await viewer.receive()
                message = decode_server(frame)
                if isinstance(message, Update):
                    updates.append((len(frame), len(message.update)))
                elif isinstance(message, Notice):
                    notices.append(len(frame))
    except ConnectionClosed as exc:
        raise RuntimeError(f"the relay closed the viewer ({exc.code})") from exc
    finally:
        await viewer.aclose()
    async with httpx.AsyncClient(base_url=bench.relay.http_url) as http:
        shoot_json = await http.get(f"/api/shoots/{code}")
    update_frame = sum(size + ws_overhead(size) for size, _ in updates)
    notice_frames = sum(size + ws_overhead(size) for size in notices)
    bench.results["wire"] = {
        "archers": archers,
        "arrows_each": arrows,
        "update_frames": len(updates),
        "update_ws_bytes": update_frame,
        "update_cbor_bytes": sum(size for size, _ in updates),
        "update_yjs_bytes": sum(yjs for _, yjs in updates),
        "notice_frames": len(notices),
        "notice_ws_bytes": notice_frames,
        "per_subscriber_ws_bytes": update_frame + notice_frames,
        "whole_shoot_yjs_bytes": len(welcome.update),
        "whole_shoot_welcome_ws_bytes": len(first) + ws_overhead(len(first)),
        "whole_shoot_json_bytes": len(shoot_json.content),
    }
    bench.progress.finish_step()
