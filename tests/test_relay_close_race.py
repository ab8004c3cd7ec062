"""A client closing its socket as the relay closes it must not take the relay down.

Regression: hypercorn's trio server sent EOF outside its send lock, so a close reply
racing it raised ``BusyResourceError`` out of the connection handler and ended the whole
relay process (found by the browser tests: a browser drops the socket on the relay's fatal
``error`` frame just as the ``4410`` close follows). ``relay.hypercorn_patch`` fixes it.

The relay runs as its own process, as ``fast-shoot serve`` runs it: the race needs the
relay's tasks and the clients' to run truly side by side, which one shared event loop
does not do.
"""

from __future__ import annotations

from pathlib import Path

import trio
import trio_websocket

from sync.codec import encode
from sync.protocol import Hello
from tests.e2e.harness import Api, RelayProcess, end_the_day

#: Racing closes: the unpatched relay died within the first 100 in every run tried;
#: bounded so the test stays a few seconds long.
SOCKETS = 300
AT_ONCE = 20


async def _hello_then_close(ws_url: str, code: str) -> None:
    try:
        async with trio_websocket.open_websocket_url(ws_url) as ws:
            await ws.send_message(encode(Hello(code, "viewer", b"\x00", None, None)))
            await ws.get_message()  # the fatal `expired` error; the relay's close follows
            await ws.aclose(code=1000)  # close first, racing the relay's own close
    except (trio_websocket.ConnectionClosed, trio_websocket.HandshakeError, OSError):
        pass  # the relay's close won the race (or, unpatched, the relay is gone)


async def _race(ws_url: str, code: str) -> None:
    with trio.fail_after(60):
        for _ in range(SOCKETS // AT_ONCE):
            async with trio.open_nursery() as nursery:
                for _ in range(AT_ONCE):
                    nursery.start_soon(_hello_then_close, ws_url, code)


def test_clients_closing_as_the_relay_closes_do_not_kill_it(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "relay")
    relay.start()
    try:
        api = Api(relay.url)
        try:
            code = api.create_shoot()["code"]
            end_the_day(relay, code)  # every hello gets `expired`, then a 4410 close
            trio.run(_race, relay.url.replace("http://", "ws://") + "/ws", code)
            assert relay.process is not None
            assert relay.process.poll() is None, relay.log_path.read_text()[-3000:]
            assert api.http.get("/health").status_code == 200
        finally:
            api.close()
    finally:
        relay.stop()
