"""On-track classification: projections checked against archeryutils' own functions."""

from __future__ import annotations

from collections.abc import Sequence

import archeryutils as au
import pytest
from archeryutils import classifications as cf
from archeryutils import handicaps as hc
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import classification, projection_tables
from sync.classification import (
    CACHE_SIZE,
    Projection,
    age_group_enum,
    bowstyle_enum,
    current_handicap,
    gender_enum,
    projection,
)
from sync.models import AGE_GROUPS, BOWSTYLES, GENDERS, ArcherState, Profile, summarize
from sync.rounds import Arrow, get_round

RECURVE_ADULT_OPEN = Profile("recurve", "adult", "open")


def project(
    round_code: str, arrows: Sequence[Arrow], profile: Profile = RECURVE_ADULT_OPEN, **kw: bool
) -> Projection | None:
    state = ArcherState(name="Chris", round=round_code, profile=profile, arrows=tuple(arrows), **kw)
    info = get_round(round_code)
    return projection(state, summarize(state, info), info)


def national_250_in_36() -> list[Arrow]:
    # 5 nines + 25 sevens + 6 fives = 45 + 175 + 30 = 250 over six complete ends.
    return [*(9,) * 5, *(7,) * 25, *(5,) * 6]


# -- profile enums ---------------------------------------------------------------------


def test_every_profile_value_maps_to_its_enum_member() -> None:
    for bowstyle in BOWSTYLES:
        assert bowstyle_enum(bowstyle).name.lower() == bowstyle
    for age in AGE_GROUPS:
        assert age_group_enum(age).name.lower() == age
    for gender in GENDERS:
        assert gender_enum(gender).name.lower() == gender
    assert bowstyle_enum("recurve") is cf.AGB_bowstyles.RECURVE
    assert age_group_enum("over_50") is cf.AGB_ages.OVER_50
    assert gender_enum("female") is cf.AGB_genders.FEMALE


@pytest.mark.parametrize(
    ("convert", "name"),
    [
        (bowstyle_enum, "Recurve"),
        (bowstyle_enum, "crossbow"),
        (age_group_enum, "age_adult"),  # deprecated alias: would warn, so refused
        (age_group_enum, "__class__"),
        (gender_enum, "male"),  # an alias of OPEN in archeryutils, not a profile value
    ],
)
def test_unknown_profile_values_are_refused(convert: object, name: str) -> None:
    with pytest.raises(ValueError, match="no AGB"):
        convert(name)  # type: ignore[operator]


# -- current_handicap --------------------------------------------------------------------


def test_national_250_after_36_arrows_is_handicap_48() -> None:
    assert current_handicap(get_round("national"), 36, 250) == 48.0


def test_partial_round_keeps_the_real_targets_across_passes() -> None:
    # 90 arrows of a York: all 72 at 100 yd, then 18 at 80 yd.
    york = get_round("york").archeryutils_round()
    first, second = york.passes[0], york.passes[1]
    expected_round = au.Round("york90", [au.Pass(72, first.target), au.Pass(18, second.target)])
    expected = float(hc.handicap_from_score(500, expected_round, "AGB", int_prec=True))
    # Shooting all 90 at 100 yd would be a different (harder) round: a better handicap.
    all_at_100 = au.Round("wrong", [au.Pass(90, first.target)])
    wrong = float(hc.handicap_from_score(500, all_at_100, "AGB", int_prec=True))

    got = current_handicap(get_round("york"), 90, 500)

    assert got == expected
    assert got != wrong


def test_all_arrows_counted_is_the_handicap_on_the_whole_round() -> None:
    national = get_round("national").archeryutils_round()
    expected = float(hc.handicap_from_score(513, national, "AGB", int_prec=True))
    assert current_handicap(get_round("national"), 72, 513) == expected


@pytest.mark.parametrize(
    ("arrows", "score"),
    [(36, 0), (36, -5), (0, 10), (36, 325)],  # 325 > 36 x 9: archeryutils' ValueError
)
def test_no_handicap_without_a_positive_achievable_score(arrows: int, score: int) -> None:
    assert current_handicap(get_round("national"), arrows, score) is None


def test_handicap_is_a_plain_float() -> None:
    value = current_handicap(get_round("national"), 36, 250)
    assert type(value) is float  # not numpy.float64: it goes into JSON and CBOR


# -- projection --------------------------------------------------------------------------


def test_national_recurve_250_after_36_is_on_track_for_b3() -> None:
    assert project("national", national_250_in_36()) == Projection(
        handicap=48.0, predicted_score=513, classification="B3", status="on_track"
    )


def test_arrows_of_an_incomplete_end_do_not_count() -> None:
    complete = project("national", national_250_in_36())
    with_partial_end = project("national", [*national_250_in_36(), 9, 9, 9, 9, 9])
    assert with_partial_end == complete


