"""Leaderboard ranking: per-round positions with archery's tie-breaks, overall by handicap."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence

import pytest
from archeryutils import handicaps as hc
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import projection_tables
from sync.classification import current_handicap
from sync.clock import Stamp
from sync.leaderboard import Leaderboard, Standing, build_leaderboard
from sync.models import ArcherState, Profile
from sync.register import Register
from sync.rounds import Arrow, get_round

DEFAULT_PROFILE = Profile()


def reg(
    archer_id: str,
    name: str | None = None,
    round: str = "national",
    arrows: Sequence[Arrow] = (),
    *,
    profile: Profile = DEFAULT_PROFILE,
    finished: bool = False,
    left: bool = False,
    wall_ms: int = 1_000,
) -> Register:
    state = ArcherState(
        name=name or archer_id.title(),
        round=round,
        profile=profile,
        arrows=tuple(arrows),
        finished=finished,
        left=left,
    )
    return Register(archer_id, Stamp(wall_ms, 0, f"device-{archer_id}"), state)


def order(board: Leaderboard, round: str) -> list[tuple[str, int]]:
    group = board.group(round)
    assert group is not None
    return [(s.archer_id, s.position) for s in group.standings]


# -- positions and tie-breaks --------------------------------------------------------------


def test_archers_tied_on_every_key_share_a_position() -> None:
    board = build_leaderboard(
        [
            reg("dee", arrows=[7] * 6),
            reg("ann", arrows=[9] * 6),
            reg("cat", arrows=[9, 9, 9, 7, 7, 7]),
            reg("bob", arrows=[9, 9, 9, 7, 7, 7]),
        ]
    )
    # Ties are listed by name; the next archer is 4th, not 3rd.
    assert order(board, "national") == [("ann", 1), ("bob", 2), ("cat", 2), ("dee", 4)]


def test_ties_are_listed_by_name_then_id() -> None:
    board = build_leaderboard(
        [reg("z2", "Sam", arrows=[9] * 6), reg("z1", "Sam", arrows=[9] * 6), reg("a", "Tom")]
    )
    assert order(board, "national") == [("z1", 1), ("z2", 1), ("a", 3)]


def test_imperial_ties_break_on_hits_then_golds() -> None:
    board = build_leaderboard(
        [
            # All 54. Ann: 6 hits, 6 golds. Bob: 8 hits, 5 golds. Cat: 8 hits, 0 golds.
            reg("ann", arrows=[9, 9, 9, 9, 9, 9]),
            reg("bob", arrows=[9, 9, 9, 9, 9, 5, 3, 1, "M"]),
            reg("cat", arrows=[7, 7, 7, 7, 7, 7, 7, 5]),
        ]
    )
    assert order(board, "national") == [("bob", 1), ("cat", 2), ("ann", 3)]


def test_metric_ties_break_on_tens_then_xs_not_hits() -> None:
    board = build_leaderboard(
        [
            # All 50. Ann: 5 tens (2 X), 5 hits. Bob: 5 tens (1 X). Cat: 0 tens, 6 hits.
            reg("ann", round="wa1440_70", arrows=["X", "X", 10, 10, 10, "M"]),
            reg("bob", round="wa1440_70", arrows=["X", 10, 10, 10, 10, "M"]),
            reg("cat", round="wa1440_70", arrows=[9, 9, 8, 8, 8, 8]),
        ]
    )
    assert order(board, "wa1440_70") == [("ann", 1), ("bob", 2), ("cat", 3)]
    ann = board.standing("ann")
    assert ann is not None
    assert (ann.golds, ann.xs, ann.hits) == (5, 2, 5)


def test_the_same_arrows_rank_differently_under_imperial_and_metric_rules() -> None:
    # Equal totals; one archer has more hits, the other more top-ring arrows.
    more_hits = reg("hits", round="worcester", arrows=[4, 4, 4, 4, 4])
    more_golds = reg("golds", round="worcester", arrows=[5, 5, 5, 5, "M"])
    assert order(build_leaderboard([more_hits, more_golds]), "worcester")[0][0] == "hits"

    more_hits = reg("hits", round="portsmouth", arrows=[8, 8, 8, 8, 8])
    more_golds = reg("golds", round="portsmouth", arrows=[10, 10, 10, 10, "M"])
    assert order(build_leaderboard([more_hits, more_golds]), "portsmouth")[0][0] == "golds"


def test_behind_is_the_gap_to_the_archer_directly_above() -> None:
    board = build_leaderboard(
        [
            reg("ann", arrows=[9] * 6),  # 54
            reg("bob", arrows=[9, 9, 9, 9, 7, 7]),  # 50
            reg("cat", arrows=[9, 9, 9, 9, 7, 7]),  # 50
            reg("dee", arrows=[7, 7]),  # 14
        ]
    )
    group = board.group("national")
    assert group is not None
    assert [s.behind for s in group.standings] == [None, 4, 0, 36]


# -- who is on the board ---------------------------------------------------------------------


def test_archers_who_left_are_not_on_the_board() -> None:
    board = build_leaderboard([reg("ann", arrows=[9]), reg("bob", arrows=[9, 9], left=True)])
    assert board.standing("bob") is None
    assert [s.archer_id for s in board.overall] == ["ann"]
    assert order(board, "national") == [("ann", 1)]


def test_invalid_registers_are_skipped() -> None:
    board = build_leaderboard(
        [
            reg("ann", arrows=[9]),
            reg("bob", arrows=[10]),  # no 10 on a 5-zone face
            reg("cat", round="no_such_round"),
            reg("dee", arrows=[9] * 73),  # a National has 72 arrows
            reg("eve", name=" Eve"),  # untrimmed name
        ]
    )
    assert [s.archer_id for s in board.overall] == ["ann"]


def test_two_registers_for_one_archer_merge_to_the_newest() -> None:
    old = reg("ann", arrows=[9], wall_ms=1_000)
    new = reg("ann", arrows=[9, 9], wall_ms=2_000)
    for registers in ([old, new], [new, old]):
        standing = build_leaderboard(registers).standing("ann")
        assert standing is not None
        assert standing.total == 18
    # Leaving is a write like any other: the newest decides.
    gone = reg("ann", arrows=[9], left=True, wall_ms=3_000)
    assert build_leaderboard([new, gone]).standing("ann") is None
    # ...and a broken newer write does not hide a valid older one.
    broken = reg("ann", arrows=[10], wall_ms=4_000)
    standing = build_leaderboard([new, broken]).standing("ann")
    assert standing is not None
    assert standing.total == 18


def test_empty_board() -> None:
    board = build_leaderboard([])
    assert board == Leaderboard()
    assert board.to_dict() == {"groups": [], "overall": []}
    assert board.standing("ann") is None


# -- the standing's fields -------------------------------------------------------------------


def test_standing_carries_totals_and_the_on_track_classification() -> None:
    arrows: list[Arrow] = [*(9,) * 5, *(7,) * 25, *(5,) * 6, 9, "M"]  # 250 over 6 ends, +9
    standing = build_leaderboard([reg("ann", arrows=arrows)]).standing("ann")
    assert standing == Standing(
        archer_id="ann",
        name="Ann",
        round="national",
        round_name="National",
        profile=Profile(),
        arrows_shot=38,
        total=259,
        hits=37,
        golds=6,
        xs=0,
        ends_completed=6,
        end_totals=(52, 42, 42, 42, 42, 30),
        total_arrows=72,
        max_score=648,
        finished=False,
        position=1,
        behind=None,
        handicap=48.0,
        predicted_score=513,
        classification="B3",
        classification_status="on_track",
        overall_position=1,
    )


def test_no_classification_before_the_first_complete_end() -> None:
    standing = build_leaderboard([reg("ann", arrows=[9] * 5)]).standing("ann")
    assert standing is not None
    assert standing.total == 45
    assert (standing.handicap, standing.predicted_score) == (None, None)
    assert (standing.classification, standing.classification_status) == (None, None)
    assert standing.overall_position is None


def test_finished_archers_have_achieved_their_classification() -> None:
    standing = build_leaderboard([reg("ann", arrows=[7] * 72, finished=True)]).standing("ann")
    assert standing is not None
    assert standing.finished
    assert standing.classification_status == "achieved"
    assert standing.predicted_score == 504
    assert standing.handicap == current_handicap(get_round("national"), 72, 504)


# -- groups and the overall ranking ----------------------------------------------------------


def test_mixed_rounds_are_grouped_and_ranked_overall_by_handicap() -> None:
    board = build_leaderboard(
        [
            reg("ann", round="portsmouth", arrows=[9] * 6),
            reg("bob", round="national", arrows=[7] * 6),
            reg("cat", round="national", arrows=[9] * 6),
            reg("dee", round="york", arrows=[5] * 6),
            reg("eve", round="york", arrows=[5] * 3),  # no complete end: no handicap
            reg("fay", round="york", arrows=[5] * 6),  # same handicap as Dee
            reg("abe", round="national"),  # nothing shot
        ]
    )
    # Largest group first; equal sizes by round name.
    assert [g.round for g in board.groups] == ["national", "york", "portsmouth"]
    assert [len(g.standings) for g in board.groups] == [3, 3, 1]

    def handicap_of(round: str, arrows: int, score: int) -> float:
        value = current_handicap(get_round(round), arrows, score)
        assert value is not None
        return value

    handicaps = {
        "ann": handicap_of("portsmouth", 6, 54),
        "bob": handicap_of("national", 6, 42),
        "cat": handicap_of("national", 6, 54),
        "dee": handicap_of("york", 6, 30),
        "fay": handicap_of("york", 6, 30),
    }
    rated = sorted(handicaps, key=lambda a: (handicaps[a], a))
    assert [s.archer_id for s in board.overall] == [*rated, "abe", "eve"]
    for s in board.overall:
        assert s.handicap == handicaps.get(s.archer_id)
    # The overall ranking is by handicap, lower first; equal handicaps share a position.
    assert [s.handicap for s in board.overall[:5]] == sorted(handicaps.values())
    dee, fay = board.standing("dee"), board.standing("fay")
    assert dee is not None
    assert fay is not None
    assert dee.overall_position == fay.overall_position
    assert [s.overall_position for s in board.overall][-2:] == [None, None]
    # Within a round, positions are by score, independent of the other rounds.
    assert order(board, "national") == [("cat", 1), ("bob", 2), ("abe", 3)]
    assert order(board, "portsmouth") == [("ann", 1)]
    # Group standings carry the overall position too.
    group = board.group("national")
    assert group is not None
    assert group.standings[0] is board.standing("cat")


def test_to_dict_is_plain_json() -> None:
    board = build_leaderboard(
        [reg("ann", arrows=["M", 9, 9, 9, 9, 9, 9]), reg("bob", round="wa18", arrows=["X"])]
    )
    data = board.to_dict()
    assert json.loads(json.dumps(data)) == data
    first = data["groups"][0]["standings"][0]
    assert first["archer_id"] in {"ann", "bob"}
    ann = next(s for s in data["overall"] if s["archer_id"] == "ann")
    assert ann["profile"] == {"bowstyle": "recurve", "age_group": "adult", "gender": "open"}
    assert ann["end_totals"] == [45]
    assert ann["classification_status"] == "on_track"
    assert isinstance(ann["handicap"], float)
    assert [s["archer_id"] for s in data["overall"]] == [s.archer_id for s in board.overall]


def test_rebuilding_does_not_call_archeryutils_again(monkeypatch: pytest.MonkeyPatch) -> None:
    registers = [reg(f"a{i}", arrows=[9, 7, 5, 7, 9, 7] * (i % 4 + 1)) for i in range(12)]
    first = build_leaderboard(registers)

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("archeryutils called on a cached rebuild")

    monkeypatch.setattr(hc, "handicap_from_score", fail)
    monkeypatch.setattr(hc, "score_for_round", fail)
    for location in ("outdoor", "indoor", "field"):
        monkeypatch.setitem(projection_tables._CLASSIFIERS, location, (fail, fail))
    assert build_leaderboard(registers) == first


# -- properties ------------------------------------------------------------------------------

ROUNDS = ("national", "wa1440_70", "worcester", "portsmouth")


@st.composite
def registers(draw: st.DrawFn) -> list[Register]:
    count = draw(st.integers(min_value=0, max_value=8))
    out: list[Register] = []
    for i in range(count):
        info = get_round(draw(st.sampled_from(ROUNDS)))
        n = draw(st.integers(min_value=0, max_value=14))
        arrows = [draw(st.sampled_from(sorted(info.allowed_at(j), key=str))) for j in range(n)]
        name = draw(st.sampled_from(["Ann", "Bob", "Cat"]))
        left = draw(st.integers(min_value=0, max_value=5)) == 0
        out.append(reg(f"a{i}", name, info.codename, arrows, left=left))
    return out


def _key(s: Standing) -> tuple[int, int, int]:
    if get_round(s.round).tie_break == "hits":
        return (s.total, s.hits, s.golds)
    return (s.total, s.golds, s.xs)


@settings(max_examples=60, deadline=None)
@given(registers())
def test_positions_follow_the_ranking_keys(regs: list[Register]) -> None:
    board = build_leaderboard(regs)
    present = {r.archer_id for r in regs if not r.state.left}
    assert {s.archer_id for s in board.overall} == present
    for group in board.groups:
        standings = group.standings
        positions = [s.position for s in standings]
        assert positions == sorted(positions)
        assert not standings or positions[0] == 1
        for s in standings:
            assert s.round == group.round
            # Competition ranking: 1 + how many are strictly better.
            assert s.position == 1 + sum(_key(o) > _key(s) for o in standings)
        for above, below in itertools.pairwise(standings):
            assert (above.position == below.position) == (_key(above) == _key(below))
            assert below.behind == above.total - below.total
    sizes = [len(g.standings) for g in board.groups]
    assert sizes == sorted(sizes, reverse=True)
    rated = [s.handicap for s in board.overall if s.handicap is not None]
    assert rated == sorted(rated)
    assert all(s.handicap is None for s in board.overall[len(rated) :])


@settings(max_examples=40, deadline=None)
@given(registers(), st.randoms(use_true_random=False))
def test_the_board_does_not_depend_on_input_order(regs: list[Register], rnd: random.Random) -> None:
    shuffled = list(regs)
    rnd.shuffle(shuffled)
    assert build_leaderboard(shuffled) == build_leaderboard(regs)
    assert build_leaderboard(shuffled).to_dict() == build_leaderboard(regs).to_dict()
