"""Display names stay unique across relays: the claim is atomic in Redis, not in one
process's memory, so two joins of one name through two relays cannot both succeed.

The relays are real ``fast-shoot serve`` processes on one real Redis, over loopback.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import httpx
import trio
import trio.testing

from relay.redis_server import free_port
from tests.relays import relay_process
from tests.wire import create_shoot, wait_healthy

#: Rounds of two simultaneous joins of one name (one through each relay).
ROUNDS = 25


async def _attempt(
    http: httpx.AsyncClient, code: str, name: str, go: trio.Event, outcomes: list[str]
) -> None:
    """Join ``name`` once ``go`` is set; note ``joined`` or the refusal's code."""
    await go.wait()
    response = await http.post(f"/api/shoots/{code}/join", json={"name": name, "round": "york"})
    if response.status_code == 200:
        outcomes.append("joined")
        return
    assert response.status_code == 409, response.text
    outcomes.append(response.json()["error"]["code"])


async def test_one_name_joined_through_two_relays_at_once_admits_exactly_one(
    redis_url: str, tmp_path: Path
) -> None:
    ports = [free_port() for _ in range(2)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    with ExitStack() as relays, trio.fail_after(180):
        for name, port in zip("ab", ports, strict=True):
            relays.enter_context(relay_process(tmp_path, name, redis_url, port))
        for url in urls:
            await wait_healthy(url)
        async with (
            httpx.AsyncClient(base_url=urls[0]) as a,
            httpx.AsyncClient(base_url=urls[1]) as b,
        ):
            shoot = await create_shoot(a)
            code = shoot["code"]
            for http in (a, b):  # each client holds an open connection before the race
                assert (await http.get(f"/api/shoots/{code}")).status_code == 200
            for turn in range(ROUNDS):
                name = f"Archer {turn}"
                go = trio.Event()
                outcomes: list[str] = []

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_attempt, a, code, name, go, outcomes)
                    nursery.start_soon(_attempt, b, code, name, go, outcomes)
                    await trio.testing.wait_all_tasks_blocked()
                    go.set()
                assert sorted(outcomes) == ["joined", "name_taken"], (turn, outcomes)
            # Each name is in the shoot once, whichever relay is asked.
            for http in (a, b):
                archers = (await http.get(f"/api/shoots/{code}")).json()["archers"]
                names = sorted(state["name"] for state in archers.values())
                assert names == sorted(f"Archer {turn}" for turn in range(ROUNDS))