def test_no_projection_before_the_first_complete_end() -> None:
    assert project("national", [9, 9, 9, 9, 9]) is None
    assert project("national", [9, 9, 9, 9, 9, 9]) is not None


def test_no_projection_when_the_completed_ends_scored_nothing() -> None:
    assert project("national", [*("M",) * 6, 9]) is None


def test_wa1440_70_projection_matches_archeryutils_step_by_step() -> None:
    # 12 ends of 8s and 9s: 36 arrows at 70 m, then 36 at 60 m.
    arrows: list[Arrow] = [9, 8] * 36
    female = Profile("recurve", "adult", "female")
    full = get_round("wa1440_70").archeryutils_round()
    partial = au.Round(
        "first 72", [au.Pass(36, full.passes[0].target), au.Pass(36, full.passes[1].target)]
    )
    h = float(hc.handicap_from_score(612, partial, "AGB", int_prec=True))
    predicted = int(hc.score_for_round(h, full, "AGB", rounded_score=True))
    expected_class = cf.calculate_agb_outdoor_classification(
        predicted, "wa1440_70", cf.AGB_bowstyles.RECURVE, cf.AGB_genders.FEMALE, cf.AGB_ages.ADULT
    )

    got = project("wa1440_70", arrows, female)

    assert got == Projection(h, predicted, expected_class, "on_track")
    assert got is not None
    assert got.classification is not None
    assert got.predicted_score is not None
    assert got.predicted_score > 612  # the rest of the round is at 50 m and 30 m


def test_portsmouth_compound_over_50_projection() -> None:
    # 5 ends of 9s: 270 after 30 arrows at 20 yd.
    profile = Profile("compound", "over_50", "open")
    full = get_round("portsmouth").archeryutils_round()
    partial = au.Round("first 30", [au.Pass(30, full.passes[0].target)])
    h = float(hc.handicap_from_score(270, partial, "AGB", int_prec=True))
    predicted = int(hc.score_for_round(h, full, "AGB", rounded_score=True))
    expected_class = cf.calculate_agb_indoor_classification(
        predicted, "portsmouth", cf.AGB_bowstyles.COMPOUND, cf.AGB_genders.OPEN, cf.AGB_ages.OVER_50
    )

    got = project("portsmouth", [9] * 30, profile)

    assert got == Projection(h, predicted, expected_class, "on_track")
    # Checked by hand on archeryutils 3.0.0.
    assert got == Projection(45.0, 539, "I-B3", "on_track")


def test_worcester_counts_ends_of_five() -> None:
    # Two complete ends of five, then two arrows of the third end.
    got = project("worcester", [5, 4, 5, 4, 5, 4, 4, 4, 4, 4, 5, 5])
    assert got is not None
    assert got.handicap == current_handicap(get_round("worcester"), 10, 43)


def test_finished_archer_has_achieved_the_classification_of_their_total() -> None:
    arrows: list[Arrow] = [*national_250_in_36(), *national_250_in_36()]  # 500 over 72
    national = get_round("national").archeryutils_round()
    h = float(hc.handicap_from_score(500, national, "AGB", int_prec=True))
    expected_class = cf.calculate_agb_outdoor_classification(
        500, "national", cf.AGB_bowstyles.RECURVE, cf.AGB_genders.OPEN, cf.AGB_ages.ADULT
    )

    got = project("national", arrows, finished=True)

    assert got == Projection(h, 500, expected_class, "achieved")
    # Every arrow shot but the sheet not saved yet: nothing is left to predict, so the
    # "prediction" is the total itself, not the handicap table's 498 for handicap h.
    assert int(hc.score_for_round(h, national, "AGB", rounded_score=True)) != 500
    assert project("national", arrows) == Projection(h, 500, expected_class, "on_track")


def test_finished_early_is_judged_on_the_whole_round() -> None:
    got = project("national", national_250_in_36(), finished=True)
    national = get_round("national").archeryutils_round()
    assert got is not None
    assert got.status == "achieved"
    assert got.predicted_score == 250
    assert got.handicap == float(hc.handicap_from_score(250, national, "AGB", int_prec=True))
    assert got.handicap != 48.0  # not the partial round's handicap


def test_finished_with_nothing_scored_has_no_handicap_but_a_result() -> None:
    got = project("national", ["M"] * 72, finished=True)
    assert got is not None
    assert got.handicap is None
    assert got.predicted_score == 0
    assert got.status == "achieved"
    assert got.classification == cf.calculate_agb_outdoor_classification(
        0, "national", cf.AGB_bowstyles.RECURVE, cf.AGB_genders.OPEN, cf.AGB_ages.ADULT
    )


