"""The relay end to end: real sockets on loopback, a real redis-server."""

from __future__ import annotations

import httpx
import pytest
import trio

from sync.protocol import Ack, Notice, Update, Welcome
from tests.wire import create_shoot, join, peer, register


async def test_shoot_lifecycle_reaches_everyone(relay_url: str) -> None:
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            shoot = await create_shoot(http, title="Club night", time_zone="Europe/London")
            code = shoot["code"]
            assert shoot["join_url"].endswith(f"/join/{code}")
            chris, chris_token = await join(http, code, "Chris")
            alex, alex_token = await join(http, code, "Alex")
            async with (
                peer(relay_url, code, archer=chris, token=chris_token) as a,
                peer(relay_url, code, archer=alex, token=alex_token) as b,
                peer(relay_url, code) as viewer,
            ):
                for p in (a, b, viewer):
                    welcome = await p.expect(Welcome)
                    assert welcome.shoot.code == code
                    assert set(p.doc.registers()) == {chris, alex}

                await a.write(1, register(chris, (9, 9, 7, 7, 5, 3), device="a"))
                ack = await a.expect(Ack)
                assert ack.id == 1
                for p in (b, viewer):
                    await p.expect(Update)
                    assert p.doc.register(chris) == a.doc.register(chris)

                await b.write(1, register(alex, (9, 9, 9, 9, 9, 9), device="b", name="Alex"))
                await b.expect(Ack)
                await viewer.expect(Update)
                board = (await http.get(f"/api/shoots/{code}")).json()["leaderboard"]
                standings = board["groups"][0]["standings"]
                assert [(s["name"], s["total"], s["position"]) for s in standings] == [
                    ("Alex", 54, 1),
                    ("Chris", 40, 2),
                ]
                assert standings[1]["behind"] == 14

                # Chris leaves, Alex finishes.
                await a.write(2, register(chris, (9, 9, 7, 7, 5, 3), device="a", left=True))
                await a.expect(Ack)
                await b.write(2, register(alex, (9,) * 72, device="b", name="Alex", finished=True))
                await b.expect(Ack)
                # The ack waits for Redis, not for the projection: that is filled on a
                # worker thread and follows (poll until it has, within the deadline).
                while True:
                    body = (await http.get(f"/api/shoots/{code}")).json()
                    standings = body["leaderboard"]["groups"][0]["standings"]
                    if standings[0]["classification_status"] is not None:
                        break
                    await trio.sleep(0.01)  # the poll's interval
                assert [s["name"] for s in standings] == ["Alex"]
                assert standings[0]["finished"] is True
                assert standings[0]["classification_status"] == "achieved"
                assert body["archers"][chris]["left"] is True


async def test_two_shoots_never_see_each_other(relay_url: str) -> None:
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            first = (await create_shoot(http))["code"]
            second = (await create_shoot(http))["code"]
            assert first != second
            chris, token = await join(http, first, "Chris")
            alex, _ = await join(http, second, "Alex")
            async with (
                peer(relay_url, first, archer=chris, token=token) as writer,
                peer(relay_url, second) as other,
            ):
                await writer.expect(Welcome)
                await other.expect(Welcome)
                await writer.write(1, register(chris, (9,) * 6, device="a"))
                await writer.expect(Ack)
                # Anything the second shoot's viewer received is about its own archer.
                async with peer(relay_url, second) as late:
                    await late.expect(Welcome)
                    assert set(late.doc.registers()) == {alex}
                assert set(other.doc.registers()) == {alex}
                second_json = (await http.get(f"/api/shoots/{second}")).json()
                assert set(second_json["archers"]) == {alex}


async def test_lead_changes_and_two_end_digests_reach_subscribers(relay_url: str) -> None:
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
            chris, chris_token = await join(http, code, "Chris")
            alex, alex_token = await join(http, code, "Alex")
        async with (
            peer(relay_url, code, archer=chris, token=chris_token) as a,
            peer(relay_url, code, archer=alex, token=alex_token) as b,
            peer(relay_url, code) as viewer,
        ):
            for p in (a, b, viewer):
                await p.expect(Welcome)
            await a.write(1, register(chris, (7,) * 12, device="a"))
            await a.expect(Ack)
            await b.write(1, register(alex, (9,) * 12, device="b", name="Alex"))
            await b.expect(Ack)
            notices: list[Notice] = []
            while len([n for n in notices if n.kind == "digest"]) < 2:
                notices.append(await viewer.expect(Notice))
            leads = [n for n in notices if n.kind == "lead"]
            assert leads[0].archer == chris
            assert leads[0].text == "Chris has taken the lead!"
            digests = {n.archer: n for n in notices if n.kind == "digest"}
            assert (digests[alex].position, digests[alex].of, digests[alex].ends) == (1, 2, 2)
            assert (digests[chris].position, digests[chris].of) == (2, 2)


async def test_a_refused_write_fails_a_wait_for_its_ack_at_once(relay_url: str) -> None:
    """A 10 in a National (imperial scoring) is refused with ``invalid_arrow`` and no ack
    follows: a test waiting for the ack fails with that error, not after its deadline
    (the ``--workers 2`` test once timed out that way, and looked like a lost forward)."""
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await create_shoot(http))["code"]
            chris, token = await join(http, code, "Chris")
        async with peer(relay_url, code, archer=chris, token=token) as a:
            await a.expect(Welcome)
            await a.write(1, register(chris, (10, 9, 9, 8, 7, 7)))
            with pytest.raises(AssertionError, match="invalid_arrow"):
                await a.expect(Ack)
            assert a.doc.registers()[chris].state.arrows == ()  # nothing was changed
