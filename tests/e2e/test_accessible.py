"""Every screen checked with axe-core, the keypad used by keyboard, the app installable.

axe-core comes from the web client's npm dev dependencies (``clients/web/node_modules``,
installed by the build) and is injected into each page by the test, never shipped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Playwright, expect

from .app import open_as_archer, open_as_viewer, score, wait_online
from .conftest import ROOT, Phone, chromium_path
from .harness import Api, RelayProcess

AXE = ROOT / "clients" / "web" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def assert_accessible(page: Page, screen: str) -> None:
    """No serious or critical axe violation on what the page shows now."""
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: build the web client (python hatch_build.py)")
    page.add_script_tag(path=str(AXE))
    results: dict[str, Any] = page.evaluate("axe.run(document, { resultTypes: ['violations'] })")
    bad = [v for v in results["violations"] if v["impact"] in SERIOUS]
    details = [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in bad
    ]
    assert not bad, f"{screen}: " + json.dumps(details, indent=1)


def test_every_screen_passes_axe(phone: Phone, api: Api) -> None:
    context = phone()
    page = context.new_page()
    page.goto("/")
    expect(page.get_by_role("heading", name="Join a shoot")).to_be_visible()
    assert_accessible(page, "home")

    page.get_by_role("button", name="Scan a code").click()  # no camera here: the fallback
    expect(page.get_by_test_id("scan-problem")).to_be_visible()
    assert_accessible(page, "home, scanner without a camera")

    page.get_by_label("Your name").fill("Sam")
    page.get_by_role("button", name="Create shoot").click()
    expect(page.get_by_test_id("share-code")).to_be_visible()
    assert_accessible(page, "shoot created (share, loopback warning)")
    code = page.get_by_test_id("share-code").inner_text()

    page.get_by_role("button", name="Join as an archer").click()
    expect(page.get_by_label("Your name")).to_be_visible()
    assert_accessible(page, "join form")

    chris = api.join(code, "Chris", "national")
    alex = api.join(code, "Alex", "national")
    archer = open_as_archer(phone(), code, chris)
    wait_online(archer)
    score(archer, [9, 7, 5])
    archer.get_by_text("Continue on another device").click()
    archer.get_by_text("Invite others to this shoot").click()
    expect(archer.get_by_test_id("device-qr")).to_be_visible()
    assert_accessible(archer, "archer's scoring screen")

    other = open_as_archer(phone(), code, alex)
    score(other, [9, 9, 9, 9, 9, 9])
    expect(archer.get_by_test_id("toast").first).to_be_visible()
    assert_accessible(archer, "archer's screen with a toast")

    archer.get_by_test_id("board-row").first.click()
    expect(archer.get_by_role("dialog")).to_be_visible()
    assert_accessible(archer, "scorecard")

    viewer = open_as_viewer(phone(), code)
    assert_accessible(viewer, "viewer")


def test_keypad_works_by_keyboard_and_reads_arrow_values(phone: Phone, api: Api) -> None:
    code = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "wa720_70")  # 10-zone: X and M on the keypad
    page = open_as_archer(phone(has_touch=False, is_mobile=False), code, chris)
    keypad = page.get_by_role("group", name="Score the next arrow")
    expect(keypad.get_by_role("button", name="Score X, inner ten, scores 10")).to_be_visible()
    expect(keypad.get_by_role("button", name="Score Miss, scores 0")).to_be_visible()

    keypad.get_by_role("button", name="Score X, inner ten, scores 10").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("my-arrows")).to_contain_text("1/")
    page.keyboard.press("Tab")  # the next key, 10
    page.keyboard.press("Space")
    expect(page.get_by_test_id("my-arrows")).to_contain_text("2/")
    end = page.get_by_test_id("current-end")
    expect(end.get_by_role("listitem", name="X, inner ten, scores 10")).to_have_count(1)
    expect(end.get_by_role("listitem", name="10", exact=True)).to_have_count(1)


def test_the_app_is_installable(
    playwright: Playwright, relay: RelayProcess, tmp_path: Path
) -> None:
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    # A profile on disk: Chromium never offers to install from an incognito-like context.
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=path, base_url=relay.url
    )
    try:
        _check_installable(context.new_page())
    finally:
        context.close()


def _check_installable(page: Page) -> None:
    page.goto("/")
    href = page.locator('link[rel="manifest"]').get_attribute("href")
    assert href
    assert re.match(r"^/static/app-[A-Z0-9]+\.webmanifest$", href)
    response = page.request.get(href)
    assert response.ok
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = response.json()
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"any", "192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        got = page.request.get(icon["src"])
        assert got.ok, icon
        if icon["type"] == "image/png":
            body = got.body()
            assert body[:8] == b"\x89PNG\r\n\x1a\n"
            width = int.from_bytes(body[16:20], "big")
            assert f"{width}x{width}" == icon["sizes"]
    # Chromium itself reads the manifest and finds no installability errors.
    session = page.context.new_cdp_session(page)
    errors = session.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert errors == [], errors


def test_manifest_icons_are_built_not_committed() -> None:
    tracked = [p.name for p in (ROOT / "clients" / "web" / "static").iterdir()]
    assert not [name for name in tracked if name.endswith((".png", ".ico", ".jpg"))]
    assert Path(ROOT / "clients" / "web" / "static" / "icon.svg").exists()
