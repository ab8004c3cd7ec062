"""The relay notices a peer that went silent (a phone that lost signal mid-session)."""

from __future__ import annotations

import httpx
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request

from relay.config import Settings
from relay.server import serve_relay
from sync.codec import encode
from sync.protocol import Hello
from tests.wire import create_shoot


async def _connections(http: httpx.AsyncClient) -> int:
    count: int = (await http.get("/health")).json()["connections"]
    return count


async def test_a_silent_peer_is_evicted(redis_url: str, nursery: trio.Nursery) -> None:
    settings = Settings(
        host="127.0.0.1", port=0, redis_url=redis_url, ws_ping_interval_s=0.5, read_timeout_s=1
    )
    url: str = await nursery.start(serve_relay, settings)
    host, port = url.removeprefix("http://").split(":")
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            stream = await trio.open_tcp_stream(host, int(port))
            # A real WebSocket handshake and hello, then silence: no reads, no pongs.
            ws = WSConnection(ConnectionType.CLIENT)
            await stream.send_all(ws.send(Request(host=f"{host}:{port}", target="/ws")))
            while True:
                ws.receive_data(await stream.receive_some(4096))
                if any(isinstance(event, AcceptConnection) for event in ws.events()):
                    break
            await stream.send_all(ws.send(BytesMessage(encode(Hello(code, "viewer")))))
            while await _connections(http) != 1:
                await trio.sleep(0.05)
            silent_since = trio.current_time()
            while await _connections(http) != 0:
                await trio.sleep(0.05)
            # Evicted by the relay's own heartbeat, within a few ping intervals.
            assert trio.current_time() - silent_since < 5
            await stream.aclose()
