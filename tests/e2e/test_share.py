"""Sharing a shoot: the in-app scanner, the loopback warning, and the device hand-off code.

The scanner tests use a browser whose camera is a y4m video made from the relay's own
``qr.png`` (see camera.py); Debian's Chromium has no ``BarcodeDetector``, so this runs
the npm decoder's worker, as most phones other than Android Chrome would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, expect

from .app import open_as_archer
from .camera import qr_png_of, write_camera
from .conftest import PHONE, Phone, chromium_path
from .harness import Api, RelayProcess


@pytest.fixture(scope="module")
def camera_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("camera") / "camera.y4m"
    write_camera(path, qr_png_of("nothing to see yet"))
    return path


@pytest.fixture(scope="module")
def camera_browser(playwright: Playwright, camera_file: Path) -> Iterator[Browser]:
    """A Chromium whose camera plays ``camera_file`` and may be used without asking."""
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    browser = playwright.chromium.launch(
        executable_path=path,
        args=[
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={camera_file}",
        ],
    )
    yield browser
    browser.close()


def _camera_phone(browser: Browser, playwright: Playwright, relay: RelayProcess):  # type: ignore[no-untyped-def]
    device = {k: v for k, v in playwright.devices[PHONE].items() if k != "default_browser_type"}
    return browser.new_context(**device, base_url=relay.url, permissions=["camera"])  # type: ignore[arg-type]


def test_scanning_the_relays_qr_code_joins_the_shoot(
    camera_browser: Browser,
    camera_file: Path,
    playwright: Playwright,
    relay: RelayProcess,
    api: Api,
) -> None:
    code = api.create_shoot(title="Scan night")["code"]
    write_camera(camera_file, api.http.get(f"/api/shoots/{code}/qr.png").content)
    context = _camera_phone(camera_browser, playwright, relay)
    try:
        page = context.new_page()
        page.goto("/")
        page.get_by_role("button", name="Scan a code").click()
        expect(page).to_have_url(re.compile(rf"/join/{code}$"), timeout=30_000)
        page.get_by_label("Your name").fill("Robin")
        page.get_by_label("Find your round").fill("national")
        # Waits until the round list has loaded (a loaded phone may still be fetching it).
        page.get_by_label("Round", exact=True).select_option("national")
        page.get_by_role("button", name="Join and start scoring").click()
        expect(page).to_have_url(re.compile(rf"/shoot/{code}$"))
        expect(page.locator(".keypad")).to_be_visible()
        assert "Robin" in {s["name"] for s in api.read(code)["archers"].values()}
    finally:
        context.close()


def test_scanning_another_code_says_it_is_not_a_join_link(
    camera_browser: Browser, camera_file: Path, playwright: Playwright, relay: RelayProcess
) -> None:
    write_camera(camera_file, qr_png_of("https://example.org/menu"))
    context = _camera_phone(camera_browser, playwright, relay)
    try:
        page = context.new_page()
        page.goto("/")
        page.get_by_role("button", name="Scan a code").click()
        expect(page.get_by_test_id("scan-status")).to_contain_text(
            "not a fast-shoot join link", timeout=30_000
        )
        assert page.url.endswith("/")  # nothing joined, still on the start screen
        page.get_by_role("button", name="Stop scanning").click()
        expect(page.get_by_test_id("scanner")).to_have_count(0)
    finally:
        context.close()


def test_scanning_the_device_hand_off_code_continues_as_that_archer(
    camera_browser: Browser,
    camera_file: Path,
    playwright: Playwright,
    relay: RelayProcess,
    phone: Phone,
    api: Api,
) -> None:
    code = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "national")
    first = open_as_archer(phone(), code, chris)
    first.get_by_text("Continue on another device").click()
    write_camera(camera_file, first.get_by_test_id("device-qr").screenshot())
    context = _camera_phone(camera_browser, playwright, relay)
    try:
        tablet = context.new_page()
        tablet.goto("/")
        tablet.get_by_role("button", name="Scan a code").click()
        expect(tablet).to_have_url(re.compile(rf"/shoot/{code}$"), timeout=30_000)
        expect(tablet.get_by_test_id("board-row").filter(has_text="(you)")).to_contain_text("Chris")
    finally:
        context.close()


def test_without_a_camera_the_scanner_says_to_type_the_code(phone: Phone) -> None:
    page = phone().new_page()  # the session browser has no camera at all
    page.goto("/")
    page.get_by_role("button", name="Scan a code").click()
    expect(page.get_by_test_id("scan-problem")).to_contain_text("Type the four-digit code")
    expect(page.get_by_label("Shoot code")).to_be_visible()


def test_creator_on_a_loopback_address_is_warned_that_phones_cannot_open_the_link(
    phone: Phone, relay: RelayProcess
) -> None:
    page = phone().new_page()
    page.goto("/")
    page.get_by_label("Your name").fill("Sam")
    page.get_by_role("button", name="Create shoot").click()
    warning = page.get_by_test_id("loopback-warning")
    expect(warning).to_contain_text("Phones cannot open this link")
    expect(warning).to_contain_text("127.0.0.1")


def test_public_url_makes_join_links_and_the_qr_code_point_there(
    phone: Phone, tmp_path: Path
) -> None:
    public = RelayProcess(tmp_path / "relay", extra_env={"PUBLIC_URL": "https://archery.example"})
    public.start()
    try:
        page = phone(base_url=public.url).new_page()
        page.goto("/")
        page.get_by_label("Your name").fill("Sam")
        page.get_by_role("button", name="Create shoot").click()
        code = page.get_by_test_id("share-code").inner_text()
        expect(page.get_by_test_id("join-link")).to_have_text(
            f"https://archery.example/join/{code}"
        )
        expect(page.get_by_test_id("loopback-warning")).to_have_count(0)
    finally:
        public.stop()


def test_device_hand_off_qr_is_drawn_only_when_opened(phone: Phone, api: Api) -> None:
    code = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "national")
    page = open_as_archer(phone(), code, chris)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    expect(page.get_by_test_id("device-qr")).to_have_count(0)
    page.get_by_text("Continue on another device").click()
    expect(page.get_by_test_id("device-qr")).to_be_visible()
    link = page.get_by_test_id("device-link").inner_text()
    assert f"#archer={chris['archer_id']}&token={chris['token']}" in link
    # The secret never leaves the phone: no request carries the token.
    assert not [url for url in requests if chris["token"] in url]
