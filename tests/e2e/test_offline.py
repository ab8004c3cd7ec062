"""Scoring without signal: nothing waits for the network, nothing is lost or doubled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, expect

from .app import (
    Signal,
    open_as_archer,
    open_as_viewer,
    row,
    score,
    wait_for_service_worker,
    wait_offline,
    wait_online,
)
from .conftest import PHONE, Phone, chromium_path
from .harness import Api, RelayProcess

END_A = [9, 7, 7, 5, 5, 3]  # 36
END_B = [9, 9, 7, 5, 3, 1]  # 34
#: A reconnect after an outage waits for the next backoff step (30 s at most) plus jitter.
RECONNECT_MS = 45_000
CACHED_URLS = """async () => {
  const urls = [];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) urls.push(request.url);
  }
  return urls;
}"""


def _arrows(api: Api, code: str, archer_id: str) -> list[object]:
    arrows: list[object] = api.read(code)["archers"][archer_id]["arrows"]
    return arrows


def test_offline_ends_survive_a_reload_and_arrive_once(
    phone: Phone, api: Api, relay: RelayProcess
) -> None:
    code = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "national")
    context = phone()
    signal = Signal(context)
    archer = open_as_archer(context, code, chris)
    wait_online(archer)
    wait_for_service_worker(archer)
    viewer = open_as_viewer(phone(), code)

    signal.cut()
    wait_offline(archer)
    score(archer, END_A + END_B)
    expect(archer.get_by_test_id("pending")).to_contain_text("2 ends wait to be sent")
    expect(archer.get_by_test_id("connection")).to_contain_text("They are safe on this phone")

    archer.reload()  # no signal: the shell comes from the service worker's cache
    expect(archer.get_by_test_id("my-arrows")).to_have_text("12/72")
    expect(archer.get_by_test_id("my-total")).to_have_text("70")
    expect(archer.get_by_test_id("pending")).to_contain_text("2 ends wait to be sent")
    expect(row(viewer, "Chris")).to_contain_text("0/72 arrows")  # nothing left the phone

    signal.restore()
    wait_online(archer)
    line = row(viewer, "Chris")
    expect(line.get_by_test_id("total")).to_have_text("70")
    expect(line).to_contain_text("12/72 arrows")
    expect(archer.get_by_test_id("pending")).to_have_count(0)
    assert _arrows(api, code, chris["archer_id"]) == END_A + END_B  # exactly once, in order
    line.click()
    expect(viewer.get_by_test_id("scorecard-end")).to_have_count(2)
    # The worker cached the shell and its files, and nothing of the API.
    cached = archer.evaluate(CACHED_URLS)
    assert f"{relay.url}/" in cached
    assert any("/static/main-" in url for url in cached)
    assert not [url for url in cached if "/api/" in url or "/ws" in url]


def test_a_browser_restart_without_signal_loses_nothing(
    playwright: Playwright, relay: RelayProcess, api: Api, tmp_path: Path
) -> None:
    code = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "national")
    path = chromium_path()
    assert path is not None
    device = {k: v for k, v in playwright.devices[PHONE].items() if k != "default_browser_type"}

    def launch(offline: bool) -> BrowserContext:
        return playwright.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=path,
            base_url=relay.url,
            offline=offline,
            **device,  # type: ignore[arg-type]
        )

    context = launch(offline=False)
    try:
        signal = Signal(context)
        archer = open_as_archer(context, code, chris)
        wait_online(archer)
        wait_for_service_worker(archer)
        signal.cut()
        wait_offline(archer)
        score(archer, END_A)
        expect(archer.get_by_test_id("pending")).to_contain_text("1 end waits to be sent")
        expect(archer.get_by_test_id("connection")).to_contain_text(
            "It is safe on this phone and goes out when you have signal."
        )
    finally:
        context.close()  # the browser quits with the end still unsent

    context = launch(offline=True)
    try:
        archer = context.pages[0] if context.pages else context.new_page()
        archer.goto(f"/shoot/{code}")
        expect(archer.get_by_test_id("my-arrows")).to_have_text("6/72")
        expect(archer.get_by_test_id("pending")).to_contain_text("1 end waits to be sent")
        assert _arrows(api, code, chris["archer_id"]) == []
        context.set_offline(False)
        wait_online(archer)
        expect(archer.get_by_test_id("pending")).to_have_count(0)
        assert _arrows(api, code, chris["archer_id"]) == END_A
    finally:
        context.close()


@pytest.fixture
def own_relay(tmp_path: Path) -> Iterator[RelayProcess]:
    """A relay for this test alone, free to be killed and restarted."""
    process = RelayProcess(tmp_path / "relay")
    process.start()
    yield process
    process.stop()


def test_ends_scored_while_the_relay_is_down_arrive_once(
    phone: Phone, own_relay: RelayProcess
) -> None:
    api = Api(own_relay.url)
    try:
        code = api.create_shoot()["code"]
        chris = api.join(code, "Chris", "national")
        archer = open_as_archer(phone(base_url=own_relay.url), code, chris)
        viewer = open_as_viewer(phone(base_url=own_relay.url), code)
        wait_for_service_worker(archer)
        score(archer, [1])
        expect(row(viewer, "Chris").get_by_test_id("total")).to_have_text("1")
        archer.get_by_role("button", name="Undo").click()
        expect(row(viewer, "Chris").get_by_test_id("total")).to_have_text("0")

        own_relay.kill()  # the relay and its Redis die at once
        expect(archer.get_by_test_id("connection")).not_to_have_attribute("data-state", "online")
        score(archer, END_A + END_B)
        expect(archer.get_by_test_id("pending")).to_contain_text("2 ends wait to be sent")
        archer.reload()  # the relay is gone: the shell comes from the service worker
        expect(archer.get_by_test_id("my-arrows")).to_have_text("12/72")

        own_relay.start()  # same port, same data directory
        # Both phones retry with jittered backoff (capped at 30 s) while the relay is down.
        expect(archer.get_by_test_id("connection")).to_have_attribute(
            "data-state", "online", timeout=RECONNECT_MS
        )
        line = row(viewer, "Chris")
        expect(line.get_by_test_id("total")).to_have_text("70", timeout=RECONNECT_MS)
        expect(line).to_contain_text("12/72 arrows")
        expect(archer.get_by_test_id("pending")).to_have_count(0)
        assert _arrows(api, code, chris["archer_id"]) == END_A + END_B
    finally:
        api.close()


def _chris_on_a_phone(
    phone: Phone, api: Api
) -> tuple[str, dict[str, Any], tuple[Page, Signal], tuple[BrowserContext, Signal]]:
    """Chris joined a new shoot; his phone has it open, his tablet nothing yet (each with
    the signal a test cuts)."""
    code: str = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "national")
    phone_context, tablet_context = phone(), phone()
    signals = Signal(phone_context), Signal(tablet_context)  # routes every socket from now on
    on_phone = open_as_archer(phone_context, code, chris)
    return code, chris, (on_phone, signals[0]), (tablet_context, signals[1])


def _score_offline_on_both(
    older: tuple[Page, Signal, list[int]], newer: tuple[Page, Signal, list[int]]
) -> None:
    """Both devices score while offline, ``older`` first; ``newer`` reconnects and is
    acknowledged before ``older`` reconnects."""
    for _, signal, _ in (older, newer):
        signal.cut()
    for page, _, _ in (older, newer):
        wait_offline(page)
    for page, _, arrows in (older, newer):
        score(page, arrows)
    page, signal, _ = newer
    signal.restore()
    wait_online(page)
    expect(page.get_by_test_id("pending")).to_have_count(0)
    older[1].restore()


def test_two_devices_of_one_archer_converge_and_the_older_shows_what_was_replaced(
    phone: Phone, api: Api, relay: RelayProcess
) -> None:
    code, chris, (on_phone, phone_signal), (tablet_context, tablet_signal) = _chris_on_a_phone(
        phone, api
    )
    # The tablet joins through the link the phone shows only to this archer.
    on_phone.get_by_text("Continue on another device").click()
    link = on_phone.get_by_test_id("device-link").inner_text()
    assert link.startswith(f"{relay.url}/join/{code}#archer=")
    on_tablet = tablet_context.new_page()
    on_tablet.goto(link)
    expect(on_tablet).to_have_url(f"{relay.url}/shoot/{code}")
    expect(row(on_tablet, "Chris")).to_contain_text("(you)")
    viewer = open_as_viewer(phone(), code)
    expect(viewer.get_by_test_id("device-link")).to_have_count(0)
    wait_online(on_phone)
    wait_online(on_tablet)

    # The phone's end is older, and not the tablet's first end: it is lost.
    _score_offline_on_both(
        (on_phone, phone_signal, END_B), (on_tablet, tablet_signal, END_A + END_B)
    )

    replaced = on_phone.get_by_test_id("replaced")
    expect(replaced).to_be_visible()
    expect(replaced.get_by_test_id("replaced-ends")).to_have_text(
        "Your end 1 (9 9 7 5 3 1) from this device was replaced by a newer write from another device."
    )
    expect(replaced.get_by_test_id("replaced-mine")).to_have_text("1 end, 6 arrows, total 34")
    expect(replaced.get_by_test_id("replaced-winner")).to_have_text("2 ends, 12 arrows, total 70")
    for page in (on_phone, on_tablet):
        expect(page.get_by_test_id("my-arrows")).to_have_text("12/72")
        expect(page.get_by_test_id("my-total")).to_have_text("70")
    assert _arrows(api, code, chris["archer_id"]) == END_A + END_B
    expect(row(viewer, "Chris").get_by_test_id("total")).to_have_text("70")
    # The archer wants this device's end back: written again, as the newest state.
    replaced.get_by_role("button", name="Restore this device's score").click()
    expect(replaced).to_have_count(0)
    for page in (on_phone, on_tablet):
        expect(page.get_by_test_id("my-total")).to_have_text("34")
    expect(row(viewer, "Chris").get_by_test_id("total")).to_have_text("34")
    assert _arrows(api, code, chris["archer_id"]) == END_B


def test_an_end_contained_in_the_other_devices_newer_write_is_not_reported_lost(
    phone: Phone, api: Api, relay: RelayProcess
) -> None:
    code, chris, (on_phone, phone_signal), (tablet_context, tablet_signal) = _chris_on_a_phone(
        phone, api
    )
    on_tablet = open_as_archer(tablet_context, code, chris)
    wait_online(on_phone)
    wait_online(on_tablet)
    # The phone's end is older, but the tablet's newer write starts with the same end.
    _score_offline_on_both(
        (on_phone, phone_signal, END_A), (on_tablet, tablet_signal, END_A + END_B)
    )
    wait_online(on_phone)
    expect(on_phone.get_by_test_id("pending")).to_have_count(0)
    expect(on_phone.get_by_test_id("my-total")).to_have_text("70")
    expect(on_phone.get_by_test_id("replaced")).to_have_count(0)
