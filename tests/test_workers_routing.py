"""A shoot's WebSockets under ``fast-shoot serve --workers 2``: spread over both workers by
the kernel or, with the code in the URL, all served by the worker that owns the shoot (the
other passes it those it accepted), again once the owner is killed, and whatever the length
of the temp folder the workers' sockets go in.

Each worker's ``/health`` names its process (``pid``) and counts its WebSockets
(``connections``), so a test can tell which worker serves whom; every request goes on a
fresh connection so the kernel picks a worker anew.
"""

from __future__ import annotations

import os
import re
import signal
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import trio
import trio_websocket

from relay.redis_server import free_port
from relay.server import wait_exit
from relay.sibling_dir import FALLBACK_BASES
from sync.protocol import Ack, Hello, Update, Welcome
from tests.wire import Peer, create_shoot, join, peer, register, wait_healthy
from tests.worker_family import _alive, _redis_pid, _serve, _workers, long_temp_dir, temp_dir

__all__ = ["long_temp_dir", "temp_dir"]


async def test_two_workers_serve_one_shoots_subscribers_from_both_processes(
    tmp_path: Path, temp_dir: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    viewers = 16
    with _serve(tmp_path, port, temp_dir), trio.fail_after(60):
        await wait_healthy(url)
        # Both workers listen before anyone connects: the kernel spreads connections only
        # over the sockets already listening (a worker still starting would get none).
        await _workers(url, 2)
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            archer, token = await join(http, code, "Chris")
        async with AsyncExitStack() as stack:
            writer = await stack.enter_async_context(peer(url, code, archer=archer, token=token))
            watching: list[Peer] = [
                await stack.enter_async_context(peer(url, code)) for _ in range(viewers)
            ]
            for p in [writer, *watching]:  # each is served, on whichever worker holds it
                await p.expect(Welcome)
            # Every connection is counted by the worker that holds it.
            spread = await _spread(url, 2, viewers + 1)
            counts = {pid: body["connections"] for pid, body in spread.items()}
            assert all(count > 0 for count in counts.values()), counts  # both hold some

            # A National end (imperial scores: a 10 would be refused with invalid_arrow).
            await writer.write(1, register(archer, (9, 9, 7, 7, 5, 5)))
            await writer.expect(Ack)
            for viewer in watching:  # the joined archer is in the welcome, with no arrows
                while viewer.doc.registers()[archer].state.arrows != (9, 9, 7, 7, 5, 5):
                    await viewer.expect(Update)


async def _spread(url: str, count: int, expected: int) -> dict[int, dict[str, Any]]:
    """Each worker's ``/health`` once the ``count`` workers hold ``expected`` connections."""
    while True:
        seen = await _workers(url, count)
        if sum(body["connections"] for body in seen.values()) == expected:
            return seen
        await trio.sleep(0.05)  # connections still arriving or closing; under the deadline


async def _all_on_one_worker(url: str, connections: int) -> dict[int, int]:
    """Each of the 2 workers' WebSocket count, once they hold ``connections``, checked:
    all on one worker (the shoot's owner), none followed."""
    spread = await _spread(url, 2, connections)
    counts = {pid: body["connections"] for pid, body in spread.items()}
    assert sorted(counts.values()) == [0, connections], counts
    assert all(body["followed_shoots"] == 0 for body in spread.values()), spread
    return counts


async def _routed_peers(
    stack: AsyncExitStack, url: str, code: str, archer: str, token: str, viewers: int
) -> tuple[Peer, list[Peer]]:
    """An archer and ``viewers`` viewers naming the shoot in their URL, each welcomed;
    a connection refused while a worker restarts is retried, as the SDK would."""
    peers: list[Peer] = []
    while len(peers) < viewers + 1:
        writer = not peers
        try:
            p = await stack.enter_async_context(
                peer(
                    url,
                    code,
                    archer=archer if writer else None,
                    token=token if writer else None,
                    by_code=True,
                )
            )
            await p.expect(Welcome)
        except (OSError, trio_websocket.HandshakeError, trio_websocket.ConnectionClosed):
            await trio.sleep(0.05)  # a worker is restarting; retried under the deadline
            continue
        peers.append(p)
    return peers[0], peers[1:]


async def test_a_shoots_websockets_are_served_by_the_worker_that_owns_it(
    tmp_path: Path, temp_dir: Path
) -> None:
    """Issue 13: with the code in the URL, every client of a shoot ends up on its owner
    (no follower anywhere), writes are acknowledged, and after the owner is killed the
    reconnecting clients all gather on one surviving worker again."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    viewers = 16
    with _serve(tmp_path, port, temp_dir), trio.fail_after(120):
        await wait_healthy(url)
        await _workers(url, 2)
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            archer, token = await join(http, code, "Chris")
        async with AsyncExitStack() as stack:
            writer, watching = await _routed_peers(stack, url, code, archer, token, viewers)
            counts = await _all_on_one_worker(url, viewers + 1)
            owner = next(pid for pid, count in counts.items() if count)

            await writer.write(1, register(archer, (9, 9, 7, 7, 5, 5)))
            await writer.expect(Ack)
            for viewer in watching:
                while viewer.doc.registers()[archer].state.arrows != (9, 9, 7, 7, 5, 5):
                    await viewer.expect(Update)
            # The hello is the authority: a URL naming another shoot is served all the same.
            ws_url = url.replace("http://", "ws://") + "/ws?code=9999"
            async with trio_websocket.open_websocket_url(ws_url) as ws:
                stray = Peer(ws)
                await stray.send(Hello(code, "viewer", b"\x00", None, None))
                await stray.expect(Welcome)
                assert stray.doc.registers()[archer].state.arrows == (9, 9, 7, 7, 5, 5)
            os.kill(owner, signal.SIGKILL)
        while owner in await _workers(url, 2) or len(await _workers(url, 2)) < 2:
            await trio.sleep(0.05)  # waiting for the restarted worker; under the deadline

        async with AsyncExitStack() as stack:  # the devices reconnect
            writer, watching = await _routed_peers(stack, url, code, archer, token, viewers)
            for p in [writer, *watching]:  # the acknowledged end survived the owner
                assert p.doc.registers()[archer].state.arrows == (9, 9, 7, 7, 5, 5)
            await writer.write(2, register(archer, (9, 9, 7, 7, 5, 5, 3)))
            await writer.expect(Ack)
            for viewer in watching:
                while viewer.doc.registers()[archer].state.arrows != (9, 9, 7, 7, 5, 5, 3):
                    await viewer.expect(Update)
            while True:  # the one that served them during the lease's expiry now owns it
                spread = await _spread(url, 2, viewers + 1)
                if all(body["followed_shoots"] == 0 for body in spread.values()):
                    break
                await trio.sleep(0.05)  # the takeover is at most a lease away
            counts = {pid: body["connections"] for pid, body in spread.items()}
            assert owner not in counts
            assert sorted(counts.values()) == [0, viewers + 1], counts


async def _passed_total(url: str) -> int:
    """``fastshoot_websockets_passed_total`` of whichever worker answered."""
    async with httpx.AsyncClient(base_url=url) as http:
        text = (await http.get("/metrics")).text
    (line,) = [ln for ln in text.splitlines() if ln.startswith("fastshoot_websockets_passed")]
    return int(line.split()[1])


def _moved_dir(log: Path, temp_dir: Path) -> Path:
    """The family's directory a supervisor says it made elsewhere than in ``temp_dir``."""
    found = re.search(
        rf"TMPDIR {re.escape(str(temp_dir))} is too long for the workers' Unix sockets "
        r"\(\d+ bytes, at most \d+\): their private directory is (\S+) instead\n",
        log.read_text(),
    )
    assert found is not None
    return Path(found.group(1))


async def test_workers_pass_websockets_to_each_other_whatever_the_temp_folders_length(
    tmp_path: Path, long_temp_dir: Path
) -> None:
    """Regression: with a ``TMPDIR`` so long that a socket in the family's directory
    exceeded the Unix socket path limit, every worker crashed binding its socket and was
    restarted forever. The directory now goes to a short private place, and each shoot's
    clients still gather on its owner: those the kernel gave to the other worker were
    passed to it. The next supervisor with that ``TMPDIR`` sweeps a killed one's there."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    viewers = 16
    first = tmp_path / "first"
    with _serve(first, port, long_temp_dir) as supervisor, trio.fail_after(120):
        await wait_healthy(url)
        await _workers(url, 2)
        family = _moved_dir(first / "relay.log", long_temp_dir)
        assert str(family.parent) in FALLBACK_BASES
        assert family.stat().st_mode & 0o777 == 0o700
        assert list(long_temp_dir.iterdir()) == []
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            archer, token = await join(http, code, "Chris")
        async with AsyncExitStack() as stack:
            writer, watching = await _routed_peers(stack, url, code, archer, token, viewers)
            workers = await _all_on_one_worker(url, viewers + 1)
            while await _passed_total(url) == 0:  # until the worker that passed answers
                await trio.sleep(0.05)  # each request picks a worker anew; under the deadline
            await writer.write(1, register(archer, (9, 9, 7, 7, 5, 5)))
            await writer.expect(Ack)
            for viewer in watching:
                while viewer.doc.registers()[archer].state.arrows != (9, 9, 7, 7, 5, 5):
                    await viewer.expect(Update)
        names = sorted(path.name for path in family.iterdir())
        assert names.count("family.lock") == 1
        assert sum(name.endswith(".sock") for name in names) == 2

        left = [*workers, _redis_pid(first)]
        supervisor.kill()  # its directory stays behind, until its family is gone
        await wait_exit(supervisor)
        while any(_alive(pid) for pid in left):
            await trio.sleep(0.05)  # the workers stop on SIGTERM; under the deadline
        assert family.is_dir()

        following = tmp_path / "next"
        with _serve(following, port, long_temp_dir) as supervisor:
            await wait_healthy(url)
            assert not family.exists()  # swept before its workers started
            again = _moved_dir(following / "relay.log", long_temp_dir)
            assert again.is_dir()
            supervisor.send_signal(signal.SIGTERM)
            assert await wait_exit(supervisor) == 0
        assert not again.exists()
    swept = "removed \\d+ socket directories of worker families that are gone: (.*)\n"
    found = re.search(swept, (following / "relay.log").read_text())
    assert found is not None
    assert family.name in found.group(1).split(", ")  # among others this user's, maybe
    for log in (first / "relay.log", following / "relay.log"):
        assert "Traceback" not in log.read_text()
