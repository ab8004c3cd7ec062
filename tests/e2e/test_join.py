"""Creating, sharing and joining a shoot in a phone browser, and what bad input shows."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, Route, expect

from .app import open_as_archer, row, score
from .conftest import Phone
from .harness import Api, RelayProcess, end_the_day


def test_create_a_shoot_and_share_it(phone: Phone, api: Api, relay: RelayProcess) -> None:
    context = phone()
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    context.add_init_script("delete Navigator.prototype.share")  # a browser without a share sheet
    page = context.new_page()
    page.goto("/")
    page.get_by_label("Your name").fill("Sam")
    page.get_by_label("Title (optional)").fill("Club night")
    page.get_by_role("button", name="Create shoot").click()

    code_text = page.get_by_test_id("share-code")
    expect(code_text).to_have_text(re.compile(r"^\d{4}$"))
    code = code_text.inner_text()
    link = f"{relay.url}/join/{code}"
    expect(page.get_by_test_id("join-link")).to_have_text(link)
    expect(page.get_by_role("heading", name="Club night")).to_be_visible()
    qr = page.get_by_role("img", name=re.compile("QR code"))
    expect(qr).to_have_attribute("src", f"/api/shoots/{code}/qr.svg")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=qr.element_handle())

    # Without a share sheet the button copies the link.
    page.get_by_role("button", name=re.compile("join link")).click()
    expect(page.get_by_role("status").filter(has_text="Link copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == link

    shoot = api.read(code)["shoot"]
    assert (shoot["creator"], shoot["title"]) == ("Sam", "Club night")
    assert shoot["time_zone"] == "Europe/London"  # the device's own zone was sent

    page.get_by_role("button", name="Watch the leaderboard").click()
    expect(page).to_have_url(f"{relay.url}/view/{code}")
    expect(page.get_by_test_id("shoot-code")).to_have_text(code)


def test_share_uses_the_share_sheet_where_there_is_one(phone: Phone, api: Api) -> None:
    code = api.create_shoot("Sam", "Club night")["code"]
    context = phone()
    context.add_init_script(
        "navigator.share = async (data) => { window.shared = data; };"  # the phone's sheet
    )
    page = context.new_page()
    page.goto(f"/view/{code}")
    expect(page.get_by_role("heading", name="Club night")).to_be_visible()  # the shoot is loaded
    page.get_by_text("Share this shoot").click()
    page.get_by_role("button", name="Share join link").click()
    page.wait_for_function("window.shared !== undefined")
    shared = page.evaluate("window.shared")
    assert shared["url"].endswith(f"/join/{code}")
    assert shared["title"] == "Club night"
    assert code in shared["text"]


#: How long the shoot that ends during a test lives: time to open the archer's page.
DAY_LEFT_S = 12


def _fill_profile(page: Page, name: str, search: str, round_code: str) -> None:
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Find your round").fill(search)
    page.get_by_label("Round", exact=True).select_option(round_code)
    page.get_by_label("Bowstyle").select_option("barebow")
    page.get_by_label("Age group").select_option("over_50")
    page.get_by_label("Gender").select_option("female")
    page.get_by_role("button", name="Join and start scoring").click()


def test_join_by_typing_the_code(phone: Phone, api: Api) -> None:
    code = api.create_shoot("Sam", "Tuesday")["code"]
    page = phone().new_page()
    page.goto("/")
    page.get_by_label("Shoot code").fill(code)
    page.get_by_role("button", name="Join", exact=True).click()
    expect(page.get_by_role("heading", name="Tuesday")).to_be_visible()
    _fill_profile(page, "Chris", "york", "york")

    expect(page).to_have_url(re.compile(rf"/shoot/{code}$"))
    expect(row(page, "Chris")).to_contain_text("(you)")
    expect(page.locator(".scorer")).to_contain_text("York")
    archers = api.read(code)["archers"]
    [chris] = archers.values()
    assert chris["round"] == "york"
    assert chris["profile"] == {"bowstyle": "barebow", "age_group": "over_50", "gender": "female"}

    # The profile is remembered on the device for the next shoot.
    other = api.create_shoot("Sam")["code"]
    page.goto(f"/join/{other}")
    expect(page.get_by_label("Your name")).to_have_value("Chris")
    expect(page.get_by_label("Round", exact=True)).to_have_value("york")
    expect(page.get_by_label("Age group")).to_have_value("over_50")


def test_join_through_the_join_link(phone: Phone, api: Api) -> None:
    code = api.create_shoot("Sam")["code"]
    page = phone().new_page()
    page.goto(f"/shoot/{code}")  # not joined on this phone yet: the join form instead
    expect(page).to_have_url(re.compile(rf"/join/{code}$"))
    expect(page.get_by_role("heading", name="Sam's shoot")).to_be_visible()
    _fill_profile(page, "Alex", "national", "national")
    expect(page).to_have_url(re.compile(rf"/shoot/{code}$"))
    # The 5-zone keypad of an imperial round.
    expect(page.locator(".keypad button")).to_have_text(["9", "7", "5", "3", "1", "M miss"])
    expect(row(page, "Alex")).to_contain_text("(you)")

    # Opening the link again on the same phone offers to carry on.
    page.goto(f"/join/{code}")
    page.get_by_role("button", name="Continue scoring").click()
    expect(page).to_have_url(re.compile(rf"/shoot/{code}$"))
    # So does the front page, e.g. after the tab was closed.
    page.goto("/")
    page.get_by_role("link", name=f"Sam's shoot ({code})").click()
    expect(page).to_have_url(re.compile(rf"/shoot/{code}$"))
    expect(row(page, "Alex")).to_contain_text("(you)")


def test_an_unknown_code_says_so(phone: Phone, api: Api) -> None:
    missing = api.unused_code()
    page = phone().new_page()
    page.goto("/")
    page.get_by_label("Shoot code").fill("12")
    page.get_by_role("button", name="Join", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("A shoot code is four digits, like 4821.")
    page.get_by_label("Shoot code").fill(missing)
    page.get_by_role("button", name="Join", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(
        f"There is no shoot {missing}. Check the four digits and try again."
    )
    assert "{" not in page.locator("main").inner_text()  # never raw JSON
    page.goto(f"/view/{missing}")
    expect(page.get_by_role("alert")).to_have_text(
        f"There is no shoot {missing}. Check the four digits and try again."
    )
    expect(page.get_by_test_id("board")).to_have_count(0)

    # A code no shoot can have (a mistyped link): said at once, not an "offline" empty board
    # whose socket redials for ever, nor a results page that never stops loading.
    out_of_range = "A shoot code is four digits, 1000 to 9999."
    page.goto("/view/0001")
    expect(page.get_by_role("alert")).to_have_text(out_of_range)
    expect(page.get_by_test_id("board")).to_have_count(0)
    page.goto("/results/0001")
    expect(page.get_by_role("alert")).to_have_text(out_of_range)

    # An address the app does not have: the app, saying so, with the way to a shoot.
    answer = page.goto("/shoots/1234")
    assert answer is not None
    assert answer.status == 404
    expect(page.get_by_text("There is no page at /shoots/1234.")).to_be_visible()
    expect(page.get_by_label("Shoot code")).to_be_visible()


def test_a_round_searched_while_the_list_loads_is_chosen_when_it_arrives(
    phone: Phone, api: Api
) -> None:
    code = api.create_shoot("Sam")["code"]
    # No service worker: the page's own request for the round list is the one held here.
    context = phone(service_workers="block")
    held: list[Route] = []
    context.route(re.compile(r"/api/rounds$"), lambda route: held.append(route))
    page = context.new_page()
    page.goto(f"/join/{code}")
    page.get_by_label("Your name").fill("Chris")
    page.get_by_label("Find your round").fill("portsmouth")
    deadline = time.monotonic() + 15
    while not held:  # the slow signal: the list has not arrived yet
        assert time.monotonic() < deadline, "the page never asked for the round list"
        page.wait_for_timeout(20)
    expect(page.get_by_label("Round", exact=True)).to_be_disabled()
    held[0].continue_()

    expect(page.get_by_label("Round", exact=True)).to_have_value("portsmouth")
    page.get_by_role("button", name="Join and start scoring").click()
    expect(page).to_have_url(re.compile(rf"/shoot/{code}$"))
    [chris] = api.read(code)["archers"].values()
    assert chris["round"] == "portsmouth"


def test_a_refused_join_reads_as_a_sentence(phone: Phone, api: Api) -> None:
    code = api.create_shoot("Sam")["code"]
    page = phone().new_page()
    page.goto(f"/join/{code}")
    page.get_by_label("Your name").fill("Chris")
    # A round this relay does not know (e.g. remembered from another relay's list).
    page.get_by_label("Round", exact=True).evaluate(
        "select => { select.add(new Option('Gone', 'gone_round')); }"
    )
    page.get_by_label("Round", exact=True).select_option("gone_round")
    page.get_by_role("button", name="Join and start scoring").click()
    expect(page.get_by_role("alert")).to_have_text(
        "That round is not one the relay knows. Pick a round from the list."
    )
    expect(page).to_have_url(re.compile(rf"/join/{code}$"))
    assert api.read(code)["archers"] == {}


def test_an_expired_shoot_says_it_has_ended(phone: Phone, api: Api, relay: RelayProcess) -> None:
    code = api.create_shoot("Sam")["code"]
    end_the_day(relay, code)
    context = phone()
    page = context.new_page()
    page.goto(f"/join/{code}")
    ended = f"Shoot {code} has ended: shoots close at the end of the day they were created."
    expect(page.get_by_role("alert")).to_have_text(ended)
    viewer = context.new_page()
    viewer.goto(f"/view/{code}")
    expect(viewer.get_by_role("alert")).to_have_text(ended)


def test_a_shoot_ending_while_scoring_stops_the_keypad(
    phone: Phone, api: Api, relay: RelayProcess
) -> None:
    code = api.create_shoot("Sam")["code"]
    end_the_day(relay, code, in_s=DAY_LEFT_S)
    ends_at = time.monotonic() + DAY_LEFT_S
    chris = api.join(code, "Chris", "national")
    archer = open_as_archer(phone(), code, chris)
    score(archer, [9])
    assert time.monotonic() < ends_at, "the page opened after the shoot ended; raise DAY_LEFT_S"
    expect(archer.get_by_test_id("ended")).to_have_text(
        "This shoot has ended; your score stands at 9.", timeout=(DAY_LEFT_S + 15) * 1000
    )
    expect(archer.locator(".keypad")).to_have_count(0)
    expect(archer.get_by_role("alert")).to_contain_text(f"Shoot {code} has ended")


def test_markup_in_names_is_shown_as_text(phone: Phone, api: Api) -> None:
    evil = "<script>alert(1)</script>"
    title = "<img src=x onerror=alert(2)>"
    code = api.create_shoot(evil, title)["code"]
    context = phone()
    dialogs: list[str] = []
    context.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page = context.new_page()
    page.goto(f"/join/{code}")
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    expect(page.locator(".subtitle")).to_contain_text(f"created by {evil}")
    _fill_profile(page, evil, "national", "national")
    expect(row(page, evil)).to_be_visible()

    viewer = context.new_page()
    viewer.goto(f"/view/{code}")
    expect(row(viewer, evil)).to_be_visible()
    row(viewer, evil).click()
    expect(viewer.get_by_test_id("scorecard").get_by_role("heading")).to_contain_text(evil)
    for p in (page, viewer):
        assert p.locator("#app script, #app img[src=x]").count() == 0
    assert dialogs == []
