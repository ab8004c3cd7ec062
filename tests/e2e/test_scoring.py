"""Scoring on the keypad and watching the live leaderboard on other phones."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from .app import open_as_archer, open_as_viewer, row, score
from .conftest import Phone
from .harness import Api

END_OF_NINES = [9, 9, 9, 7, 7, 5]  # 46
#: Clicks buttons one after the other in one task, so no redraw happens between them.
FAST_TAPS = """keys => {
  const buttons = [...document.querySelectorAll(".scorer button")];
  for (const key of keys) buttons.find((b) => (b.dataset.value ?? b.textContent) === key).click();
}"""


def test_three_ends_reach_a_viewer_with_totals_and_classification(phone: Phone, api: Api) -> None:
    code = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "national")
    api.join(code, "Alex", "national")  # someone to take the lead from
    archer = open_as_archer(phone(), code, chris)
    viewer = open_as_viewer(phone(), code)
    expect(row(viewer, "Chris")).to_contain_text("0/72 arrows")

    score(archer, END_OF_NINES * 2)
    score(archer, END_OF_NINES[:-1])
    expect(archer.get_by_test_id("end-total")).to_have_text("41")
    expect(archer.get_by_test_id("current-end")).to_have_text("99977")
    tapped = time.monotonic()
    score(archer, [5])
    expect(archer.get_by_test_id("my-total")).to_have_text("138")
    expect(archer.get_by_test_id("my-ends")).to_have_text("3/12")
    expect(archer.get_by_test_id("my-arrows")).to_have_text("18/72")
    expect(archer.get_by_test_id("end-total")).to_have_text("0")  # the fourth end begins

    line = row(viewer, "Chris")
    expect(line.get_by_test_id("total")).to_have_text("138")
    print(f"the last arrow reached the viewer {time.monotonic() - tapped:.3f} s after the tap")
    expect(line).to_contain_text("18/72 arrows")
    expect(line.get_by_test_id("classification")).to_have_text(
        re.compile(r"^(On track for|Achieved) [A-Z0-9]+$")
    )
    # The relay's notices (a lead taken, a digest every few ends) show as they arrive.
    expect(viewer.get_by_test_id("notices")).to_contain_text("Chris")
    board = api.read(code)["leaderboard"]["groups"][0]["standings"][0]
    status = "Achieved" if board["classification_status"] == "achieved" else "On track for"
    expect(line.get_by_test_id("classification")).to_have_text(
        f"{status} {board['classification']}"
    )


def test_undo_takes_back_the_last_arrow(phone: Phone, api: Api) -> None:
    code = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "wa720_70")
    archer = open_as_archer(phone(), code, chris)
    expect(archer.locator(".keypad button")).to_have_text(
        ["X inner ten", "10", "9", "8", "7", "6", "5", "4", "3", "2", "1", "M miss"]
    )
    score(archer, ["X", 10, 7])
    archer.get_by_role("button", name="Undo").click()
    expect(archer.get_by_test_id("my-arrows")).to_have_text("2/72")
    expect(archer.get_by_test_id("my-total")).to_have_text("20")
    expect(archer.get_by_test_id("current-end")).to_have_text("X10")
    viewer = open_as_viewer(phone(), code)
    expect(row(viewer, "Chris").get_by_test_id("total")).to_have_text("20")
    expect(row(viewer, "Chris")).to_contain_text("2/72 arrows")

    # Taps faster than the screen redraws all count (each starts from the newest state).
    archer.evaluate(FAST_TAPS, ["9", "8", "M"])
    expect(archer.get_by_test_id("current-end")).to_have_text("X1098M")
    archer.evaluate(FAST_TAPS, ["Undo", "Undo"])
    expect(archer.get_by_test_id("current-end")).to_have_text("X109")
    expect(row(viewer, "Chris").get_by_test_id("total")).to_have_text("29")


def test_finish_locks_the_score(phone: Phone, api: Api) -> None:
    code = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "national")
    archer = open_as_archer(phone(), code, chris)
    score(archer, END_OF_NINES)
    archer.get_by_role("button", name="Finish").click()
    dialog = archer.get_by_role("alertdialog")
    expect(dialog).to_contain_text("Lock your score at 46 with 66 arrows not shot?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(archer.locator(".keypad")).to_be_visible()
    archer.get_by_role("button", name="Finish").click()
    archer.get_by_role("alertdialog").get_by_role("button", name="Yes, finish").click()
    expect(archer.get_by_test_id("locked")).to_have_text("Score locked at 46. Well shot!")
    expect(archer.locator(".keypad")).to_have_count(0)
    expect(archer.get_by_role("button", name="Undo")).to_have_count(0)

    viewer = open_as_viewer(phone(), code)
    expect(row(viewer, "Chris")).to_contain_text("✓")
    archer.reload()
    expect(archer.get_by_test_id("locked")).to_be_visible()
    assert api.read(code)["archers"][chris["archer_id"]]["finished"] is True


def test_leave_takes_the_archer_off_the_board(phone: Phone, api: Api) -> None:
    code = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "national")
    api.join(code, "Alex", "national")
    archer = open_as_archer(phone(), code, chris)
    viewer = open_as_viewer(phone(), code)
    expect(row(viewer, "Chris")).to_be_visible()
    archer.get_by_role("button", name="Leave").click()
    archer.get_by_role("alertdialog").get_by_role("button", name="Yes, leave").click()
    expect(archer.get_by_test_id("left-note")).to_be_visible()
    expect(row(viewer, "Chris")).to_have_count(0)
    expect(row(viewer, "Alex")).to_be_visible()
    expect(row(archer, "Chris")).to_have_count(0)
    assert api.read(code)["archers"][chris["archer_id"]]["left"] is True
    archer.get_by_role("button", name="Rejoin with my score").click()
    expect(row(viewer, "Chris")).to_be_visible()


def test_archers_on_different_rounds_are_ranked_by_handicap(phone: Phone, api: Api) -> None:
    code = api.create_shoot()["code"]
    strong = api.join(code, "Robin", "york")
    weak = api.join(code, "Kim", "national")
    kim = open_as_archer(phone(), code, weak)
    robin = open_as_archer(phone(), code, strong)
    score(kim, [5, 3, 3, 1, 1, "M"] * 2)
    score(robin, [9, 9, 9, 9, 7, 7] * 2)

    viewer = open_as_viewer(phone(), code)
    groups = viewer.locator(".round-group h3")
    expect(groups).to_have_count(2)
    overall = viewer.get_by_test_id("overall-row")
    expect(overall).to_have_count(2)
    expect(overall.nth(0)).to_contain_text("Robin")
    expect(overall.nth(0)).to_contain_text("York")
    expect(overall.nth(0)).to_contain_text(re.compile(r"HC \d+"))
    expect(overall.nth(1)).to_contain_text("Kim")
    expect(overall.nth(1)).to_contain_text(re.compile(r"HC \d+"))
    # Within each round the position is the round's own: both are first.
    expect(row(viewer, "Robin").get_by_test_id("position")).to_have_text("1")
    expect(row(viewer, "Kim").get_by_test_id("position")).to_have_text("1")


def test_positions_tie_breaks_and_points_behind(phone: Phone, api: Api) -> None:
    code = api.create_shoot()["code"]
    a = api.join(code, "Ann", "national")
    b = api.join(code, "Ben", "national")
    c = api.join(code, "Cal", "national")
    ann = open_as_archer(phone(), code, a)
    ben = open_as_archer(phone(), code, b)
    cal = open_as_archer(phone(), code, c)
    score(ann, [9, 9, 9, 9, 9, 1])  # 46 with 6 hits
    score(ben, [9, 9, 9, 9, 5, 5, "M"])  # 46 with 6 hits, fewer golds
    score(cal, [9, 9, 9, 9, 9, 5])  # 50
    viewer = open_as_viewer(phone(), code)
    rows = viewer.get_by_test_id("board-row")
    expect(rows.get_by_test_id("name")).to_have_text(["Cal", "Ann", "Ben"])
    expect(rows.get_by_test_id("position")).to_have_text(["1", "2", "3"])
    expect(rows.nth(1).get_by_test_id("behind")).to_have_text("· 4 behind")
    expect(rows.nth(2).get_by_test_id("behind")).to_have_text("· 0 behind")
    expect(row(ann, "Ann")).to_contain_text("(you)")
    expect(row(ann, "Cal")).not_to_contain_text("(you)")
    expect(cal.get_by_test_id("my-place")).to_have_text("1st of 3")
    expect(ann.get_by_test_id("my-place")).to_have_text("2nd of 3, 4 behind")
    expect(ben.get_by_test_id("my-place")).to_have_text("3rd of 3")


def test_tap_an_archer_for_the_scorecard(phone: Phone, api: Api) -> None:
    code = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "worcester")
    archer = open_as_archer(phone(), code, chris)
    expect(archer.locator(".keypad button")).to_have_text(["5", "4", "3", "2", "1", "M miss"])
    score(archer, [5, 5, 4, 4, 3, 5, 4, "M", 2, 1, 5])
    viewer = open_as_viewer(phone(), code)
    row(viewer, "Chris").click()
    card = viewer.get_by_test_id("scorecard")
    expect(card).to_be_visible()
    ends = card.get_by_test_id("scorecard-end")
    expect(ends).to_have_count(3)
    expect(ends.nth(0).locator(".arrow")).to_have_text(["5", "5", "4", "4", "3"])
    expect(ends.nth(1).locator(".arrow")).to_have_text(["5", "4", "M", "2", "1"])
    expect(ends.nth(2).locator(".arrow")).to_have_text(["5"])
    expect(ends.nth(1).locator("td")).to_have_text(["54M21", "12", "33"])
    expect(card.get_by_test_id("scorecard-total")).to_have_text("38")
    card.get_by_role("button", name="Close").click()
    expect(card).to_have_count(0)
    row(viewer, "Chris").click()
    expect(card).to_be_visible()
    viewer.keyboard.press("Escape")
    expect(card).to_have_count(0)


def test_a_score_below_every_classification_is_worded_as_such(phone: Phone, api: Api) -> None:
    code = api.create_shoot()["code"]
    chris = api.join(code, "Chris", "portsmouth")
    archer = open_as_archer(phone(), code, chris)
    viewer = open_as_viewer(phone(), code)
    score(archer, [1, 1, 2, 1, "M", 1])  # far below the lowest class, A3

    # archeryutils calls this "UC"; "On track for UC" read as if it were a class to aim for.
    line = row(viewer, "Chris").get_by_test_id("classification")
    expect(line).to_have_text("Not on track for a classification yet")
    expect(row(archer, "Chris").get_by_test_id("classification")).to_have_text(
        "Not on track for a classification yet"
    )
    archer.get_by_role("button", name="Finish").click()
    archer.get_by_role("button", name="Yes, finish").click()
    expect(line).to_have_text("Unclassified")
    board = api.read(code)["leaderboard"]["groups"][0]["standings"][0]
    assert (board["classification"], board["classification_status"]) == ("UC", "achieved")
