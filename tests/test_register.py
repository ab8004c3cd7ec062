"""The LWW merge is a semilattice join: commutative, associative, idempotent."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sync.clock import Stamp
from sync.models import ArcherState
from sync.register import Applied, Duplicate, Register, Superseded, decide, merge

registers = st.builds(
    Register,
    archer_id=st.just("a1"),
    stamp=st.builds(Stamp, st.integers(0, 5), st.integers(0, 2), st.sampled_from(["p", "t"])),
    state=st.builds(
        ArcherState,
        name=st.sampled_from(["Chris", "Sam"]),
        round=st.just("national"),
        arrows=st.lists(st.sampled_from([9, 7, "M"]), max_size=3).map(tuple),
    ),
)
maybe = st.none() | registers


@given(maybe, maybe)
def test_commutative(a: Register | None, b: Register | None) -> None:
    assert merge(a, b) == merge(b, a)


@given(maybe, maybe, maybe)
def test_associative(a: Register | None, b: Register | None, c: Register | None) -> None:
    assert merge(merge(a, b), c) == merge(a, merge(b, c))


@given(maybe)
def test_idempotent(a: Register | None) -> None:
    assert merge(a, a) == a


@given(maybe, registers)
def test_decide_agrees_with_merge(current: Register | None, write: Register) -> None:
    outcome = decide(current, write)
    winner = merge(current, write)
    match outcome:
        case Applied(register):
            assert register == write == winner
            assert current != write
        case Duplicate(register):
            assert register == current == write
        case Superseded(register):
            assert register == current == winner
            assert current != write


def test_equal_stamps_with_different_states_still_pick_one_winner() -> None:
    stamp = Stamp(1, 0, "buggy-device")
    a = Register("a1", stamp, ArcherState("Chris", "national", arrows=(9,)))
    b = Register("a1", stamp, ArcherState("Chris", "national", arrows=(7,)))
    assert merge(a, b) == merge(b, a)
    assert isinstance(decide(a, b), Applied | Superseded)
