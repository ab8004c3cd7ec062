"""Browser fixtures: one relay and one Chromium for the session, a phone per archer.

Browser tests are plain (sync) pytest functions: Playwright's sync API runs its own loop
in this thread, and pytest-trio leaves sync tests alone. Debian's Chromium is driven
through ``executable_path`` (Playwright's own browser download is never used). Each
archer or viewer gets a fresh browser context emulating a Pixel 7, so IndexedDB, the
service worker and cookies are theirs alone. When a test fails, every page it opened is
saved as a screenshot under ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from .harness import Api, RelayProcess

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
PHONE = "Pixel 7"

#: Every expectation waits this long by default: a loaded 2-core CI machine is slow, and an
#: expectation returns as soon as it holds.
expect.set_options(timeout=15_000)


def chromium_path() -> str | None:
    return os.environ.get("FAST_SHOOT_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="session")
def relay(tmp_path_factory: pytest.TempPathFactory, web_dist: Path) -> Iterator[RelayProcess]:
    """``fast-shoot serve`` with its embedded Redis, shared by every browser test."""
    process = RelayProcess(tmp_path_factory.mktemp("relay"))
    process.start()
    yield process
    process.stop()


@pytest.fixture
def api(relay: RelayProcess) -> Iterator[Api]:
    client = Api(relay.url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    browser = playwright.chromium.launch(executable_path=path)
    yield browser
    browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()

Phone = Callable[..., BrowserContext]


@pytest.fixture
def phone(
    request: pytest.FixtureRequest, browser: Browser, playwright: Playwright, relay: RelayProcess
) -> Iterator[Phone]:
    """A factory of phone-sized browser contexts pointed at the session's relay.

    ``phone()`` is a new device; ``phone(base_url=...)`` points it at another relay.
    """
    contexts: list[BrowserContext] = []
    device = {k: v for k, v in playwright.devices[PHONE].items() if k != "default_browser_type"}

    def make(**options: object) -> BrowserContext:
        settings: dict[str, object] = {
            **device,
            "base_url": relay.url,
            "timezone_id": "Europe/London",
            "locale": "en-GB",
        }
        settings.update(options)
        context = browser.new_context(**settings)  # type: ignore[arg-type]
        contexts.append(context)
        return context

    yield make
    if request.node.stash.get(_FAILED, False):
        _screenshots(request.node.name, contexts)
    for context in contexts:
        context.close()


def _screenshots(test_name: str, contexts: list[BrowserContext]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
    for c, context in enumerate(contexts):
        for p, page in enumerate(context.pages):
            try:
                page.screenshot(
                    path=str(ARTIFACTS / f"{safe}-device{c}-page{p}.png"), full_page=True
                )
            except Exception as exc:  # a crashed page must not hide the test's own failure
                print(f"could not save a screenshot of {page.url}: {exc}")


def open_page(context: BrowserContext, path: str) -> Page:
    page = context.new_page()
    page.goto(path)
    return page
