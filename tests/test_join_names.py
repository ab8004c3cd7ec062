"""Joining: a display name already in the shoot is refused; refusals say what would do."""

from __future__ import annotations

import pytest
import trio

from clients import ShootError, connect, create_shoot, join_shoot
from relay.http import name_key
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
