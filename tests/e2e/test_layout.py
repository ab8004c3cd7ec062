"""Every screen fits a 360 px phone, and everything to tap is at least 44 px square."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .app import open_as_archer, row, score
from .conftest import Phone
from .harness import Api

SMALL_PHONE = {"width": 360, "height": 740}
MIN_TARGET_PX = 44

#: Controls smaller than the minimum, and whether the page scrolls sideways.
MEASURE = """min => {
  const small = [];
  for (const el of document.querySelectorAll("button, input, select, summary, a.button, a.brand")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;  // not shown
    if (box.width < min || box.height < min) {
      small.push(`${el.tagName} "${(el.textContent || el.getAttribute("name") || "").trim()}" ${box.width}x${box.height}`);
    }
  }
  return { small, overflow: document.documentElement.scrollWidth - window.innerWidth };
}"""


def _check(page: Page, screen: str) -> None:
    found = page.evaluate(MEASURE, MIN_TARGET_PX)
    assert found["overflow"] <= 0, f"{screen} scrolls sideways by {found['overflow']} px"
    assert found["small"] == [], f"{screen} has small touch targets: {found['small']}"


def test_screens_fit_a_small_phone_with_big_targets(phone: Phone, api: Api) -> None:
    code = api.create_shoot("Sam", "A long title for a club night with many words")["code"]
    chris = api.join(code, "Christopher Longname-Smythe", "wa1440_90")
    api.join(code, "Alex", "national")
    context = phone(viewport=SMALL_PHONE)
    page = context.new_page()
    page.goto("/")
    _check(page, "home")
    page.goto(f"/join/{code}")
    expect(page.get_by_label("Round", exact=True)).to_be_enabled()
    _check(page, "join")

    archer = open_as_archer(context, code, chris)
    score(archer, ["X", 10, 10, 9, 9, 8, 7])
    for summary in archer.locator("summary").all():
        summary.click()
    _check(archer, "archer")
    row(archer, "Alex").click()
    expect(archer.get_by_test_id("scorecard")).to_be_visible()
    _check(archer, "scorecard")
    archer.get_by_role("button", name="Close").click()

    viewer = context.new_page()
    viewer.goto(f"/view/{code}")
    expect(row(viewer, "Alex")).to_be_visible()
    _check(viewer, "viewer")


def test_a_desktop_shows_the_keypad_and_the_board_side_by_side(phone: Phone, api: Api) -> None:
    code = api.create_shoot("Sam")["code"]
    chris = api.join(code, "Chris", "national")
    desktop = phone(viewport={"width": 1280, "height": 900}, is_mobile=False, has_touch=False)
    archer = open_as_archer(desktop, code, chris)
    expect(row(archer, "Chris")).to_be_visible()
    _check(archer, "archer on a desktop")
    keypad = archer.locator(".scorer").bounding_box()
    board = archer.get_by_test_id("board").bounding_box()
    assert keypad is not None
    assert board is not None
    assert board["x"] >= keypad["x"] + keypad["width"]  # beside it, not below


def test_a_toast_leaves_the_keypad_free_on_a_short_phone(phone: Phone, api: Api) -> None:
    code = api.create_shoot("Sam")["code"]
    chris = api.join(code, "Chris", "portsmouth")
    alex = api.join(code, "Alex", "portsmouth")
    archer = open_as_archer(phone(viewport={"width": 375, "height": 667}), code, chris)
    score(archer, [9])
    other = open_as_archer(phone(), code, alex)
    score(other, [10, 10])  # Alex takes the lead: a toast on Chris's phone for seconds

    toast = archer.get_by_test_id("toast").first
    expect(toast).to_be_visible()
    shown = toast.bounding_box()
    assert shown is not None
    keys = archer.locator(".scorer button").all()
    assert len(keys) >= 14  # X, 10..1, M, Undo, Finish
    covered = []
    for key in keys:
        box = key.bounding_box()
        assert box is not None
        if box["y"] < shown["y"] + shown["height"] and shown["y"] < box["y"] + box["height"]:
            covered.append(key.inner_text())
    assert covered == [], f"the toast lies over {covered}"
    # And the tap lands: Undo is not intercepted while the toast shows.
    archer.get_by_role("button", name="Undo").click(timeout=3_000)
    expect(archer.get_by_test_id("my-arrows")).to_contain_text("0/60")
    expect(toast).to_be_visible()


#: Parts of the scorer that stick out of its card, and how many lines "/ 600" takes.
SCORER_FIT = """() => {
  const card = document.querySelector(".scorer").getBoundingClientRect();
  const out = [...document.querySelectorAll(".scorer *")]
    .filter((el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.right > card.right + 0.5; })
    .map((el) => `${el.className} "${(el.textContent || "").trim().slice(0, 20)}"`);
  const of = document.querySelector(".total .of");
  return { out, ofLines: new Set([...of.getClientRects()].map((r) => Math.round(r.top))).size };
}"""


def test_the_scorer_fits_a_320px_phone(phone: Phone, api: Api) -> None:
    code = api.create_shoot("Sam")["code"]
    chris = api.join(code, "Chris", "portsmouth")
    archer = open_as_archer(phone(viewport={"width": 320, "height": 568}), code, chris)
    score(archer, [10] * 11)  # three-digit total, five arrows of the second end
    expect(archer.get_by_test_id("end-total")).to_have_text("50")
    found = archer.evaluate(SCORER_FIT)
    assert found["out"] == [], f"out of the scorer's card: {found['out']}"
    assert found["ofLines"] == 1, "the round's maximum is split over two lines"
    _check(archer, "archer at 320 px")
