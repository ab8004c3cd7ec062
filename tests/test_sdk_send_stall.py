"""A relay that stops reading a connection must not leave the SDK connected for ever.

The mechanism (found by the chaos test on a loaded machine): once the relay stops reading
a client's socket, the client's next send blocks in ``send_all`` while holding both the
SDK's send lock and trio-websocket's stream lock. The heartbeat's ``ping`` waits behind
the first, and trio-websocket's reader task, which must send a ``pong`` for each of the
relay's WebSocket pings, waits behind the second and stops reading the relay's frames,
acks included. Nothing times out: the client stays "connected" with its write pending.

Here the socket is a lockstep stream (``send_all`` returns only once the peer has read
the bytes) and the peer is a real trio-websocket server that never reads a message after
the handshake, so its reader stops taking bytes after its one-message queue fills. The
clock is trio's autojump clock, so the bound is reached at once and exactly.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
import trio_websocket

from clients import ClientOptions, ShootClient
from clients._errors import RelayUnreachable
from sync.document import ShootDocument
from sync.protocol import Ping, Welcome
from tests.session_peers import SHOOT

POLL_BOUND_S = 60.0
PONG_TIMEOUT_S = 5.0


async def _stalled_connection(nursery: trio.Nursery) -> trio_websocket.WebSocketConnection:
    """A real WebSocket whose server side accepts, then never reads a message."""
    client_stream, server_stream = trio.testing.lockstep_stream_pair()

    async def server() -> None:
        request = await trio_websocket.wrap_server_stream(nursery, server_stream)
        await request.accept()
        await trio.sleep_forever()  # the stalled relay: holds the connection, reads nothing

    nursery.start_soon(server)
    return await trio_websocket.wrap_client_stream(nursery, client_stream, "relay", "/ws")


async def test_a_send_the_relay_never_reads_ends_the_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client = ShootClient(
        "http://relay.invalid", "1234", options=ClientOptions(pong_timeout_s=PONG_TIMEOUT_S)
    )
    async with trio.open_nursery() as nursery:
        ws = await _stalled_connection(nursery)
        started = trio.current_time()
        # An unbounded send blocks for ever here, and this deadline turns that into a
        # TooSlowError instead of the RelayUnreachable the SDK must raise.

        async def send_until_stalled() -> None:
            for nonce in range(1, 100):
                await client._send(ws, Ping(nonce))

        with pytest.raises(RelayUnreachable) as caught, trio.fail_after(POLL_BOUND_S):
            await send_until_stalled()
        assert caught.value.code == "send_timeout"
        assert trio.current_time() - started >= PONG_TIMEOUT_S
        nursery.cancel_scope.cancel()


async def test_the_heartbeat_fires_behind_a_blocked_sender(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The heartbeat waits for the send lock a stalled send holds; it must still end the
    session, within its own bound, whatever the stalled sender does."""
    options = ClientOptions(ping_interval_s=1.0, pong_timeout_s=PONG_TIMEOUT_S)
    client = ShootClient("http://relay.invalid", "1234", options=options)
    async with trio.open_nursery() as nursery:
        ws = await _stalled_connection(nursery)
        stuck = trio.Event()

        async def sender() -> None:
            # Fill the stream until a send blocks, holding the send lock.
            async with client._send_lock:
                stuck.set()
                for _ in range(100):
                    await ws.send_message(b"x" * 64)

        nursery.start_soon(sender)
        await stuck.wait()
        # The machine is live on this connection: its next timer is the heartbeat's ping.
        session = client.session
        started = trio.current_time()
        session.connected(started)
        welcome = Welcome(SHOOT, False, ShootDocument().diff(), 0, "viewer")
        actions = session.received(welcome, started, 0)
        client._timer_at = actions[-1].at  # type: ignore[union-attr]
        with pytest.raises(RelayUnreachable) as caught, trio.fail_after(POLL_BOUND_S):
            await client._timers(ws)
        assert caught.value.code == "send_timeout"
        elapsed = trio.current_time() - started
        assert elapsed <= options.ping_interval_s + PONG_TIMEOUT_S + 0.001
        nursery.cancel_scope.cancel()
