"""Joining: a display name already in the shoot is refused; refusals say what would do."""

from __future__ import annotations

import httpx
import pytest
import trio

from clients import ShootError, connect, create_shoot, join_shoot
from relay.names import CLAIM_GRACE_MS, name_key
from relay.redis_client import open_redis
from sync.protocol import Ack, Welcome
from tests import wire
from tests.sdk_fixtures import FAST


def test_names_compare_as_people_read_them() -> None:
    assert name_key("Chris") == name_key("  chris ") == name_key("CHRIS")
    assert name_key("Chris  B") == name_key("chris b")
    assert name_key("Ｃｈｒｉｓ") == name_key("Chris")  # full-width letters
    assert name_key("Chris B") != name_key("Chris")


async def test_a_taken_name_is_refused_with_a_suggestion(relay_url: str) -> None:
    with trio.fail_after(30):
        shoot = await create_shoot(relay_url, creator="Sam")
        await join_shoot(relay_url, shoot.code, name="Chris", round="national")
        with pytest.raises(ShootError) as caught:
            await join_shoot(relay_url, shoot.code, name=" chris ", round="york")
        assert caught.value.code == "name_taken"
        assert "already in this shoot" in caught.value.message
        assert "initial" in caught.value.message
        await join_shoot(relay_url, shoot.code, name="Chris B", round="national")
        other = await create_shoot(relay_url, creator="Sam")
        await join_shoot(relay_url, other.code, name="Chris", round="national")  # per shoot


async def test_a_name_is_free_again_once_its_archer_left(relay_url: str) -> None:
    with trio.fail_after(30):
        shoot = await create_shoot(relay_url, creator="Sam")
        me = await join_shoot(relay_url, shoot.code, name="Chris", round="national")
        async with connect(relay_url, shoot.code, identity=me, options=FAST) as client:
            await client.leave()
            await client.wait_synced()
        await join_shoot(relay_url, shoot.code, name="Chris", round="national")


async def test_a_name_is_free_again_once_its_archer_took_another(relay_url: str) -> None:
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            code = (await wire.create_shoot(http))["code"]
            archer, token = await wire.join(http, code, "Chris")
            async with wire.peer(relay_url, code, archer=archer, token=token) as p:
                await p.expect(Welcome)
                await p.write(1, wire.register(archer, (), name="Christopher"))
                await p.expect(Ack)
            await wire.join(http, code, "chris")  # the old name is free
            taken = await http.post(
                f"/api/shoots/{code}/join", json={"name": "CHRISTOPHER", "round": "york"}
            )
            assert taken.status_code == 409
            assert taken.json()["error"]["code"] == "name_taken"
            assert "'Christopher'" in taken.json()["error"]["message"]


async def test_a_claim_of_a_join_that_never_finished_holds_the_name_for_a_while(
    relay_url: str, redis_url: str
) -> None:
    """A claim with no archer behind it is a join under way (perhaps through another
    relay) until it is :data:`CLAIM_GRACE_MS` old: then its relay is taken to have died
    mid-join, and the name is free again."""
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            created = await wire.create_shoot(http)
            code = created["code"]
            names = f"shoot:{{{code}}}:{created['shoot_id']}:names"
            redis = open_redis(redis_url)
            try:
                redis.hset(names, "sam", f"someone {wire.now_ms()}")
                taken = await http.post(
                    f"/api/shoots/{code}/join", json={"name": "Sam", "round": "york"}
                )
                assert taken.status_code == 409
                assert taken.json()["error"]["code"] == "name_taken"
                redis.hset(names, "sam", f"someone {wire.now_ms() - CLAIM_GRACE_MS - 1000}")
                archer, _ = await wire.join(http, code, "Sam")
                assert redis.hget(names, "sam").decode().split()[0] == archer  # type: ignore[union-attr]
            finally:
                redis.close()


async def test_concurrent_joins_with_one_name_admit_exactly_one(relay_url: str) -> None:
    with trio.fail_after(30):
        shoot = await create_shoot(relay_url, creator="Sam")
        outcomes: list[str] = []

        async def attempt() -> None:
            try:
                await join_shoot(relay_url, shoot.code, name="Sam", round="national")
                outcomes.append("joined")
            except ShootError as exc:
                outcomes.append(exc.code)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(attempt)
        assert sorted(outcomes) == ["joined"] + ["name_taken"] * 4


async def test_an_unknown_profile_value_lists_the_choices(relay_url: str) -> None:
    with trio.fail_after(30):
        shoot = await create_shoot(relay_url, creator="Sam")
        with pytest.raises(ShootError) as caught:
            await join_shoot(relay_url, shoot.code, name="Chris", round="york", age_group="50+")
        assert caught.value.code == "invalid_profile"
        assert caught.value.message.startswith("Unknown age group '50+'; use one of adult, ")
        assert "over_50" in caught.value.message
        with pytest.raises(ShootError) as caught:
            await join_shoot(relay_url, shoot.code, name="Chris", round="York")
        assert caught.value.code == "unknown_round"
        assert "Did you mean 'york'?" in caught.value.message
