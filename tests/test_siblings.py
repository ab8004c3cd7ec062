"""Passing a TCP connection between sibling workers (relay.siblings), on real sockets.

Both ends run in this process (two :class:`Siblings` in one private directory), over a
real Unix socket, with a real TCP client whose connection is passed: what the client
sends after the pass reaches the taker, and the taker's answer reaches the client.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest
import trio
import trio.testing

from relay.metrics import Metrics
from relay.siblings import (
    PASS_TIMEOUT_S,
    Siblings,
    code_in_target,
    socket_path,
)

Served = list[tuple[socket.socket, bytes, str]]


@pytest.fixture
def family_dir() -> Iterator[str]:
    """A short private directory (a Unix socket path holds at most 107 bytes)."""
    directory = tempfile.mkdtemp(prefix="fs-sib-")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_the_code_is_read_from_the_query_alone() -> None:
    assert code_in_target(b"/ws?code=1234") == "1234"
    assert code_in_target(b"/ws?v=1&code=0042&x=y") == "0042"
    assert code_in_target(b"/ws") is None
    assert code_in_target(b"/ws?code=12345") is None  # not a code: served as today
    assert code_in_target(b"/ws?code=12a4") is None
    assert code_in_target(b"/ws?xcode=1234") is None
    assert code_in_target(b"/ws?code=" + b"9" * 20_000) is None


async def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair on loopback: (the client's end, the accepted end)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    accepted.setblocking(False)
    return client, accepted


@pytest.fixture
async def taker(family_dir: str, nursery: trio.Nursery) -> AsyncIterator[tuple[Siblings, Served]]:
    """A sibling listening in ``family_dir``; what it is passed lands in the list."""
    siblings = Siblings(family_dir, "host-2-bbbbbb", Metrics())
    served: Served = []

    async def serve(sock: socket.socket, head: bytes, peer: str) -> None:
        served.append((sock, head, peer))

    listener = siblings.listen()
    nursery.start_soon(siblings.accept, listener, nursery, serve, lambda: False)
    yield siblings, served
    listener.close()


async def test_a_passed_connection_is_served_by_the_sibling_alone(
    family_dir: str, taker: tuple[Siblings, Served]
) -> None:
    sibling, served = taker
    door = Siblings(family_dir, "host-1-aaaaaa", Metrics())
    client, accepted = await _tcp_pair()
    with client, trio.fail_after(10):
        head = b"GET /ws?code=1234 HTTP/1.1\r\nHost: x\r\n\r\nfirst frame"
        path = door.path_for("1234", sibling.instance)
        assert path == socket_path(family_dir, sibling.instance)
        assert await door.pass_to(path, accepted, head, "203.0.113.9")
        accepted.close()  # the door's copy goes, as the door closes it after a pass
        while not served:
            await trio.testing.wait_all_tasks_blocked()
        sock, got_head, peer = served[0]
        assert (got_head, peer) == (head, "203.0.113.9")  # the head and the client's address
        with sock:
            sock.setblocking(True)
            client.sendall(b"after the pass")
            assert sock.recv(100) == b"after the pass"
            sock.sendall(b"answer")
            assert client.recv(100) == b"answer"
        assert sibling._metrics.websockets_taken == 1
        assert door._metrics.websockets_passed == 1


async def test_the_socket_directory_is_private_and_a_worker_never_passes_to_itself(
    family_dir: str, taker: tuple[Siblings, Served]
) -> None:
    sibling, _ = taker
    assert stat.S_IMODE(os.stat(family_dir).st_mode) == 0o700  # mkdtemp, as the supervisor
    assert sibling.path_for("1234", sibling.instance) is None
    # Nobody owns the shoot: the code picks one socket of the family, the same for all.
    lone = sibling.path_for("1234", None)
    assert lone is None  # the only socket is its own
    door = Siblings(family_dir, "host-1-aaaaaa", Metrics())
    assert door.path_for("1234", None) == socket_path(family_dir, sibling.instance)


async def test_a_gone_or_refusing_sibling_leaves_the_connection_to_the_door(
    family_dir: str,
) -> None:
    door = Siblings(family_dir, "host-1-aaaaaa", Metrics())
    client, accepted = await _tcp_pair()
    with client, accepted, trio.fail_after(10):
        head = b"GET /ws?code=1234 HTTP/1.1\r\n\r\n"
        # No such socket (a relay on another machine owns the shoot).
        assert not await door.pass_to(socket_path(family_dir, "elsewhere"), accepted, head, "p")
        # A killed worker's socket file: refused, and the stale file removed.
        dead = Siblings(family_dir, "host-3-cccccc", Metrics())
        dead.listen().close()
        stale = socket_path(family_dir, dead.instance)
        assert os.path.exists(stale)
        assert not await door.pass_to(stale, accepted, head, "p")
        assert not os.path.exists(stale)
        # A sibling shutting down refuses (it answers nothing and closes).
        closing = Siblings(family_dir, "host-4-dddddd", Metrics())
        served: Served = []

        async def serve(sock: socket.socket, head: bytes, peer: str) -> None:
            served.append((sock, head, peer))  # pragma: no cover (must not happen)

        async with trio.open_nursery() as nursery:
            listener = closing.listen()
            nursery.start_soon(closing.accept, listener, nursery, serve, lambda: True)
            assert not await door.pass_to(
                socket_path(family_dir, closing.instance), accepted, head, "p"
            )
            nursery.cancel_scope.cancel()
        listener.close()
        assert served == []
        # The door still holds a working connection.
        accepted.setblocking(True)
        client.sendall(b"still mine")
        assert accepted.recv(100) == b"still mine"
        assert door._metrics.websockets_passed == 0


async def test_a_sibling_that_does_not_take_it_in_time_leaves_it_to_the_door(
    family_dir: str,
) -> None:
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    path = socket_path(family_dir, "host-5-eeeeee")
    stuck.bind(path)
    stuck.listen(1)  # accepts in the kernel, never reads: a stalled worker
    door = Siblings(family_dir, "host-1-aaaaaa", Metrics())
    client, accepted = await _tcp_pair()
    with stuck, client, accepted, trio.fail_after(PASS_TIMEOUT_S + 20):
        started = trio.current_time()
        assert not await door.pass_to(path, accepted, b"GET /ws HTTP/1.1\r\n\r\n", "p")
        assert trio.current_time() - started >= PASS_TIMEOUT_S


async def test_a_taker_that_never_hears_go_drops_its_copy(
    family_dir: str, taker: tuple[Siblings, Served]
) -> None:
    sibling, served = taker
    client, accepted = await _tcp_pair()
    with client, accepted, trio.fail_after(10):
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with unix:
            unix.connect(socket_path(family_dir, sibling.instance))
            socket.send_fds(unix, [b"\x00\x01pGET /ws HTTP/1.1\r\n\r\n"], [accepted.fileno()])
            await trio.lowlevel.wait_readable(unix)
            assert unix.recv(1) == b"R"
        # The door closed without "G": it serves the connection itself.
        await trio.testing.wait_all_tasks_blocked()
        assert served == []
        assert sibling._metrics.websockets_taken == 0


async def test_a_dead_owners_clients_go_to_the_sibling_the_code_picks(
    family_dir: str, taker: tuple[Siblings, Served]
) -> None:
    _, served = taker
    dead = Siblings(family_dir, "host-0-000000", Metrics())
    dead.listen().close()  # killed while it held the lease: its file stays behind
    door = Siblings(family_dir, "host-1-aaaaaa", Metrics())
    client, accepted = await _tcp_pair()
    with client, accepted, trio.fail_after(10):
        assert await door.route("1234", dead.instance, accepted, b"GET /ws\r\n\r\n", "p")
        assert not os.path.exists(socket_path(family_dir, dead.instance))
        while not served:
            await trio.testing.wait_all_tasks_blocked()
        served[0][0].close()
