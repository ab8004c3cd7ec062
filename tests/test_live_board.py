"""The board kept per write equals the board built from scratch, and so do its notices.

The relay never rebuilds the board after a write: :class:`sync.live_board.LiveBoard`
redoes what one register can move. These tests drive it and
:func:`sync.leaderboard.build_leaderboard` side by side through random shoots (archers
scoring, correcting, changing round or name, finishing, leaving) and require the same
board, the same notices and the same notifier memory after every write.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import classification, projection_tables
from sync.classification import Need, Projection, peek_projection
from sync.clock import Stamp
from sync.leaderboard import build_leaderboard
from sync.live_board import LiveBoard
from sync.models import ArcherState, Profile, ScoreSummary
from sync.notifications import NotifierState, next_notices
from sync.register import Register
from sync.rounds import RoundInfo, get_round

ROUNDS = ("national", "wa720_70", "worcester", "portsmouth")
NAMES = ("Ann", "Bob", "Cat", "Dee")
PROFILES = (Profile("recurve", "adult", "open"), Profile("compound", "over_50", "female"))


@st.composite
def writes(
    draw: st.DrawFn, rounds: tuple[str, ...] = ROUNDS, max_archers: int = 6
) -> list[Register]:
    """A shoot's writes: mostly arrows added one or a few at a time, sometimes a
    correction, a round or name change, a finish, a departure or a return."""
    count = draw(st.integers(min_value=1, max_value=60))
    archers = draw(st.integers(min_value=1, max_value=max_archers))
    states: dict[str, ArcherState] = {}
    out: list[Register] = []
    for ms in range(1, count + 1):
        aid = f"a{draw(st.integers(min_value=0, max_value=archers - 1))}"
        state = states.get(aid) or ArcherState(
            name=draw(st.sampled_from(NAMES)),
            round=draw(st.sampled_from(rounds)),
            profile=draw(st.sampled_from(PROFILES)),
        )
        info = get_round(state.round)
        action = draw(st.integers(min_value=0, max_value=19))
        arrows = list(state.arrows)
        if action == 0 and arrows:
            arrows = arrows[: draw(st.integers(min_value=0, max_value=len(arrows) - 1))]
        elif action == 1:
            state = ArcherState(state.name, draw(st.sampled_from(rounds)), state.profile)
            info, arrows = get_round(state.round), []
        elif action == 2:
            state = ArcherState(draw(st.sampled_from(NAMES)), state.round, state.profile)
        else:
            for _ in range(draw(st.integers(min_value=1, max_value=7))):
                if len(arrows) < info.total_arrows:
                    allowed = sorted(info.allowed_at(len(arrows)), key=str)
                    arrows.append(draw(st.sampled_from(allowed)))
        state = ArcherState(
            name=state.name,
            round=state.round,
            profile=state.profile,
            arrows=tuple(arrows),
            finished=action == 3,
            left=action == 4,
        )
        states[aid] = state
        out.append(Register(aid, Stamp(ms, 0, "d"), state))
    return out


@settings(max_examples=80, deadline=None)
@given(writes())
def test_the_live_board_and_its_notices_equal_a_rebuild_after_every_write(
    history: list[Register],
) -> None:
    _check_every_write(history)


@settings(max_examples=150, deadline=None)
@given(writes(rounds=("portsmouth", "worcester"), max_archers=14))
def test_a_crowded_round_with_ties_equals_a_rebuild_after_every_write(
    history: list[Register],
) -> None:
    """Many archers in one round, where writers pass several others and tie with them:
    the board redoes only the places between where the writer was and where it is."""
    _check_every_write(history)


def test_an_archer_who_joins_ahead_moves_everyone_after_them_down() -> None:
    """Positions count places: one more archer ahead of a tie moves the lines after the
    tie too, though the tie's own lines come out as before."""
    history = [
        Register(aid, Stamp(ms, 0, "d"), ArcherState("Ann", "national", arrows=arrows))
        for ms, (aid, arrows) in enumerate(
            [("a1", (1,)), ("a3", (1,)), ("a0", ()), ("a2", (1,))], start=1
        )
    ]
    _check_every_write(history)
    live = LiveBoard(project=classification.projection)
    for register in history:
        live.put(register)
    (group,) = live.board.groups
    assert [(s.archer_id, s.position) for s in group.standings] == [
        ("a1", 1),
        ("a2", 1),
        ("a3", 1),
        ("a0", 4),
    ]


