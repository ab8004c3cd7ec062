"""The end of a shoot: 410 after Redis expires it, the final board kept for a day, the
code free for a new shoot, and no late write of the old shoot landing in the new one."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable

import httpx
import redis
import trio

from relay.config import Settings
from relay.redis_client import open_redis
from relay.server import serve_relay
from relay.store import Owner, RedisStore, ShootFenced
from sync.models import MIN_LIFETIME_MS, Shoot, end_of_local_day
from tests.test_relay_bad_input import _closed_with
from tests.wire import create_shoot, join, now_ms, peer, register


def _zone_at_local_hour(hour: int) -> str:
    """A fixed-offset zone where it is ``hour`` o'clock now."""
    utc_hour = dt.datetime.now(dt.UTC).hour
    offset = (hour - utc_hour + 12) % 24 - 12  # -12..11
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # POSIX signs are inverted


def _take_every_code_but(client: redis.Redis, code: str) -> None:
    pipe = client.pipeline(transaction=False)
    for other in range(1000, 10000):
        if str(other) != code:
            pipe.set(f"shoot:{{{other}}}:meta", "{}", px=60_000)
    pipe.execute()


def _end_soon(client: redis.Redis, code: str, in_ms: int) -> None:
    """Move a shoot's end close, as if it had been created late the day before: Redis
    then drops the code's claim by itself at that moment."""
    raw = client.get(f"shoot:{{{code}}}:meta")
    assert raw is not None
    meta = json.loads(raw)
    meta["expires_ms"] = now_ms() + in_ms
    client.set(f"shoot:{{{code}}}:meta", json.dumps(meta), pxat=meta["expires_ms"])
    client.set(f"shoot:{{{code}}}:latest", json.dumps(meta), px=60_000)


async def test_evening_shoots_get_six_hours_and_morning_shoots_end_with_their_day(
    relay_url: str,
) -> None:
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            late = await create_shoot(http, time_zone=_zone_at_local_hour(23))
            early = await create_shoot(http, time_zone=_zone_at_local_hour(8))
    assert late["expires_ms"] == late["created_ms"] + MIN_LIFETIME_MS
    assert early["expires_ms"] == end_of_local_day(early["created_ms"], early["time_zone"])
    assert early["expires_ms"] - early["created_ms"] > 15 * 3_600_000


async def test_an_ended_shoot_answers_410_keeps_its_final_board_and_frees_its_code(
    redis_url: str, nursery: trio.Nursery
) -> None:
    settings = Settings(host="127.0.0.1", port=0, redis_url=redis_url, idle_timeout_s=0.1)
    client = open_redis(redis_url)
    with trio.fail_after(20):
        url: str = await nursery.start(serve_relay, settings)
        async with httpx.AsyncClient(base_url=url) as http:
            first = await create_shoot(http)
            code = first["code"]
            chris, token = await join(http, code, "Chris")
            async with peer(url, code, archer=chris, token=token) as archer:
                await archer.write(1, register(chris, (9,) * 6, device="a"))
                while not any(getattr(m, "id", None) == 1 for m in archer.seen):
                    await archer.receive()
            while (await http.get("/health")).json()["live_shoots"]:  # unloaded when idle
                await trio.sleep(0.02)

            _end_soon(client, code, 300)
            while client.exists(f"shoot:{{{code}}}:meta"):  # Redis expires the claim itself
                await trio.sleep(0.02)

            async with peer(url, code) as viewer:
                errors, close = await _closed_with(viewer.ws)
            assert ([e.code for e in errors], close) == (["expired"], 4410)
            async with peer(url, code, archer=chris, token=token) as late_archer:
                errors, close = await _closed_with(late_archer.ws)
            assert ([e.code for e in errors], close) == (["expired"], 4410)
            joined = await http.post(
                f"/api/shoots/{code}/join", json={"name": "Sam", "round": "national"}
            )
            assert (joined.status_code, joined.json()["error"]["code"]) == (410, "expired")
            assert (await http.get(f"/api/shoots/{code}/qr.svg")).status_code == 410

            final = await http.get(f"/api/shoots/{code}")
            assert final.status_code == 200
            body = final.json()
            assert body["ended"] is True
            assert body["shoot"]["shoot_id"] == first["shoot_id"]
            assert body["archers"][chris]["arrows"] == [9] * 6
            standings = body["leaderboard"]["overall"]
            assert [(s["archer_id"], s["total"]) for s in standings] == [(chris, 54)]

            # The code is free again: a new shoot can take it, and readers see the new one.
            _take_every_code_but(client, code)
            second = await create_shoot(http)
            assert second["code"] == code
            assert second["shoot_id"] != first["shoot_id"]
            now = (await http.get(f"/api/shoots/{code}")).json()
            assert (now["ended"], now["archers"]) == (False, {})
    client.close()


def _make(shoot_id: str, expires_ms: int) -> Callable[[str], Shoot]:
    def make(code: str) -> Shoot:
        return Shoot(code, shoot_id, "", "Sam", now_ms(), expires_ms, "UTC")

    return make


def test_a_late_write_of_an_ended_shoot_never_lands_in_the_next_shoot_with_its_code(
    redis_url: str,
) -> None:
    store = RedisStore(redis_url)
    client = open_redis(redis_url)
    try:
        old = store.create_shoot(_make(uuid.uuid4().hex, now_ms() + 3_600_000))
        owner = store.acquire_lease(old, "test", 60_000)
        assert isinstance(owner, Owner)
        store.append(old, owner, [b"first"])
        client.delete(f"shoot:{{{old.code}}}:meta")  # its day ends: Redis drops the claim

        try:
            store.append(old, owner, [b"late"])
        except ShootFenced as exc:
            assert exc.reason == "ended"
        else:
            raise AssertionError("an append after the end was accepted")

        _take_every_code_but(client, old.code)
        new = store.create_shoot(_make(uuid.uuid4().hex, now_ms() + 3_600_000))
        assert new.code == old.code
        for attempt in (
            lambda: store.append(old, owner, [b"later"]),
            lambda: store.compact(old, owner, b"snapshot", "0-1"),
        ):
            try:
                attempt()
            except ShootFenced as exc:
                assert exc.reason == "replaced"
            else:
                raise AssertionError("a write of the old shoot was accepted")

        stored = store.load_shoot(new.code)
        assert stored is not None
        assert (stored.shoot, stored.log, stored.snapshot) == (new, [], None)
        old_log = client.xrange(f"shoot:{{{old.code}}}:{old.shoot_id}:log")
        assert [fields[b"u"] for _, fields in old_log] == [b"first"]
        assert not client.exists(f"shoot:{{{old.code}}}:{old.shoot_id}:snapshot")
    finally:
        client.close()
        store.close()
