"""Results to print and share, and the spectators' screens, in Chromium against a real relay.

The printed results are checked through Chromium's own PDF output (``page.pdf()``), read
back as text with pypdf; the share image is checked as a PNG and by what the page drew
on its canvas (names go to ``fillText`` as text, never through HTML).
"""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from .app import open_as_archer, score
from .conftest import Phone
from .harness import Api, RelayProcess, end_the_day
from .test_layout import SMALL_PHONE, _check

EVIL = "<script>alert(1)</script>"
NATIONAL_END = [9, 9, 7, 7, 5, 5]  # 42 on the National (imperial: 9 is a gold)
METRIC_END = ["X", 10, 9, 9, 8, 7]  # 53 on a WA 720 (metric: 10s and Xs)
TV = {"width": 1920, "height": 1080}
DESKTOP = {"is_mobile": False, "has_touch": False, "device_scale_factor": 1}
RECONNECT_MS = 45_000

#: Record every string drawn on a canvas, to see what the share image says.
RECORD_CANVAS_TEXT = """
window.__drawn = [];
const fillText = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
  window.__drawn.push(String(text));
  return fillText.call(this, text, ...rest);
};
"""


def _shoot_with_two_rounds(phone: Phone, api: Api) -> tuple[str, dict[str, Page]]:
    """A shoot with an archer named ``EVIL`` and Pat on the National, Alex on a WA 720."""
    code = api.create_shoot("Sam", "Club night")["code"]
    archers = {
        EVIL: api.join(code, EVIL, "national"),
        "Pat": api.join(code, "Pat", "national"),
        "Alex": api.join(code, "Alex", "wa720_70"),
    }
    pages = {name: open_as_archer(phone(), code, joined) for name, joined in archers.items()}
    score(pages[EVIL], NATIONAL_END * 2)  # 84
    score(pages["Pat"], NATIONAL_END)  # 42
    score(pages["Alex"], METRIC_END)  # 53
    return code, pages


def _open_results(page: Page, code: str) -> None:
    page.goto(f"/results/{code}")
    rows = page.get_by_test_id("results-row")
    expect(rows).to_have_count(3)


def test_results_print_every_archer_and_score_with_a_page_per_round(phone: Phone, api: Api) -> None:
    code, _ = _shoot_with_two_rounds(phone, api)
    context = phone(**DESKTOP)
    dialogs: list[str] = []
    context.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page = context.new_page()
    _open_results(page, code)
    tables = page.get_by_test_id("results-table")
    expect(tables).to_have_count(2)
    national = tables.filter(has_text="National")
    expect(national.get_by_test_id("results-name")).to_have_text([EVIL, "Pat"])
    expect(national.get_by_test_id("results-score")).to_have_text(["84", "42"])
    expect(national.locator("thead")).to_contain_text("Golds")
    metric = tables.filter(has_text="WA 70m")
    expect(metric.locator("thead")).to_contain_text("10s")
    expect(metric.locator("thead")).to_contain_text("Xs")
    expect(metric.get_by_test_id("results-row")).to_contain_text("Alex")
    expect(page.get_by_test_id("results")).to_contain_text("Club night")
    page.get_by_role("button", name="Show the scorecards").click()
    expect(page.locator(".results-card")).to_have_count(3)

    for paper in ("A4", "Letter"):
        pdf = page.pdf(format=paper, print_background=True)
        reader = PdfReader(io.BytesIO(pdf))
        # Compared without white space: the PDF's text breaks a long name where it wraps.
        pages = ["".join(p.extract_text().split()) for p in reader.pages]
        text = "".join(pages)
        rows = (f"{EVIL}National84", "PatNational42", "AlexWA70m53")  # name, round, score
        for expected in (*rows, "Clubnight"):
            assert expected in text, f"{paper}: {expected!r} is not in the printed results"
        assert "Shareasimage" not in text  # no buttons on paper
        assert "Hidethescorecards" not in text
        national_page = next(i for i, t in enumerate(pages) if "Pat" in t)
        metric_page = next(i for i, t in enumerate(pages) if "Alex" in t)
        assert national_page != metric_page, f"{paper}: both rounds printed on one page"
    assert page.locator("#app script").count() == 0
    assert dialogs == []


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_share_image_is_a_png_drawn_with_the_names_as_text(
    phone: Phone, api: Api, tmp_path: Path
) -> None:
    code, _ = _shoot_with_two_rounds(phone, api)
    context = phone()
    context.add_init_script(RECORD_CANVAS_TEXT)
    dialogs: list[str] = []
    context.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page = context.new_page()
    _open_results(page, code)
    # No share sheet for files in this browser: the image is downloaded.
    with page.expect_download() as download:
        page.get_by_test_id("share-image").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert download.value.suggested_filename == "club-night-results.png"
    width, height = _png_size(saved.read_bytes())
    assert width == 1080
    assert height > 400
    drawn = page.evaluate("window.__drawn")
    for expected in (EVIL, "Pat", "Alex", "84", "42", "53", "Club night", "National"):
        assert expected in drawn, f"{expected!r} was not drawn: {drawn}"
    expect(page.get_by_role("status")).to_have_text("The results image is in your downloads.")
    assert page.locator("#app script").count() == 0
    assert dialogs == []