def _check_every_write(history: list[Register]) -> None:
    live = LiveBoard(project=classification.projection)
    current: dict[str, Register] = {}
    scratch_notifier = live_notifier = NotifierState()
    scratch_board = build_leaderboard(())
    for register in history:
        current[register.archer_id] = register
        before = live.board
        rounds = live.put(register)
        rebuilt = build_leaderboard(current.values())
        assert live.board == rebuilt
        assert live.board.to_dict() == rebuilt.to_dict()
        live_notifier, live_notices = next_notices(live_notifier, before, live.board, rounds)
        scratch_notifier, scratch_notices = next_notices(scratch_notifier, scratch_board, rebuilt)
        scratch_board = rebuilt
        assert live_notices == scratch_notices
        assert live_notifier == scratch_notifier


@settings(max_examples=30, deadline=None)
@given(writes())
def test_a_live_board_loaded_from_registers_equals_a_rebuild(history: list[Register]) -> None:
    current = {r.archer_id: r for r in history}
    board = LiveBoard(current.values(), project=classification.projection).board
    assert board == build_leaderboard(current.values())


@settings(max_examples=30, deadline=None)
@given(writes(max_archers=10))
def test_lines_refreshed_together_equal_a_rebuild(history: list[Register]) -> None:
    """Every line made without its projection, then all redone at once (several places
    of a group left and re-entered in one refresh)."""
    filled = False

    def project(
        state: ArcherState, summary: ScoreSummary, info: RoundInfo
    ) -> Projection | Need | None:
        if filled:
            return classification.projection(state, summary, info)
        return Need(info.codename, summary.arrows_shot, summary.total, state.profile, False)

    current = {r.archer_id: r for r in history}
    live = LiveBoard(current.values(), project=project)
    assert all(s.handicap is None for s in live.board.overall)
    filled = True  # as if the tables had been filled meanwhile
    live.refresh(list(current))
    assert live.board == build_leaderboard(current.values())


def test_a_missing_projection_shows_as_none_until_filled_then_the_board_is_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With cold tables the board goes out at once without the projection; after the
    fill (done on a worker thread by the relay) a refresh makes it the rebuilt board."""
    for table in ("_SCORE_TABLES", "_ROOTS", "_FULL_SCORES", "_CLASS_TABLES"):
        monkeypatch.setattr(projection_tables, table, projection_tables._Table())
    monkeypatch.setattr(classification, "_PROJECTIONS", {})
    state = ArcherState("Ann", "national", arrows=(9, 7, 7, 7, 7, 5) * 2)
    other = ArcherState("Bob", "national", arrows=(9,) * 5)
    registers = [Register("a1", Stamp(1, 0, "d"), state), Register("a2", Stamp(1, 0, "e"), other)]
    live = LiveBoard(project=peek_projection)
    for register in registers:
        live.put(register)
    standing = live.board.standing("a1")
    assert standing is not None
    assert standing.handicap is None  # not in the tables: nothing computed here
    assert standing.total == 84
    assert standing.position == 1
    need = live.needs["a1"]
    assert isinstance(need, Need)
    assert (need.round, need.arrows, need.score) == ("national", 12, 84)

    classification.fill(need)  # what the relay's projector does on a worker thread
    rounds = live.refresh(list(live.needs))
    assert rounds == {"national"}
    assert not live.needs
    assert live.board == build_leaderboard(registers)
    filled = live.board.standing("a1")
    assert filled is not None
    assert filled.handicap is not None
    assert filled.classification is not None
