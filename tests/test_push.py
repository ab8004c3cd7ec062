"""Web Push through a real relay, a real Redis and a real (local) push service.

The push service is an HTTP server in the test; the relay may call it because the test
lists its loopback origin in ``push_services``, as an operator would list a push service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import redis
import trio

from relay.config import Settings
from relay.push.keys import KeyHolder, subject_signs
from relay.push.sender import QUEUE_SIZE, PushSender
from relay.push.service import subject_for
from relay.push.services import DEFAULT_PUSH_SERVICES, EndpointRefused, PushServices
from relay.push.subscriptions import MAX_DEVICES_PER_ARCHER, SubscriptionStore, parse_subscription
from relay.server import serve_relay
from relay.store import RedisStore
from sync.leaderboard import Leaderboard
from sync.models import Shoot
from sync.notifications import Notice
from tests.push_service import Device, PushService, start_push_service, vapid_claims
from tests.test_relay_notices import END_OF_5, END_OF_9, write
from tests.wire import create_shoot, join


async def _relay(nursery: trio.Nursery, redis_url: str, service: PushService, **more: Any) -> str:
    settings = Settings(
        host="127.0.0.1",
        port=0,
        redis_url=redis_url,
        push_services=(service.origin,),
        push_subject="mailto:ops@example.org",
        **more,
    )
    url: str = await nursery.start(serve_relay, settings)
    return url


async def _subscribe(
    http: httpx.AsyncClient, code: str, device: Device, archer: tuple[str, str] | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"subscription": device.subscription()}
    if archer is not None:
        body["archer_id"], body["token"] = archer
    return await http.post(f"/api/shoots/{code}/push", json=body)


def _stored(redis_url: str, shoot: dict[str, Any]) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.hlen(f"shoot:{{{shoot['code']}}}:{shoot['shoot_id']}:push"))
    finally:
        client.close()


async def test_a_lead_change_is_pushed_encrypted_and_signed(
    redis_url: str, nursery: trio.Nursery
) -> None:
    with trio.fail_after(30):
        service = await start_push_service(nursery)
        url = await _relay(nursery, redis_url, service)
        async with httpx.AsyncClient(base_url=url) as http:
            shoot = await create_shoot(http, title="Club night")
            code = shoot["code"]
            chris = await join(http, code, "Chris")
            alex = await join(http, code, "Alex")
            pat = await join(http, code, "Pat", "york")
            public_key = (await http.get("/api/push/key")).json()["public_key"]
            phone = Device(f"{service.origin}/push/chris")
            viewer = Device(f"{service.origin}/push/viewer")
            other_round = Device(f"{service.origin}/push/pat")
            assert (await _subscribe(http, code, phone, chris)).status_code == 201
            assert (await _subscribe(http, code, viewer)).status_code == 201
            assert (await _subscribe(http, code, other_round, pat)).status_code == 201

        await write(url, code, chris, "Chris", END_OF_9, ms=1_000)
        [message] = await service.wait_for("/push/chris")
        assert phone.open(message) == {
            "title": "Club night",
            "body": "Chris has taken the lead!",
            "tag": f"{code}:lead:national",
            "url": f"/shoot/{code}",
        }
        claims, signer = vapid_claims(message)
        assert signer == public_key  # the key browsers subscribed with
        assert claims["aud"] == service.origin
        assert claims["sub"] == "mailto:ops@example.org"
        assert time.time() < claims["exp"] <= time.time() + 24 * 3600
        assert int(message.headers["ttl"]) > 0
        [seen] = await service.wait_for("/push/viewer")
        assert viewer.open(seen)["body"] == "Chris has taken the lead!"
        assert viewer.open(seen)["url"] == f"/view/{code}"

        # Both complete 2 ends: Chris's own digest line reaches Chris's phone.
        await write(url, code, alex, "Alex", END_OF_5, ms=1_000)
        await write(url, code, chris, "Chris", END_OF_9 * 2, ms=2_000)
        await write(url, code, alex, "Alex", END_OF_5 * 2, ms=2_000)
        _, digest = await service.wait_for("/push/chris", 2)
        assert phone.open(digest)["body"] == "Chris is 1st of 2 after 2 ends."
        # Pat shoots another round: no lead change of the National is Pat's news, and the
        # sends of the first notice finished before the digest's began.
        assert [r for r in service.received if r.path == "/push/pat"] == []
        # A viewer gets lead changes only, never the digest lines meant for archers.
        assert len([r for r in service.received if r.path == "/push/viewer"]) == 1


async def test_gone_subscriptions_are_dropped_and_others_kept(
    redis_url: str, nursery: trio.Nursery
) -> None:
    with trio.fail_after(30):
        service = await start_push_service(nursery)
        service.status.update({"/push/gone": 410, "/push/unknown": 404, "/push/busy": 503})
        # A push service's redirect is not followed: the relay posts only where allowed.
        service.redirect["/push/moved"] = f"{service.origin}/push/elsewhere"
        url = await _relay(nursery, redis_url, service)
        paths = ("gone", "unknown", "busy", "moved")
        async with httpx.AsyncClient(base_url=url) as http:
            shoot = await create_shoot(http)
            code = shoot["code"]
            chris = await join(http, code, "Chris")
            alex = await join(http, code, "Alex")
            for path in paths:
                device = Device(f"{service.origin}/push/{path}")
                assert (await _subscribe(http, code, device)).status_code == 201
        assert _stored(redis_url, shoot) == 4
        await write(url, code, chris, "Chris", END_OF_9, ms=1_000)
        for path in paths:
            await service.wait_for(f"/push/{path}")
        while _stored(redis_url, shoot) != 2:  # the relay deletes after the answers
            await trio.sleep(0.02)  # polling Redis under the deadline above
        # The next notice reaches the devices kept; a batch's sends have all finished
        # before the next batch starts, so a followed redirect would have shown by now.
        await write(url, code, alex, "Alex", END_OF_9 * 2, ms=2_000)
        await service.wait_for("/push/busy", 2)
        await service.wait_for("/push/moved", 2)
        assert not [r for r in service.received if r.path == "/push/elsewhere"]
        assert [r.path for r in service.received].count("/push/gone") == 1
        async with httpx.AsyncClient(base_url=url) as http:
            metrics = (await http.get("/metrics")).text
        assert "fastshoot_push_subscriptions_dropped_total 2" in metrics


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://evil.example/push/1",
        "http://10.0.0.5/admin",
        "https://fcm.googleapis.com.evil.example/fcm/send/x",
        "https://user@fcm.googleapis.com/fcm/send/x",
        "http://fcm.googleapis.com/fcm/send/x",
        "https://fcm.googleapis.com:8443/fcm/send/x",
        "https://fcm.googleapis.com/" + "x" * 1100,
        "https://fcm.googleapis.com/fcm send",
        "javascript:alert(1)",
    ],
)
async def test_an_endpoint_outside_the_allow_list_is_refused(
    relay_url: str, redis_url: str, endpoint: str
) -> None:
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            shoot = await create_shoot(http)
            response = await _subscribe(http, shoot["code"], Device(endpoint))
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "push_endpoint_refused"
        assert error["message"]
        assert _stored(redis_url, shoot) == 0


async def test_the_default_allow_list_takes_the_browsers_push_services(
    relay_url: str, redis_url: str
) -> None:
    endpoints = [
        "https://fcm.googleapis.com/fcm/send/abc:APA91b",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAAA",
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAA",
        "https://web.push.apple.com/QGm2pE",
    ]
    async with httpx.AsyncClient(base_url=relay_url) as http:
        shoot = await create_shoot(http)
        for endpoint in endpoints:
            response = await _subscribe(http, shoot["code"], Device(endpoint))
            assert response.status_code == 201, response.text
    assert _stored(redis_url, shoot) == len(endpoints)


async def test_hostile_subscriptions_are_refused_and_change_nothing(
    relay_url: str, redis_url: str
) -> None:
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            shoot = await create_shoot(http)
            code = shoot["code"]
            chris = await join(http, code, "Chris")
            good = Device("https://fcm.googleapis.com/fcm/send/a").subscription()

            async def refused(body: Any, status: int, error: str, **kw: Any) -> None:
                response = await http.post(f"/api/shoots/{code}/push", json=body, **kw)
                assert response.status_code == status, response.text
                assert response.json()["error"]["code"] == error

            await refused(
                {"subscription": {**good, "keys": {"p256dh": "AAAA", "auth": "x"}}},
                400,
                "push_endpoint_refused",
            )
            not_a_point = {"p256dh": "BA" + "A" * 85, "auth": good["keys"]["auth"]}
            await refused(
                {"subscription": {**good, "keys": not_a_point}}, 400, "push_endpoint_refused"
            )
            short_auth = {**good["keys"], "auth": "AAAA"}
            await refused(
                {"subscription": {**good, "keys": short_auth}}, 400, "push_endpoint_refused"
            )
            await refused({"subscription": "x"}, 400, "push_endpoint_refused")
            await refused({"subscription": good, "archer_id": 7}, 400, "invalid_field")
            await refused(
                {"subscription": good, "archer_id": chris[0], "token": "wrong"}, 401, "unauthorized"
            )
            await refused([good], 400, "malformed")
            huge = {"subscription": {**good, "pad": "x" * 5000}}
            await refused(huge, 413, "too_large")
            assert _stored(redis_url, shoot) == 0

            # One archer: a few devices, then a clear refusal; a device subscribing again
            # replaces its own entry instead of taking another place.
            for n in range(MAX_DEVICES_PER_ARCHER):
                device = Device(f"https://fcm.googleapis.com/fcm/send/{n}")
                assert (await _subscribe(http, code, device, chris)).status_code == 201
                assert (await _subscribe(http, code, device, chris)).status_code == 201
            extra = Device("https://fcm.googleapis.com/fcm/send/extra")
            response = await _subscribe(http, code, extra, chris)
            assert response.status_code == 409
            assert response.json()["error"]["code"] == "push_full"
            assert _stored(redis_url, shoot) == MAX_DEVICES_PER_ARCHER

            # Unsubscribing frees the place.
            gone = {"endpoint": "https://fcm.googleapis.com/fcm/send/0"}
            response = await http.request("DELETE", f"/api/shoots/{code}/push", json=gone)
            assert response.json() == {"unsubscribed": True}
            assert (await _subscribe(http, code, extra, chris)).status_code == 201


async def test_every_relay_on_one_redis_signs_with_the_same_key(
    redis_url: str, nursery: trio.Nursery
) -> None:
    with trio.fail_after(20):
        first = await nursery.start(
            serve_relay, Settings(host="127.0.0.1", port=0, redis_url=redis_url)
        )
        second = await nursery.start(
            serve_relay, Settings(host="127.0.0.1", port=0, redis_url=redis_url)
        )
        keys = []
        for url in (first, second):
            async with httpx.AsyncClient(base_url=url) as http:
                keys.append((await http.get("/api/push/key")).json()["public_key"])
        assert keys[0] == keys[1]
        assert len(keys[0]) == 87  # 65 bytes, base64url


async def test_a_configured_key_is_used(redis_url: str, nursery: trio.Nursery) -> None:
    from relay.push.keys import VapidKeys, parse_private_key

    private = "9ET4rNgaBeUyW43dIOvO59Bhu0xQZtE0-H4YE0b9vXw"
    expected = VapidKeys(parse_private_key(private)).public_key
    settings = Settings(
        host="127.0.0.1", port=0, redis_url=redis_url, push_vapid_private_key=private
    )
    with trio.fail_after(20):
        url = await nursery.start(serve_relay, settings)
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/api/push/key")).json()["public_key"] == expected


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"PUSH_SERVICES": "http://push.example.com"}, "only a loopback push service"),
        ({"PUSH_SERVICES": "https://push.example.com/path"}, "origin only"),
        ({"PUSH_SERVICES": "ftp://push.example.com"}, "not an origin"),
        ({"PUSH_VAPID_PRIVATE_KEY": "not a key!"}, "PUSH_VAPID_PRIVATE_KEY"),
        ({"PUSH_VAPID_PRIVATE_KEY": "AAAA"}, "32 bytes"),
        ({"PUSH_SUBJECT": "ops"}, "PUSH_SUBJECT"),
        ({"PUSH_SUBJECT": "mailto:ops"}, "PUSH_SUBJECT"),
        ({"PUSH_SUBJECT": "http://archery.example.org"}, "PUSH_SUBJECT"),
    ],
)
def test_push_settings_that_cannot_work_are_refused_at_start(
    env: dict[str, str], complaint: str
) -> None:
    from relay.config import ConfigError

    with pytest.raises(ConfigError, match=complaint):
        Settings.from_env(env)


def test_push_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "PUSH_SERVICES": "https://*.push.example.com, http://127.0.0.1:9000",
            "PUSH_SUBJECT": "mailto:ops@example.org",
        }
    )
    assert settings.push_services == ("https://*.push.example.com", "http://127.0.0.1:9000")
    assert Settings.from_env({}).push_services == DEFAULT_PUSH_SERVICES


def test_a_wildcard_takes_subdomains_only() -> None:
    services = PushServices(["https://*.notify.windows.com"])
    services.check("https://wns2-par02p.notify.windows.com/w/?token=x")
    for endpoint in (
        "https://notify.windows.com/w/",
        "https://evilnotify.windows.com/w/",
        "https://x.notify.windows.com.evil.example/w/",
    ):
        with pytest.raises(EndpointRefused):
            services.check(endpoint)


@contextmanager
def _sender(redis_url: str, service: PushService, **tuning: Any) -> Iterator[PushSender]:
    """A sender on its own Redis connections (closed after), not yet running."""
    store = RedisStore(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        yield PushSender(
            store,
            SubscriptionStore(client),
            KeyHolder(store, client),
            services=PushServices([service.origin]),
            subject="mailto:ops@example.org",
            **tuning,
        )
    finally:
        client.close()
        store.close()


def _a_shoot() -> Shoot:
    now = int(time.time() * 1000)
    return Shoot("1234", "s1", "Club night", "Sam", now, now + 3_600_000, "UTC")


LEAD = Notice("lead", "national", "a", "Chris has taken the lead!", 1, 2, None, 1)


async def test_a_push_service_that_never_answers_costs_one_timeout(
    redis_url: str, nursery: trio.Nursery
) -> None:
    with trio.fail_after(20):
        service = await start_push_service(nursery)
        service.silent.add("/push/slow")
        shoot = _a_shoot()
        services = PushServices([service.origin])
        client = redis.Redis.from_url(redis_url)
        for path in ("slow", "fast"):
            device = Device(f"{service.origin}/push/{path}")
            subscription = parse_subscription(device.subscription(), services, None)
            SubscriptionStore(client).add(shoot, subscription)
        client.close()
        with _sender(redis_url, service, timeout_s=2.0, concurrency=1) as sender:
            async with trio.open_nursery() as inner:
                inner.start_soon(sender.run)
                sender.offer(shoot, LEAD, Leaderboard())
                # One request at a time: the silent service holds it for the timeout,
                # then the other device still gets the notice, whichever came first.
                await service.wait_for("/push/fast")
                await service.wait_for("/push/slow")
                while sender.statistics.failed + sender.statistics.sent < 2:
                    await trio.sleep(0.02)  # polling the sender's counters under the deadline
                inner.cancel_scope.cancel()
        assert (sender.statistics.sent, sender.statistics.failed) == (1, 1)


async def test_offering_never_blocks_a_shoot(redis_url: str, nursery: trio.Nursery) -> None:
    service = await start_push_service(nursery)
    with _sender(redis_url, service) as sender:  # not running: nothing drains the queue
        for _ in range(QUEUE_SIZE + 5):
            sender.offer(_a_shoot(), LEAD, Leaderboard())
    assert sender.statistics.notices_dropped == 5


@pytest.mark.parametrize(
    ("env", "subject"),
    [
        ({"PUSH_SUBJECT": "mailto:ops@example.org"}, "mailto:ops@example.org"),
        ({"PUBLIC_URL": "https://archery.example.org/"}, "https://archery.example.org"),
        ({"PUBLIC_URL": "https://archery.example.org:8443"}, "mailto:fast-shoot@localhost"),
        ({"PUBLIC_URL": "http://192.168.1.20:8080"}, "mailto:fast-shoot@localhost"),
        ({}, "mailto:fast-shoot@localhost"),
    ],
)
def test_the_vapid_contact_is_one_push_services_accept(env: dict[str, str], subject: str) -> None:
    chosen = subject_for(Settings.from_env(env))
    assert chosen == subject
    assert subject_signs(chosen)