SHARE_SHEET = """
window.__shared = [];
navigator.canShare = (data) => Array.isArray(data.files) && data.files.length > 0;
navigator.share = async (data) => {
  const files = await Promise.all(data.files.map(async (f) => ({
    name: f.name, type: f.type, head: Array.from(new Uint8Array(await f.slice(0, 8).arrayBuffer())),
  })));
  window.__shared.push({ title: data.title, files });
};
"""


def test_the_share_image_goes_to_the_share_sheet_where_there_is_one(phone: Phone, api: Api) -> None:
    # Created in California: the date is California's, whatever the viewer's zone.
    zone = "America/Los_Angeles"
    body = {"creator": "Sam", "title": "Club night", "time_zone": zone}
    created = api.http.post("/api/shoots", json=body).json()
    code = created["code"]
    api.join(code, "Pat", "national")
    context = phone()  # in Europe/London
    context.add_init_script(SHARE_SHEET)
    page = context.new_page()
    page.goto(f"/results/{code}")
    expect(page.get_by_test_id("results-row")).to_have_count(1)
    day = datetime.fromtimestamp(created["created_ms"] / 1000, ZoneInfo(zone))
    expect(page.locator(".results-head .subtitle")).to_contain_text(
        f"{day:%A}, {day.day} {day:%B %Y} · Los Angeles (America/Los_Angeles)"
    )
    page.get_by_test_id("share-image").click()
    page.wait_for_function("window.__shared.length === 1")
    shared = page.evaluate("window.__shared[0]")
    assert shared["title"] == "Club night: results"
    [file] = shared["files"]
    assert file["name"] == "club-night-results.png"
    assert file["type"] == "image/png"
    assert bytes(file["head"]) == b"\x89PNG\r\n\x1a\n"


def test_the_results_fit_a_small_phone_with_big_targets(phone: Phone, api: Api) -> None:
    code = api.create_shoot("Sam", "A long title for a club night with many words")["code"]
    api.join(code, "Christopher Longname-Smythe", "wa1440_90")
    api.join(code, "Alex", "national")
    page = phone(viewport=SMALL_PHONE).new_page()
    page.goto(f"/results/{code}")
    expect(page.get_by_test_id("results-row")).to_have_count(2)
    page.get_by_role("button", name="Show the scorecards").click()
    expect(page.locator(".results-card")).to_have_count(2)
    _check(page, "results")


def test_a_scorecard_on_the_results_lists_the_arrows_of_an_end_not_finished(
    phone: Phone, api: Api
) -> None:
    code = api.create_shoot("Sam")["code"]
    chris = api.join(code, "Chris", "portsmouth")
    archer = open_as_archer(phone(), code, chris)
    score(archer, [10, 10, 9, 9, 9, 9, "X", 8])  # one end of 56, then two arrows
    archer.get_by_role("button", name="Finish").click()  # a short round: finished early
    archer.get_by_role("alertdialog").get_by_role("button", name="Yes, finish").click()
    page = phone().new_page()
    page.goto(f"/results/{code}")
    expect(page.get_by_test_id("results-score")).to_have_text(["74"])
    page.get_by_role("button", name="Show the scorecards").click()
    card = page.get_by_role("region", name="Scorecard: Chris")
    # Every arrow in the total is on the card: the ends' scores add up to it.
    expect(card.locator(".results-ends li")).to_have_count(2)
    expect(card.locator(".results-ends .arrows")).to_have_text(["10 10 9 9 9 9", "X 8"])
    expect(card.locator(".results-ends .end-total")).to_have_text(["56", "18"])
    expect(card.locator(".results-card-total")).to_have_text("Total 74")


