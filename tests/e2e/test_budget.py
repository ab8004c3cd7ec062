"""The scoring screen's first load stays small enough for a phone on a weak signal."""

from __future__ import annotations

from playwright.sync_api import Response, expect

from .app import open_as_archer
from .conftest import Phone
from .harness import Api

#: HTML + JS + CSS of the first load, as transferred (gzipped), in bytes.
BUDGET = 150_000


def test_first_load_of_the_scoring_screen_is_under_budget(phone: Phone, api: Api) -> None:
    code = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "national")
    context = phone()
    sizes: dict[str, int] = {}

    def count(response: Response) -> None:
        if response.request.resource_type in ("document", "script", "stylesheet"):
            transferred = response.request.sizes()["responseBodySize"]
            sizes[response.url] = max(sizes.get(response.url, 0), transferred)

    context.on("response", count)
    page = open_as_archer(context, code, chris)
    expect(page.get_by_test_id("board")).to_be_visible()
    scripts = [url for url in sizes if "/static/main-" in url]
    styles = [url for url in sizes if "/static/app-" in url]
    assert scripts
    assert styles
    total = sum(sizes.values())
    print(f"first load: {total} B gzipped over {len(sizes)} responses")
    assert 0 < total < BUDGET