def test_rounds_outside_the_agb_tables_have_a_handicap_but_no_classification() -> None:
    got = project("ifaa_field", [5] * 6)
    assert got is not None
    assert got.handicap is not None
    assert got.predicted_score is not None
    assert got.classification is None


def test_profiles_outside_the_agb_tables_have_no_classification() -> None:
    # AGB indoor classifications do not cover flatbow.
    got = project("portsmouth", [9] * 30, Profile("flatbow", "adult", "open"))
    assert got is not None
    assert got.handicap == 45.0
    assert got.classification is None
    assert project("portsmouth", [9] * 30, Profile("barebow", "adult", "open")) is not None


def test_results_are_cached_and_the_cache_is_bounded() -> None:
    first = project("national", national_250_in_36())
    again = project("national", national_250_in_36())
    assert first is again
    other_profile = project("national", national_250_in_36(), Profile("compound"))
    assert other_profile is not None
    assert other_profile is not first
    assert other_profile.handicap == 48.0
    assert other_profile.classification == "A3"  # the profile is part of the key
    assert projection_tables._SCORE_TABLES.size == CACHE_SIZE


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([9, 7, 5, 3, 1, "M"]), max_size=72))
def test_projection_is_the_handicap_of_the_completed_ends(arrows: list[Arrow]) -> None:
    info = get_round("national")
    state = ArcherState(name="A", round="national", arrows=tuple(arrows))
    summary = summarize(state, info)
    got = projection(state, summary, info)
    counted = summary.ends_completed * 6
    score = sum(summary.end_totals)
    expected_h = current_handicap(info, counted, score) if counted else None
    if expected_h is None:
        assert got is None
    else:
        assert got is not None
        assert got.handicap == expected_h
        assert got.status == "on_track"
        assert got.predicted_score is not None
        assert 0 <= got.predicted_score <= info.max_score


# -- the score tables agree with archeryutils' root finds ------------------------------


@pytest.mark.parametrize(
    ("codename", "arrows"),
    [("portsmouth", 30), ("portsmouth", 60), ("national", 6), ("national", 36), ("york", 72)],
)
def test_the_score_table_gives_archeryutils_own_handicap(codename: str, arrows: int) -> None:
    """Every score (a sample on long rounds), including those whose root lies near a whole
    handicap (portsmouth 24 and 29 after 30 arrows, 58 after 60), where archeryutils'
    root finder decides and the table must defer to it."""
    table = projection_tables.score_table(codename, arrows)
    assert table is not None
    top = int(table.max_score)
    step = 1 if top <= 600 else 5
    info = get_round(codename)
    for score in [*range(1, top + 1, step), 24, 29, 58, top]:
        if score > top:
            continue
        expected = projection_tables.handicap_root(codename, arrows, score)
        assert current_handicap(info, arrows, score) == expected, score


def test_the_predicted_score_table_matches_archeryutils() -> None:
    full = get_round("national").archeryutils_round()
    for handicap in range(-75, 301, 7):
        expected = int(hc.score_for_round(float(handicap), full, "AGB", rounded_score=True))
        projection_tables.fill_full_score("national", float(handicap))
        assert projection_tables.lookup_full_score("national", float(handicap)) == expected


@pytest.mark.parametrize(
    ("codename", "profile"),
    [
        ("national", RECURVE_ADULT_OPEN),
        ("portsmouth", Profile("compound", "under_18", "female")),
        ("wa720_70", Profile("barebow", "over_50", "open")),
    ],
)
def test_the_classification_table_gives_archeryutils_own_classification(
    codename: str, profile: Profile
) -> None:
    """The table keeps archeryutils' answer only at its thresholds: every score between
    must get what archeryutils itself says."""
    info = get_round(codename)
    projection_tables.fill_classification(codename, profile)
    for score in [*range(0, info.max_score + 1, 3), info.max_score]:
        expected = projection_tables.classify_directly(info, score, profile)
        got = projection_tables.lookup_classification(codename, profile, score)
        assert got == expected, score


def test_a_peek_never_calls_archeryutils_and_says_what_to_fill() -> None:
    """The relay's lookups read tables only: a cold (round, profile) is a Need, and once
    filled the peek answers exactly what the blocking projection does."""
    profile = Profile("longbow", "under_16", "female")  # no other test uses this pair
    state = ArcherState(name="P", round="st_george", profile=profile, arrows=(5,) * 36)
    info = get_round("st_george")
    summary = summarize(state, info)
    need = classification.peek_projection(state, summary, info)
    assert isinstance(need, classification.Need)
    assert (need.round, need.arrows, need.score, need.finished) == ("st_george", 36, 180, False)
    classification.fill(need)
    assert classification.peek_projection(state, summary, info) == projection(state, summary, info)