#: For each name on the results table: how many lines it takes, and how many words it has.
NAME_LINES = """() => [...document.querySelectorAll('[data-testid="results-row"] th[scope="row"]')].map((th) => {
  const range = document.createRange();
  range.selectNodeContents(th);
  const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
  return { name: th.textContent.trim(), lines: tops.size, words: th.textContent.trim().split(/\\s+/).length };
})"""


def test_results_on_a_375px_phone_keep_names_whole_and_every_column_on_screen(
    phone: Phone, api: Api
) -> None:
    code = api.create_shoot("Sam")["code"]
    bob = api.join(code, "Bob Bowman", "portsmouth")
    api.join(code, "Alice Archer", "portsmouth")
    score(open_as_archer(phone(), code, bob), [10, 9, "X"])
    page = phone(viewport={"width": 375, "height": 740}).new_page()
    page.goto(f"/results/{code}")
    expect(page.get_by_test_id("results-row")).to_have_count(2)
    expect(page.get_by_test_id("results-row").first).to_contain_text("29")

    names = page.evaluate(NAME_LINES)
    assert [n["name"] for n in names] == ["Bob Bowman", "Alice Archer"]
    broken = [n for n in names if n["lines"] > n["words"]]
    assert broken == [], f"names broken inside a word: {broken}"
    # The class column is the last one: on screen, not scrolled out of the table's box.
    table = page.locator(".results-table").first
    hidden = table.evaluate("t => t.scrollWidth - t.parentElement.clientWidth")
    assert hidden <= 0, f"the table hides {hidden} px of its columns"
    expect(table.locator("thead th").last).to_be_in_viewport(ratio=1)


@pytest.fixture
def own_relay(tmp_path: Path) -> Iterator[RelayProcess]:
    """A relay for this test alone, free to be restarted."""
    process = RelayProcess(tmp_path / "relay")
    process.start()
    yield process
    process.stop()


def _big_row(page: Page, name: str) -> object:
    return page.get_by_test_id("big-row").filter(
        has=page.get_by_test_id("name").get_by_text(name, exact=True)
    )


