"""What a person does in the app, as page actions the browser tests share."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from playwright.sync_api import BrowserContext, Page, WebSocketRoute, expect

Arrow = int | str


def open_as_archer(context: BrowserContext, code: str, joined: dict[str, Any]) -> Page:
    """Open the shoot as an archer who joined over HTTP, through the "continue on another
    device" link (it carries the archer id and token in the fragment)."""
    page = context.new_page()
    page.goto(f"/join/{code}#archer={joined['archer_id']}&token={joined['token']}")
    expect(page).to_have_url(re.compile(rf"/shoot/{code}$"))
    expect(page.locator(".keypad")).to_be_visible()
    return page


def open_as_viewer(context: BrowserContext, code: str) -> Page:
    page = context.new_page()
    page.goto(f"/view/{code}")
    expect(page.get_by_test_id("board")).to_be_visible()
    return page


def score(page: Page, arrows: Sequence[Arrow]) -> None:
    """Tap each arrow's value on the keypad, waiting for the screen to show each one."""
    for arrow in arrows:
        shown = page.get_by_test_id("my-arrows").inner_text().split("/")[0]
        page.locator(f'.keypad button[data-value="{arrow}"]').click()
        expect(page.get_by_test_id("my-arrows")).to_contain_text(f"{int(shown) + 1}/")


def row(page: Page, name: str) -> Any:
    """The leaderboard line of the archer called ``name``."""
    return page.get_by_test_id("board-row").filter(
        has=page.get_by_test_id("name").get_by_text(name, exact=True)
    )


def wait_online(page: Page) -> None:
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")


def wait_offline(page: Page) -> None:
    """The screen says offline: after the signal is cut, the layout no longer moves (the
    client waits for the network before it dials again), so taps land where aimed."""
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "offline")


def wait_for_service_worker(page: Page) -> None:
    """The app shell is cached once the worker is active and controls the page."""
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.wait_for_function("navigator.serviceWorker.controller !== null")


class Signal:
    """A device's signal, cut and restored: the live socket closed, HTTP offline.

    ``context.set_offline(True)`` alone freezes an open WebSocket instead of closing it, so
    every socket is routed through here, and cutting the signal closes it and refuses new
    ones until the signal is back.
    """

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.down = False
        self.sockets: list[tuple[WebSocketRoute, WebSocketRoute]] = []
        context.route_web_socket(re.compile(r"/ws$"), self._route)

    def _route(self, ws: WebSocketRoute) -> None:
        if self.down:
            ws.close(code=1001, reason="no signal")
            return
        server = ws.connect_to_server()
        self.sockets.append((ws, server))

    def cut(self) -> None:
        self.down = True
        self.context.set_offline(True)
        for ws, server in self.sockets:
            server.close(code=1001, reason="no signal")
            ws.close(code=1001, reason="no signal")
        self.sockets.clear()

    def restore(self) -> None:
        self.down = False
        self.context.set_offline(False)
