"""Web Push in real Chromium: the service worker shows what the relay pushes.

Headless Chromium has no push service of its own (its subscriptions go through Google's,
out of reach here), so the message is handed to the worker the way DevTools' "Push"
button does it, with CDP's ``ServiceWorker.deliverPushMessage``. The message is built by
the relay's own code, so the worker is tested against exactly what the relay sends (the
relay's side, through a real local push service, is ``tests/test_push.py``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from playwright.sync_api import BrowserContext, CDPSession, Page, expect

from relay.push.sender import payload_for
from sync.models import Shoot
from sync.notifications import Notice

from .app import open_as_archer, wait_for_service_worker
from .conftest import Phone
from .harness import Api

NOTIFICATIONS = """() => navigator.serviceWorker.ready
  .then((r) => r.getNotifications())
  .then((ns) => ns.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })))"""


def _registration_id(cdp: CDPSession, page: Page) -> str:
    """The registration of the worker that controls ``page``.

    Found through the worker versions ``ServiceWorker.enable`` reports, by the page's own
    target among their controlled clients: the browser is shared by many contexts whose
    workers all have the same scope on the same relay, so the scope alone could name
    another context's worker.
    """
    me = cdp.send("Target.getTargetInfo")["targetInfo"]["targetId"]
    versions: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerVersionUpdated", lambda e: versions.extend(e["versions"]))
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for version in versions:
            if me in version.get("controlledClients", []):
                return str(version["registrationId"])
        page.wait_for_timeout(50)  # lets Playwright deliver the CDP events (polled, bounded)
    raise AssertionError(f"no worker controls this page: {versions}")


def _push_until_shown(
    cdp: CDPSession, page: Page, registration: str, data: str, tag: str
) -> dict[str, Any]:
    """Pushes ``data`` and returns the notification with ``tag`` that the worker shows.

    A real push service delivers a message again until the browser takes it; DevTools'
    delivery is fire-and-forget, and once in a full CI run a message delivered right
    after another never reached the worker. So the message is delivered again, at most
    three times, when nothing appeared: the worker's handling of a message is the same
    every time, so this cannot hide a fault of the app's, and a worker that never shows
    the notification still fails, with everything it did show.
    """
    origin = page.evaluate("location.origin")
    shown: list[dict[str, Any]] = []
    for _ in range(3):
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": origin, "registrationId": registration, "data": data},
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            shown = page.evaluate(NOTIFICATIONS)
            found = [n for n in shown if n["tag"] == tag]
            if found:
                return found[0]
            page.wait_for_timeout(100)  # polling under the deadline above
    raise AssertionError(f"no notification tagged {tag!r}; the worker showed {shown}")


def _shoot(api: Api, code: str) -> Shoot:
    info = api.read(code)["shoot"]
    return Shoot(
        code,
        info["shoot_id"],
        info["title"],
        info["creator"],
        info["created_ms"],
        info["expires_ms"],
        info["time_zone"],
    )


def _archer_page(phone: Phone, api: Api) -> tuple[BrowserContext, Page, str, Shoot]:
    code = api.create_shoot("Sam", "Club night")["code"]
    chris = api.join(code, "Chris", "national")
    context = phone(permissions=["notifications"])
    page = open_as_archer(context, code, chris)
    wait_for_service_worker(page)
    return context, page, code, _shoot(api, code)


def test_a_pushed_notice_is_shown_by_the_service_worker(phone: Phone, api: Api) -> None:
    context, page, code, shoot = _archer_page(phone, api)
    cdp = context.new_cdp_session(page)
    registration = _registration_id(cdp, page)

    notice = Notice("lead", "national", "alex", "Alex has taken the lead!", 1, 2, None, 1)
    data = payload_for(shoot, notice, "chris").decode()
    lead = _push_until_shown(cdp, page, registration, data, f"{code}:lead:national")
    assert lead == {
        "title": "Club night",
        "body": "Alex has taken the lead!",
        "tag": f"{code}:lead:national",
        "data": {"url": f"/shoot/{code}"},
    }

    # A message that is not what the relay sends still shows something (browsers demand a
    # notification for every push), never its raw text, and never opens another site.
    hostile = json.dumps({"body": "<b>x</b>" * 200, "url": "https://evil.example/"})
    other = _push_until_shown(cdp, page, registration, hostile, "fast-shoot")
    assert other["title"] == "fast-shoot"
    assert len(other["body"]) <= 300
    assert other["data"] == {"url": "/"}


def test_a_browser_whose_push_service_fails_says_so_and_keeps_notifying(
    phone: Phone, api: Api
) -> None:
    """Headless Chromium cannot reach a push service: turning notifications on still turns
    on the in-page ones, and a sentence says why they cannot arrive with the app closed."""
    _, page, _, _ = _archer_page(phone, api)
    toggle = page.get_by_test_id("notify-state")
    toggle.get_by_role("button", name="Notify me of lead changes").click()
    expect(toggle).to_have_attribute("data-state", "on")
    note = page.get_by_test_id("push-note")
    expect(note).to_contain_text("while the app is closed", timeout=30_000)
    expect(note).to_contain_text("they arrive while this page is open")
    toggle.get_by_role("button", name="Stop notifications").click()
    expect(toggle).to_have_attribute("data-state", "off")
    expect(note).to_have_count(0)
