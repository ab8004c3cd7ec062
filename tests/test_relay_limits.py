"""A shoot's documented limits: archers per shoot and document size, refused cleanly."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from relay.config import Settings
from relay.redis_client import open_redis
from relay.server import serve_relay
from sync.limits import MAX_WRITE_UPDATE_BYTES
from sync.protocol import MAX_SERVER_FRAME_BYTES, Ack, Error, Welcome
from tests.wire import create_shoot, join, peer, register


async def _relay(nursery: trio.Nursery, redis_url: str, **tuning: Any) -> str:
    settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url, **tuning)
    url: str = await nursery.start(serve_relay, settings)
    return url


async def _join(http: httpx.AsyncClient, code: str, name: str) -> httpx.Response:
    return await http.post(f"/api/shoots/{code}/join", json={"name": name, "round": "national"})


async def test_a_join_over_the_archer_limit_is_refused_and_changes_nothing(
    redis_url: str, nursery: trio.Nursery
) -> None:
    url = await _relay(nursery, redis_url, max_archers=3)
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=url) as http:
            created = await create_shoot(http)
            code, shoot_id = created["code"], created["shoot_id"]
            joined = [await join(http, code, name) for name in ("Ann", "Ben", "Cat")]
            refused = await _join(http, code, "Dan")
            assert refused.status_code == 409
            assert refused.json()["error"]["code"] == "shoot_full"
            assert "3 archers" in refused.json()["error"]["message"]
            body = (await http.get(f"/api/shoots/{code}")).json()
            assert sorted(body["archers"]) == sorted(archer for archer, _ in joined)
            # Another device of an archer who is in is not a new archer.
            archer, token = joined[0]
            again = await http.post(
                f"/api/shoots/{code}/join", json={"archer_id": archer, "token": token}
            )
            assert again.status_code == 200
    client = open_redis(redis_url)
    assert client.hlen(f"shoot:{{{code}}}:{shoot_id}:archers") == 3
    # The refused join gave its name back: "Dan" may join once there is room.
    assert sorted(client.hkeys(f"shoot:{{{code}}}:{shoot_id}:names")) == [b"ann", b"ben", b"cat"]
    client.close()


async def test_a_write_that_could_take_the_document_over_its_cap_is_refused(
    redis_url: str, nursery: trio.Nursery
) -> None:
    cap = MAX_WRITE_UPDATE_BYTES + 2048
    url = await _relay(nursery, redis_url, max_document_bytes=cap)
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=url) as http:
            code = (await create_shoot(http))["code"]
            chris, token = await join(http, code, "Chris")
            async with peer(url, code, archer=chris, token=token) as archer:
                await archer.expect(Welcome)
                last_acked = register(chris, (9,) * 6, device="a", ms=1)
                await archer.write(1, last_acked)
                assert (await archer.expect(Ack)).id == 1
                # Other archers join until the document has no room for one more.
                status, names = 200, iter(f"Archer {n}" for n in range(100))
                while status == 200:
                    response = await _join(http, code, next(names))
                    status = response.status_code
                assert status == 409
                assert response.json()["error"]["code"] == "shoot_full"

                bigger = register(chris, (9,) * 12, device="a", ms=2)
                await archer.write(2, bigger)
                error = await archer.expect(Error)
                assert (error.id, error.code, error.fatal) == (2, "document_full", False)
                # Nothing changed, and a write that adds nothing is still acknowledged.
                body = (await http.get(f"/api/shoots/{code}")).json()
                assert body["archers"][chris]["arrows"] == [9] * 6
                await archer.write(3, last_acked)
                assert (await archer.expect(Ack)).id == 3
            # Every welcome (the whole document) stays far below the client's frame limit.
            async with peer(url, code) as viewer:
                welcome = await viewer.expect(Welcome)
                assert len(welcome.update) <= cap < MAX_SERVER_FRAME_BYTES
