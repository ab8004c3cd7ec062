from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.classification import derived_values
from sync.clock import Stamp
from sync.document import ShootDocument
from sync.limits import MAX_WRITE_UPDATE_BYTES, SizeBudget, TokenBucket
from sync.models import ArcherState, Profile
from sync.protocol import MAX_ARROWS_PER_WRITE, MAX_ID_LENGTH, MAX_REQUEST_ID
from sync.register import Applied, Register
from sync.rounds import all_rounds, get_round


def test_burst_then_rate() -> None:
    bucket = TokenBucket(burst=3, rate=2.0, updated=100.0)
    assert [bucket.try_take(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after(100.0) == 0.5
    assert not bucket.try_take(100.4)
    assert bucket.try_take(100.5)
    assert bucket.would_allow(200.0)
    assert bucket.tokens == 3


def test_clock_going_backwards_adds_nothing() -> None:
    bucket = TokenBucket(burst=1, rate=1.0, updated=10.0)
    assert bucket.try_take(10.0)
    assert not bucket.try_take(5.0)


def test_the_size_budget_measures_only_near_the_cap() -> None:
    sizes = iter([900, 950])
    measured: list[int] = []

    def measure() -> int:
        measured.append(next(sizes))
        return measured[-1]

    budget = SizeBudget(cap=1000, estimate=100)
    budget.grew(500)
    assert budget.has_room(300, measure)
    assert measured == []  # 600 + 300 fits without measuring
    budget.grew(400)
    assert not budget.has_room(300, measure)  # 1000 + 300: measured, 900 + 300 too
    assert not budget.has_room(150, measure)  # nothing grew since: not measured again
    assert measured == [900]
    assert budget.has_room(100, measure)
    budget.grew(10)
    assert not budget.has_room(100, measure)
    assert measured == [900, 950]


def test_no_single_write_needs_more_than_the_write_headroom() -> None:
    """The document cap refuses writes within MAX_WRITE_UPDATE_BYTES of it: that must
    exceed the update of any one write, even one that changes every field at once."""
    doc = ShootDocument(client_id=1)
    widest = "\U0001f3f9" * 160  # structural maximum, four UTF-8 bytes per character
    for n, arrows in enumerate([(), ("X",) * MAX_ARROWS_PER_WRITE, (10,) * MAX_ARROWS_PER_WRITE]):
        state = ArcherState(
            name=widest if n % 2 else "N" * 160,
            round="r" * 64,
            profile=Profile("b" * 32, "a" * 32, "g" * 32),
            arrows=arrows,
            finished=bool(n % 2),
            left=bool(n % 2),
        )
        stamp = Stamp(MAX_REQUEST_ID, 2**31 - 3 + n, f"{n}" * MAX_ID_LENGTH)
        outcome, update = doc.write(Register("a" * MAX_ID_LENGTH, stamp, state))
        assert isinstance(outcome, Applied)
        assert len(update) < MAX_WRITE_UPDATE_BYTES / 2


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 4),
            st.lists(st.sampled_from([9, 7, 5, 3, 1, "M", "X", 10]), max_size=300),
        ),
        max_size=60,
    )
)
def test_the_size_budget_keeps_a_document_under_its_cap(
    writes: list[tuple[int, list[Any]]],
) -> None:
    """Writes admitted by the budget (as the actor admits them) never take the document
    over the cap, however they grow and churn it."""
    cap = MAX_WRITE_UPDATE_BYTES + 4 * 1024  # small: refusals are common
    doc = ShootDocument(client_id=1)
    budget = SizeBudget(cap=cap, estimate=len(doc.diff()))
    for n, (archer, arrows) in enumerate(writes, start=1):
        write = Register(
            f"a{archer}", Stamp(n, 0, "d"), ArcherState("N", "r", arrows=tuple(arrows))
        )
        if budget.has_room(MAX_WRITE_UPDATE_BYTES, lambda: len(doc.diff())):
            _, update = doc.write(write)
            budget.grew(len(update))
        size = len(doc.diff())
        assert size <= budget.estimate  # an upper bound, so measuring can wait
        assert size <= cap


def test_the_write_headroom_covers_the_derived_values_the_relay_adds() -> None:
    longest = get_round("york")  # 144 arrows, the most of any round
    assert longest.total_arrows == max(info.total_arrows for info in all_rounds())
    doc = ShootDocument(client_id=1, derive=derived_values)
    for n, value in enumerate([9, 7, 5, 3, 1]):  # every arrow scores: derived values exist
        state = ArcherState(
            name="N" * 40,
            round=longest.codename,
            profile=Profile("compoundbarebow", "under_21", "female"),
            arrows=(value,) * longest.total_arrows,
            finished=bool(n % 2),
        )
        outcome, update = doc.write(Register("a" * MAX_ID_LENGTH, Stamp(n, 0, "d"), state))
        assert isinstance(outcome, Applied)
        assert doc.derived("a" * MAX_ID_LENGTH) is not None
        assert len(update) < MAX_WRITE_UPDATE_BYTES / 2
