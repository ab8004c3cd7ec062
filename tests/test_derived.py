"""Derived values in the document: the writer stores what browsers cannot compute
(handicap, predicted score, classification, status) beside each archer's state, in the same
transaction (one update per write), and clears them when there is nothing to project."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Map

from sync.classification import derived_values
from sync.clock import Stamp
from sync.document import ShootDocument
from sync.leaderboard import build_leaderboard
from sync.models import ArcherState
from sync.register import Register

# Checked by hand with archeryutils: 250 after 36 arrows of a National (recurve, adult,
# open) is handicap 48, predicting 513, which is B3.
NATIONAL_250_IN_36 = (9, 9, 7, 7, 7, 7) * 2 + (7, 7, 7, 7, 7, 5) * 3 + (7, 7, 7, 7, 5, 5)


def board_values(state: ArcherState) -> list[Any]:
    """The same four values as the leaderboard computes them."""
    s = build_leaderboard([Register("a1", Stamp(1, 0, "d"), state)]).standing("a1")
    assert s is not None
    return [s.handicap, s.predicted_score, s.classification, s.classification_status]


def reg(ms: int, arrows: tuple[Any, ...], **kw: Any) -> Register:
    return Register(
        "a1", Stamp(ms, 0, "phone"), ArcherState("Chris", "national", arrows=arrows, **kw)
    )


def test_derived_values_match_the_handicap_tables() -> None:
    assert sum(NATIONAL_250_IN_36) == 250
    state = ArcherState("Chris", "national", arrows=NATIONAL_250_IN_36)
    values = derived_values(state)
    assert values == [48, 513, "B3", "on_track"]
    assert values == board_values(state)
    # An end in progress does not count; no completed end: nothing to project.
    assert derived_values(ArcherState("Chris", "national", arrows=(9, 9, 9))) is None
    finished = ArcherState("Chris", "national", arrows=NATIONAL_250_IN_36, finished=True)
    values = derived_values(finished)
    assert values == board_values(finished)
    assert values is not None
    assert values[1] == 250
    assert values[3] == "achieved"


def test_the_writer_stores_derived_values_in_the_same_update() -> None:
    writer = ShootDocument(client_id=1, derive=derived_values)
    replica = Doc()
    updates = []
    for ms, n in [(1, 6), (2, 36), (3, 3)]:
        _, update = writer.write(reg(ms, NATIONAL_250_IN_36[:n]))
        updates.append(update)
        replica.apply_update(update)  # one update carries state and derived values
        archers: Map[Any] = replica.get("archers", type=Map)
        stored = archers["a1"].get("derived")
        assert stored == writer.derived("a1")
        if n == 36:
            assert stored == board_values(reg(ms, NATIONAL_250_IN_36).state)
        if n == 3:
            assert stored is None  # undone below one end: cleared, not stale
    # Replicas without a derive function read the same registers.
    plain = ShootDocument.load(updates)
    assert plain.registers() == writer.registers()
    assert plain.derived("a1") is None


def test_derived_values_cost_a_few_dozen_bytes_per_write() -> None:
    with_derived = ShootDocument(client_id=1, derive=derived_values)
    without = ShootDocument(client_id=1)
    extra = []
    for end in range(1, 7):
        state_arrows = NATIONAL_250_IN_36[: end * 6]
        _, a = with_derived.write(reg(end, state_arrows))
        _, b = without.write(reg(end, state_arrows))
        extra.append(len(a) - len(b))
    # The measured design figure is about +39 B per write; bound it loosely.
    assert 0 < max(extra) < 80


def test_an_unchanged_projection_is_not_rewritten() -> None:
    writer = ShootDocument(client_id=1, derive=derived_values)
    writer.write(reg(1, NATIONAL_250_IN_36[:6]))
    _, with_arrow = writer.write(reg(2, (*NATIONAL_250_IN_36[:6], 9)))
    plain = ShootDocument(client_id=1)
    plain.write(reg(1, NATIONAL_250_IN_36[:6]))
    _, plain_arrow = plain.write(reg(2, (*NATIONAL_250_IN_36[:6], 9)))
    # A seventh arrow completes no end: the derived values stay, and cost nothing.
    assert len(with_arrow) == len(plain_arrow)
