"""A client flooding refused writes is throttled and closed; the shoot's others carry on.

The flooder keeps sending after the relay's close, so the test also guards the close
handshake of such a client: hypercorn stopped reading its socket once the session had
ended, and the connection never closed.
"""

from __future__ import annotations

import httpx
import pytest
import trio
import trio_websocket

from sync.codec import decode_server, encode
from sync.protocol import CLOSE_RATE_LIMITED, Ack, Error, Hello, Update, Welcome, Write
from tests.wire import create_shoot, join, peer, register

#: Writes the flooder sends; the relay must close it long before the last.
FLOOD = 3000


async def _flood(ws_url: str, hello: Hello, write: Write) -> tuple[list[Error], int | None, int]:
    """Send ``FLOOD`` copies of one write while reading; return errors, close code, sent."""
    errors: list[Error] = []
    sent = 0
    async with trio_websocket.open_websocket_url(ws_url) as ws:
        await ws.send_message(encode(hello))
        assert isinstance(decode_server(await ws.get_message()), Welcome)
        frame = encode(write)

        async def send_all() -> None:
            nonlocal sent
            try:
                for _ in range(FLOOD):
                    await ws.send_message(frame)
                    sent += 1
            except trio_websocket.ConnectionClosed:
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_all)
            try:
                while True:
                    message = decode_server(await ws.get_message())
                    if isinstance(message, Error):  # the shoot's updates come too
                        errors.append(message)
            except trio_websocket.ConnectionClosed as closed:
                close_code = closed.reason.code
            # The sender stops at its next send (never cancel it mid-frame: the close
            # handshake would follow half a frame).
    return errors, close_code, sent


@pytest.mark.parametrize("flooder", ["viewer", "other_archer"])
async def test_a_flood_of_refused_writes_is_closed_while_a_bystander_keeps_up(
    relay_url: str, flooder: str
) -> None:
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
            chris, chris_token = await join(http, code, "Chris")
            alex, alex_token = await join(http, code, "Alex")
        if flooder == "viewer":
            hello, refused_as = Hello(code, "viewer"), "read_only"
        else:
            hello, refused_as = (
                Hello(code, "archer", b"\x00", alex, alex_token),
                "not_your_register",
            )
        # Every copy is the same bytes: the same refusal with the same id each time.
        write = Write(7, register(chris, (9, 9), device="flood"))
        ws_url = relay_url.replace("http://", "ws://") + "/ws"

        async with (
            peer(relay_url, code, archer=chris, token=chris_token) as archer,
            peer(relay_url, code) as bystander,
        ):
            await archer.expect(Welcome)
            await bystander.expect(Welcome)
            flood_result: list[tuple[list[Error], int | None, int]] = []

            async def run_flood() -> None:
                flood_result.append(await _flood(ws_url, hello, write))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_flood)
                # While the flood runs, and after it, the archer's ends reach the bystander.
                for end in range(1, 6):
                    arrows = (9, 7, 5) * end
                    await archer.write(end, register(chris, arrows, device="phone"))
                    assert (await archer.expect(Ack)).id == end
                    while bystander.doc.registers()[chris].state.arrows != arrows:
                        await bystander.expect(Update)

        errors, close_code, sent = flood_result[0]
        assert close_code == CLOSE_RATE_LIMITED
        codes = [e.code for e in errors]
        # Refusals drew from the write bucket (a burst of 20, refilled at 10/s), so the
        # rate limit answered next, and the session ended after 50 of those (one forgiven
        # per second).
        assert codes[:20] == [refused_as] * 20
        assert set(codes) == {refused_as, "rate_limited"}
        assert codes.count("rate_limited") > 50
        assert errors[-1].code == "rate_limited"
        assert errors[-1].fatal
        assert not any(e.fatal for e in errors[:-1])
        assert all(e.id == 7 for e in errors)
        # One answer per write until the close, not thousands queued for a client that
        # sends faster than it reads.
        assert len(errors) < FLOOD // 10
        assert sent <= FLOOD


async def test_the_write_limit_per_connection_is_a_setting(
    redis_url: str, nursery: trio.Nursery
) -> None:
    """A relay started with a burst of 3 and next to no refill refuses the 4th write.

    The benchmark's capacity ramp lifts the limit this way; were the setting ignored, the
    default burst (20) would acknowledge all five.
    """
    from relay.config import Settings
    from relay.server import serve_relay

    settings = Settings(
        host="127.0.0.1", port=0, redis_url=redis_url, writes_burst=3, writes_per_s=0.001
    )
    with trio.fail_after(20):
        url: str = await nursery.start(serve_relay, settings)
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            chris, token = await join(http, code, "Chris")
        async with peer(url, code, archer=chris, token=token) as archer:
            await archer.expect(Welcome)
            for n in range(1, 6):
                await archer.write(n, register(chris, (9,) * n, device="a", ms=1_000 * n))
            answers: dict[int, str] = {}
            while len(answers) < 5:
                message = await archer.receive()
                if isinstance(message, Ack):
                    answers[message.id] = "ack"
                elif isinstance(message, Error) and message.id is not None:
                    answers[message.id] = message.code
    assert answers == {1: "ack", 2: "ack", 3: "ack", 4: "rate_limited", 5: "rate_limited"}