def test_the_big_screen_follows_the_shoot_and_recovers_after_a_relay_restart(
    phone: Phone, own_relay: RelayProcess
) -> None:
    api = Api(own_relay.url)
    try:
        code = api.create_shoot("Sam", "Club night")["code"]
        pat = api.join(code, "Pat", "national")
        chris = api.join(code, "Chris", "national")
        api.join(code, "Alex", "wa720_70")
        tv = phone(base_url=own_relay.url, viewport=TV, **DESKTOP).new_page()
        tv.goto(f"/view/{code}?big")
        expect(tv.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        # Both rounds side by side: the WA 720 column starts right of the National's.
        national = tv.locator('.big-round[data-round="national"]').bounding_box()
        metric = tv.locator('.big-round[data-round="wa720_70"]').bounding_box()
        assert national is not None
        assert metric is not None
        assert metric["x"] > national["x"] + national["width"] - 1
        assert metric["y"] == national["y"]
        assert tv.evaluate("document.documentElement.scrollWidth") <= TV["width"]

        pat_phone = open_as_archer(phone(base_url=own_relay.url), code, pat)
        chris_phone = open_as_archer(phone(base_url=own_relay.url), code, chris)
        score(pat_phone, [9])
        expect(_big_row(tv, "Pat").get_by_test_id("total")).to_have_text("9")  # type: ignore[attr-defined]
        # Chris overtakes: the screen shows it within a second, with a lead-change banner.
        score(chris_phone, [9])
        tapped = time.monotonic()
        chris_phone.locator('.keypad button[data-value="9"]').click()
        expect(_big_row(tv, "Chris").get_by_test_id("total")).to_have_text("18", timeout=1_000)  # type: ignore[attr-defined]
        print(f"the big screen showed the write {time.monotonic() - tapped:.3f} s after the tap")
        expect(tv.get_by_test_id("lead-banner")).to_have_text(
            "Chris takes the lead in the National!"
        )
        expect(tv.get_by_test_id("big-row").first).to_contain_text("Chris")

        own_relay.stop()
        expect(tv.get_by_test_id("connection")).not_to_have_attribute("data-state", "online")
        own_relay.start()  # same port, same data directory
        expect(tv.get_by_test_id("connection")).to_have_attribute(
            "data-state", "online", timeout=RECONNECT_MS
        )
        expect(pat_phone.get_by_test_id("connection")).to_have_attribute(
            "data-state", "online", timeout=RECONNECT_MS
        )
        score(pat_phone, [9, 9])
        expect(_big_row(tv, "Pat").get_by_test_id("total")).to_have_text("27")  # type: ignore[attr-defined]
        expect(tv.get_by_test_id("lead-banner")).to_have_text("Pat takes the lead in the National!")
    finally:
        api.close()


def test_the_big_screen_pages_through_a_round_longer_than_the_screen(
    phone: Phone, api: Api
) -> None:
    code = api.create_shoot("Sam", "Club night")["code"]
    for n in range(20):
        api.join(code, f"Archer {n:02d}", "national")
    tv = phone(viewport=TV, **DESKTOP).new_page()
    tv.clock.install()
    tv.goto(f"/view/{code}?big")
    expect(tv.get_by_test_id("big-row")).to_have_count(12)  # (1080 - 300) / 64 rows a page
    expect(tv.locator(".big-page")).to_have_text("1/2")
    assert tv.evaluate("document.documentElement.scrollHeight") <= TV["height"]
    tv.clock.fast_forward(8_000)
    expect(tv.locator(".big-page")).to_have_text("2/2")
    expect(tv.get_by_test_id("big-row")).to_have_count(8)
    tv.clock.fast_forward(8_000)
    expect(tv.locator(".big-page")).to_have_text("1/2")


#: Seconds the shoot in the expiry test has left when it starts: enough to join and score.
DAY_LEFT_S = 15


def test_after_the_day_ends_the_join_link_shows_the_final_results(
    phone: Phone, api: Api, relay: RelayProcess
) -> None:
    code = api.create_shoot("Sam", "Club night")["code"]
    end_the_day(relay, code, in_s=DAY_LEFT_S)
    ends_at = time.monotonic() + DAY_LEFT_S
    chris = api.join(code, "Chris", "national")
    api.join(code, "Alex", "wa720_70")
    archer = open_as_archer(phone(), code, chris)
    score(archer, NATIONAL_END)
    expect(archer.get_by_test_id("pending")).to_have_count(0)
    assert time.monotonic() < ends_at, "the end was scored after the shoot ended; raise DAY_LEFT_S"
    expect(archer.get_by_test_id("ended")).to_be_visible(timeout=(DAY_LEFT_S + 15) * 1000)
    expect(archer.get_by_role("link", name="See the results")).to_be_visible()

    # A phone that never saw the shoot opens the join link after the day has ended.
    page = phone().new_page()
    page.goto(f"/join/{code}")
    expect(page.get_by_test_id("results")).to_contain_text("Final results")
    expect(page.get_by_test_id("results-row")).to_have_count(2)
    chris_row = page.get_by_test_id("results-row").filter(has_text="Chris")
    expect(chris_row.get_by_test_id("results-score")).to_have_text("42")
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    expect(page.locator("form")).to_have_count(0)  # read-only: no join form
    viewer = phone().new_page()
    viewer.goto(f"/view/{code}")
    expect(viewer.get_by_test_id("results")).to_contain_text("Final results")
    expect(viewer.get_by_test_id("results-row")).to_have_count(2)
    response = api.http.get(f"/api/shoots/{code}")
    assert response.status_code == 200
    assert response.json()["ended"] is True
