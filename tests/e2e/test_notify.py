"""The relay's notices on an archer's phone: toasts, and system notifications once asked.

Every toast the page shows and every system notification it asks its service worker for
are recorded by an init script (a toast lasts seconds, and a repeated notification with
the same tag replaces the first, so counting what is on screen at the end would miss a
duplicate). The notifications are also read back from the worker's registration.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from .app import open_as_archer, row, score, wait_for_service_worker, wait_online
from .conftest import Phone
from .harness import Api, RelayProcess

RECONNECT_MS = 45_000

RECORD = """
window.__toasts = [];
window.__notified = [];
new MutationObserver((changes) => {
  for (const change of changes) for (const node of change.addedNodes) {
    if (node.nodeType === 1 && node.matches('[data-testid="toast"]')) window.__toasts.push(node.firstChild.textContent);
  }
}).observe(document, { childList: true, subtree: true });
const show = ServiceWorkerRegistration.prototype.showNotification;
ServiceWorkerRegistration.prototype.showNotification = function (title, options) {
  window.__notified.push(options && options.body);
  return show.call(this, title, options);
};
"""


@pytest.fixture
def own_relay(tmp_path: Path) -> Iterator[RelayProcess]:
    """A relay for this test alone, free to be restarted."""
    process = RelayProcess(tmp_path / "relay")
    process.start()
    yield process
    process.stop()


def _recorded(page: Page, what: str, text: str) -> int:
    values: list[Any] = page.evaluate(f"window.__{what}")
    return sum(1 for value in values if value == text)


def _shown_by_worker(page: Page) -> list[str]:
    bodies: list[str] = page.evaluate(
        "navigator.serviceWorker.ready.then(r => r.getNotifications()).then(ns => ns.map(n => n.body))"
    )
    return bodies


def _archer(context: BrowserContext, code: str, joined: dict[str, Any]) -> Page:
    context.add_init_script(RECORD)
    return open_as_archer(context, code, joined)


def test_overtake_gives_one_toast_and_one_notification_and_a_restart_gives_none(
    phone: Phone, own_relay: RelayProcess
) -> None:
    api = Api(own_relay.url)
    try:
        code = api.create_shoot(title="Club night")["code"]
        chris = api.join(code, "Chris", "national")
        alex = api.join(code, "Alex", "national")
        mine = _archer(phone(base_url=own_relay.url, permissions=["notifications"]), code, chris)
        other = _archer(phone(base_url=own_relay.url), code, alex)
        wait_for_service_worker(mine)

        # Never asked on load: the person turns notifications on with a button.
        toggle = mine.get_by_test_id("notify-state")
        expect(toggle).to_have_attribute("data-state", "off")
        toggle.get_by_role("button", name="Notify me of lead changes").click()
        expect(toggle).to_have_attribute("data-state", "on")

        score(mine, [7, 7, 7, 7, 7, 7])
        expect(mine.get_by_test_id("toast")).to_contain_text(["Chris has taken the lead!"])
        score(other, [9, 9, 9, 9, 9, 9])
        overtaken = "Alex has taken the lead!"
        expect(mine.get_by_test_id("toast").filter(has_text=overtaken)).to_have_count(1)
        mine.wait_for_function(
            "text => window.__notified.includes(text)", arg=overtaken, timeout=15_000
        )
        assert overtaken in _shown_by_worker(mine)
        # The list under the board keeps only the lead that is still true.
        expect(mine.get_by_test_id("notices")).to_contain_text(overtaken)
        expect(mine.get_by_test_id("notices")).not_to_contain_text("Chris has taken the lead!")

        own_relay.stop()
        own_relay.start()  # same port, same data: the notifier's memory is in the document
        for page in (mine, other):
            expect(page.get_by_test_id("connection")).to_have_attribute(
                "data-state", "online", timeout=RECONNECT_MS
            )
        wait_online(mine)

        # Both complete end 2 (Alex still leads): the digest follows, and nothing repeats.
        score(other, [9, 9, 9, 9, 9, 9])
        expect(row(mine, "Alex").get_by_test_id("total")).to_have_text("108")
        score(mine, [7, 7, 7, 7, 7, 7])
        digest = "Chris is 2nd of 2 after 2 ends."
        expect(mine.get_by_test_id("toast").filter(has_text=digest)).to_have_count(1)
        mine.wait_for_function("text => window.__notified.includes(text)", arg=digest)
        assert _recorded(mine, "toasts", overtaken) == 1
        assert _recorded(mine, "notified", overtaken) == 1
        assert _recorded(mine, "toasts", "Chris has taken the lead!") == 1
        assert _recorded(mine, "toasts", digest) == 1
        assert _recorded(mine, "notified", digest) == 1
        # Alex's own page got no system notifications: Alex never turned them on.
        assert other.evaluate("window.__notified") == []
    finally:
        api.close()


def test_notifications_can_be_turned_off(phone: Phone, api: Api) -> None:
    code = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "national")
    alex = api.join(code, "Alex", "national")
    mine = _archer(phone(permissions=["notifications"]), code, chris)
    other = _archer(phone(), code, alex)
    wait_for_service_worker(mine)
    toggle = mine.get_by_test_id("notify-state")
    toggle.get_by_role("button", name="Notify me of lead changes").click()
    toggle.get_by_role("button", name="Stop notifications").click()
    expect(toggle).to_have_attribute("data-state", "off")
    mine.reload()  # the choice is remembered
    expect(mine.get_by_test_id("notify-state")).to_have_attribute("data-state", "off")

    score(other, [9, 9, 9, 9, 9, 9])
    expect(mine.get_by_test_id("toast").filter(has_text="Alex has taken the lead!")).to_have_count(
        1
    )
    assert mine.evaluate("window.__notified") == []


def test_notifications_are_never_asked_for_on_load(phone: Phone, api: Api) -> None:
    code = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "national")
    context = phone()
    context.add_init_script(
        "window.__asked = 0; const ask = Notification.requestPermission;"
        "Notification.requestPermission = function () { window.__asked += 1; return ask.call(this); };"
    )
    page = open_as_archer(context, code, chris)
    wait_online(page)
    assert page.evaluate("window.__asked") == 0
    expect(page.get_by_test_id("notify-state")).to_have_attribute("data-state", "off")
