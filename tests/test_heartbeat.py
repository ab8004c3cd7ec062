"""The relay's one heartbeat task driving each session's machine: pings per session, and
evictions, in virtual time (the machine alone: ``test_sync_heartbeat.py``)."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import trio
import trio.testing
from wsproto import ConnectionType
from wsproto.connection import Connection

from relay.heartbeat import TICKS_PER_INTERVAL, Heartbeat
from relay.wssocket import OwnedSocket, configure
from tests.task_steps import counting_steps

INTERVAL_S = 1.0
TIMEOUT_S = 3.0
TICK_S = INTERVAL_S / TICKS_PER_INTERVAL


def _pings(client_side: socket.socket) -> list[int]:
    """The numbers of the ping frames the client side has received so far."""
    data = b""
    while True:
        try:
            data += client_side.recv(4096)
        except BlockingIOError:
            break
    numbers = []
    while data:
        assert data[0] == 0x89
        assert data[1] == 8
        numbers.append(int.from_bytes(data[2:10], "big"))
        data = data[10:]
    return numbers


@contextmanager
def _sessions(count: int) -> Iterator[tuple[list[OwnedSocket], list[socket.socket]]]:
    """``count`` relay-side sockets as sessions, and the client side of each."""
    pairs = [socket.socketpair() for _ in range(count)]
    try:
        for relay_side, client_side in pairs:
            configure(relay_side)
            client_side.setblocking(False)
        owned = [
            OwnedSocket(relay, Connection(ConnectionType.SERVER), "peer") for relay, _ in pairs
        ]
        yield owned, [client for _, client in pairs]
    finally:
        for left, right in pairs:
            left.close()
            right.close()


async def test_each_session_is_pinged_and_a_silent_one_evicted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with _sessions(2) as (owned, clients):
        answering, _silent = owned
        heartbeat = Heartbeat(INTERVAL_S, TIMEOUT_S)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(heartbeat.run)
            beats = [heartbeat.watch(o) for o in owned]
            evicted_at: list[float] = []

            async def session(o: OwnedSocket) -> None:
                with trio.CancelScope() as o.scope:
                    await trio.sleep_forever()
                evicted_at.append(trio.current_time())

            for o in owned:
                nursery.start_soon(session, o)
            start = trio.current_time()
            sent_at = []
            silent_pings = []
            for n in range(1, 6):
                with trio.fail_after(INTERVAL_S + 2 * TICK_S):  # virtual time
                    while not (pings := _pings(clients[0])):
                        silent_pings += _pings(clients[1])
                        await trio.sleep(TICK_S / 2)
                assert pings == [n]  # one ping per interval, numbered
                sent_at.append(trio.current_time())
                answering.on_pong(pings[0].to_bytes(8, "big"))  # as its reader hands it on
            await trio.sleep(INTERVAL_S)
            silent_pings += _pings(clients[1])
            # The answering session got a ping every interval; the silent one only its
            # first, and was evicted once that stayed unanswered past the timeout.
            assert sent_at[0] - start <= INTERVAL_S + TICK_S
            gaps = [b - a for a, b in itertools.pairwise(sent_at)]
            assert all(INTERVAL_S - TICK_S <= gap <= INTERVAL_S + 2 * TICK_S for gap in gaps), gaps
            assert silent_pings == [1]
            assert beats[1].evicted
            assert not beats[0].evicted
            assert len(evicted_at) == 1
            assert TIMEOUT_S < evicted_at[0] - sent_at[0] <= TIMEOUT_S + INTERVAL_S + 2 * TICK_S
            heartbeat.forget(answering)
            _pings(clients[0])  # what went out before
            await trio.sleep(3 * INTERVAL_S)
            assert _pings(clients[0]) == []  # forgotten: no more pings
            nursery.cancel_scope.cancel()


async def test_sessions_due_together_are_pinged_in_slices_with_the_loop_free_between(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Connections that opened together are due together; pinging thousands in one pass
    held the event loop. Between slices the relay runs: here a task woken by the first
    ping sees only part of the tick's pings out."""
    with _sessions(7) as (owned, clients):
        heartbeat = Heartbeat(INTERVAL_S, TIMEOUT_S, looks_per_slice=3)
        for o in owned:
            heartbeat.watch(o)  # opened at the same moment: due in the same tick
        pings: list[int] = []
        with trio.fail_after(INTERVAL_S + 2 * TICK_S):  # virtual time
            async with trio.open_nursery() as nursery:
                nursery.start_soon(heartbeat.run)
                await trio.lowlevel.wait_readable(clients[0])  # the tick's first ping
                pings += [n for client in clients for n in _pings(client)]
                out_when_woken = len(pings)
                while len(pings) < len(clients):
                    pings += [n for client in clients for n in _pings(client)]
                    await trio.sleep(TICK_S / 4)
                nursery.cancel_scope.cancel()
        assert 0 < out_when_woken < len(clients)
        assert pings == [1] * len(clients)  # every session got its ping in that tick


async def test_with_no_session_the_heartbeat_sleeps_until_one_comes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A relay nobody is connected to sets no timer for its heartbeat: every wake-up
    costs CPU, and most of a relay's day is idle."""
    with counting_steps("Heartbeat.run") as steps, _sessions(1) as (owned, clients):
        heartbeat = Heartbeat(INTERVAL_S, TIMEOUT_S)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(heartbeat.run)
            await trio.sleep(100 * INTERVAL_S)  # virtual: 400 ticks, had it ticked
            assert steps.count == 1  # the step that began the wait

            heartbeat.watch(owned[0])
            start = trio.current_time()
            await trio.lowlevel.wait_readable(clients[0])
            assert _pings(clients[0]) == [1]
            assert INTERVAL_S <= trio.current_time() - start <= INTERVAL_S + 2 * TICK_S

            heartbeat.forget(owned[0])
            await trio.sleep(2 * TICK_S)  # virtual: the tick that finds nobody
            asleep = steps.count
            await trio.sleep(100 * INTERVAL_S)
            assert steps.count == asleep
            nursery.cancel_scope.cancel()


async def test_a_session_heard_from_is_not_pinged_until_it_falls_silent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Bytes from the peer between two looks spare it the look's ping (a browser sends its
    own pings); once it falls silent it is pinged, and dropped when it does not answer."""
    unsolicited_pong = b"\x8a\x80\x00\x00\x00\x00"  # a masked, empty client pong
    with _sessions(1) as (owned, clients):
        heartbeat = Heartbeat(INTERVAL_S, TIMEOUT_S)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(heartbeat.run)
            beat = heartbeat.watch(owned[0])

            async def session() -> None:
                with trio.CancelScope() as owned[0].scope:
                    while await owned[0].receive() is not None:
                        pass  # its reader, which notes that the peer was heard

            nursery.start_soon(session)
            for _ in range(10):  # five intervals of the peer's frames
                clients[0].send(unsolicited_pong)
                await trio.sleep(INTERVAL_S / 2)
            assert _pings(clients[0]) == []
            silent_since = trio.current_time()
            with trio.fail_after(3 * INTERVAL_S):  # virtual time
                while not (pings := _pings(clients[0])):
                    await trio.sleep(TICK_S / 2)
            assert pings == [1]
            with trio.fail_after(TIMEOUT_S + INTERVAL_S + 2 * TICK_S):
                while not beat.evicted:
                    clients[0].send(unsolicited_pong)  # sends, but never answers the ping
                    await trio.sleep(TICK_S / 2)
            assert trio.current_time() - silent_since > TIMEOUT_S
            nursery.cancel_scope.cancel()
