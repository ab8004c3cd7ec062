"""Rules of the archer state: what a write may claim, and what is derived from it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.errors import InvalidState
from sync.models import (
    MAX_NAME_LENGTH,
    MAX_TITLE_LENGTH,
    MIN_LIFETIME_MS,
    ArcherState,
    Profile,
    checked,
    end_of_local_day,
    shoot_expiry,
    summarize,
    validate_code,
    validate_state,
    validate_title,
)
from sync.rounds import all_rounds, get_round


def state(round_: str = "national", arrows: tuple[object, ...] = (), **kw: object) -> ArcherState:
    return ArcherState(name="Chris", round=round_, arrows=arrows, **kw)  # type: ignore[arg-type]


def reason(s: ArcherState) -> str:
    with pytest.raises(InvalidState) as info:
        validate_state(s)
    return info.value.code


def test_valid_imperial_and_metric_states() -> None:
    assert validate_state(state("national", (9, 7, 5, 3, 1, "M"))).name == "National"
    assert validate_state(state("wa1440_70", ("X", 10, 9, 1, "M"))).tie_break == "tens"


def test_imperial_round_refuses_metric_values() -> None:
    assert reason(state("national", (9, 10))) == "invalid_arrow"
    assert reason(state("national", ("X",))) == "invalid_arrow"
    assert reason(state("national", (8,))) == "invalid_arrow"


def test_worcester_scores_five_to_one_in_ends_of_five() -> None:
    info = validate_state(state("worcester", (5, 4, 3, 2, 1)))
    assert info.end_size == 5
    assert reason(state("worcester", (6,))) == "invalid_arrow"


def test_bool_is_not_an_arrow() -> None:
    assert reason(state("wa1440_70", (True,))) == "invalid_arrow"


def test_more_arrows_than_the_round_holds() -> None:
    info = get_round("national")
    assert info.total_arrows == 72
    validate_state(state("national", (9,) * 72))
    assert reason(state("national", (9,) * 73)) == "too_many_arrows"


def test_unknown_round() -> None:
    assert reason(state("no_such_round")) == "unknown_round"


@pytest.mark.parametrize(
    "name", ["", "   ", "x" * (MAX_NAME_LENGTH + 1), "Chris\x00", " Chris", "Chris\u202e"]
)
def test_bad_names(name: str) -> None:
    assert reason(ArcherState(name=name, round="national")) == "invalid_name"


def test_markup_in_names_is_just_text() -> None:
    validate_state(ArcherState(name="<b>Chris</b>", round="national"))


def test_bad_profile() -> None:
    bad = ArcherState("Chris", "national", Profile(bowstyle="crossbow"))
    assert reason(bad) == "invalid_profile"
    assert reason(ArcherState("Chris", "national", Profile(gender="male"))) == "invalid_profile"


def test_title_limit() -> None:
    assert validate_title("  Club night ") == "Club night"
    assert validate_title("") == ""
    with pytest.raises(InvalidState):
        validate_title("t" * (MAX_TITLE_LENGTH + 1))


@pytest.mark.parametrize("code", ["123", "12345", "0123", "12a4", "١٢٣٤"])
def test_bad_codes(code: str) -> None:
    with pytest.raises(InvalidState):
        validate_code(code)


def test_summary_imperial() -> None:
    s = summarize(state("national", (9, 9, 7, 5, "M", 3, 1, 9)))
    assert (s.total, s.hits, s.golds, s.xs) == (43, 7, 3, 0)
    assert (s.arrows_shot, s.ends_completed, s.end_totals) == (8, 1, (33,))


def test_summary_metric_counts_x_as_ten_and_gold() -> None:
    s = summarize(state("wa1440_70", ("X", 10, 9, "M", 1, 2)))
    assert (s.total, s.hits, s.golds, s.xs) == (32, 5, 2, 1)
    assert s.end_totals == (32,)


def test_every_catalogue_round_is_usable() -> None:
    rounds = all_rounds()
    assert len(rounds) > 200
    for info in rounds:
        assert info.total_arrows > 0
        assert info.max_score > 0
        assert "M" in info.allowed_at(info.total_arrows - 1)


def test_end_of_local_day_follows_the_creators_zone() -> None:
    # 23:30 in London on a summer evening is 22:30 UTC: the shoot ends 30 minutes later,
    # not at UTC midnight.
    now = dt.datetime(2026, 6, 1, 22, 30, tzinfo=dt.UTC)
    end = end_of_local_day(int(now.timestamp() * 1000), "Europe/London")
    assert end == int(dt.datetime(2026, 6, 1, 23, 0, tzinfo=dt.UTC).timestamp() * 1000)
    # The same instant in Sydney is already 08:30 on June 2nd.
    end = end_of_local_day(int(now.timestamp() * 1000), "Australia/Sydney")
    assert end == int(dt.datetime(2026, 6, 2, 14, 0, tzinfo=dt.UTC).timestamp() * 1000)


def test_unknown_time_zone() -> None:
    with pytest.raises(InvalidState) as info:
        end_of_local_day(0, "Mars/Olympus")
    assert info.value.code == "invalid_time_zone"


def test_a_shoot_lives_to_the_end_of_the_local_day_but_at_least_six_hours() -> None:
    def at(hour: int, minute: int = 0) -> int:
        moment = dt.datetime(2026, 6, 1, hour, minute, tzinfo=ZoneInfo("Europe/London"))
        return int(moment.timestamp() * 1000)

    # A morning shoot ends with its day (midnight in London).
    morning = at(9)
    assert shoot_expiry(morning, "Europe/London") == end_of_local_day(morning, "Europe/London")
    # An evening shoot is not cut off at midnight: it gets its six hours.
    evening = at(23, 5)
    assert shoot_expiry(evening, "Europe/London") == evening + MIN_LIFETIME_MS
    assert shoot_expiry(evening, "Europe/London") > end_of_local_day(evening, "Europe/London")
    # The boundary: created exactly six hours before midnight, both rules agree.
    assert shoot_expiry(at(18), "Europe/London") == end_of_local_day(at(18), "Europe/London")


def test_shoot_expiry_checks_the_time_zone() -> None:
    with pytest.raises(InvalidState) as info:
        shoot_expiry(0, "Mars/Olympus")
    assert info.value.code == "invalid_time_zone"


def test_every_invalid_state_code_is_listed_and_the_sdk_maps_it() -> None:
    """The SDK's "this score breaks a rule" error comes from ``sync``'s list of codes, so a
    new rule cannot reach a device as an unknown error."""
    from clients._errors import InvalidScore, error_for_code
    from sync.errors import INVALID_STATE_CODES, InvalidState
    from sync.models import ArcherState, Profile, validate_state

    bad = [
        ArcherState("", "national"),
        ArcherState("C", "no_such_round"),
        ArcherState("C", "national", Profile("sling")),
        ArcherState("C", "national", arrows=(99,)),
        ArcherState("C", "national", arrows=(9,) * 500),
    ]
    seen = set()
    for state in bad:
        try:
            validate_state(state)
        except InvalidState as exc:
            seen.add(exc.code)
    assert seen == INVALID_STATE_CODES
    for code in INVALID_STATE_CODES:
        assert isinstance(error_for_code(code, "x"), InvalidScore)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["national", "wa720_70", "worcester", "portsmouth", "york"]),
    st.data(),
)
def test_a_state_checked_from_the_one_it_extends_is_checked_as_from_scratch(
    round_code: str, data: st.DataObject
) -> None:
    """The relay checks a write that adds arrows from the previous state's check (only
    the new arrows); it must give what validating and summing everything gives, for
    valid and invalid additions alike, and whether an end completes or not."""
    info = get_round(round_code)
    values = st.sampled_from(sorted(info.allowed_at(0) | {"X", 11, 0}, key=str))
    first = data.draw(st.integers(min_value=0, max_value=info.total_arrows))
    arrows = tuple(
        data.draw(st.sampled_from(sorted(info.allowed_at(i), key=str))) for i in range(first)
    )
    previous = ArcherState("Ann", round_code, arrows=arrows)
    added = tuple(data.draw(st.lists(values, max_size=8)))
    state = ArcherState("Ann", round_code, arrows=arrows + added)
    assert checked(previous) is not None
    try:
        expected = (validate_state(state), summarize(state, info))
    except InvalidState:
        expected = None  # type: ignore[assignment]
    assert checked(state, previous) == expected
