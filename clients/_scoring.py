"""Building an archer's next state from the current one: pure, checked before queueing.

Every write is the archer's whole state (``docs/protocol.md``), so each scoring action is
a function from the current :class:`~sync.models.ArcherState` to the next. The rules of
the round are checked here, on the device, so an invalid arrow is a clear error at once
instead of a refusal from the relay minutes later when the device is back online.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sync.errors import InvalidState
from sync.models import ArcherState, validate_state
from sync.rounds import Arrow, get_round

from ._errors import InvalidScore

__all__ = ["add_arrows", "checked", "parse_arrow", "without_last_arrow"]


def parse_arrow(value: Arrow | str) -> Arrow:
    """An arrow as typed (``"9"``, ``"x"``, ``"M"``, ``10``) as the wire's value.

    Raises:
        InvalidScore: ``invalid_arrow`` for anything that is not a ring, X or M.
    """
    if isinstance(value, bool):
        raise InvalidScore("invalid_arrow", f"{value!r} is not an arrow value.")
    if isinstance(value, int):
        return value
    text = value.strip().upper()
    if text == "X":
        return "X"
    if text == "M":
        return "M"
    if text.isascii() and text.isdigit() and len(text) <= 2:
        return int(text)
    raise InvalidScore("invalid_arrow", f"{value!r} is not an arrow value (use a number, X or M).")


def checked(state: ArcherState) -> ArcherState:
    """The state, if it keeps the rules of its round.

    Raises:
        InvalidScore: with the rule's code and sentence (``invalid_arrow``...).
    """
    try:
        validate_state(state)
    except InvalidState as exc:
        raise InvalidScore(exc.code, exc.message) from exc
    return state


def _open(state: ArcherState) -> None:
    if state.finished:
        raise InvalidScore("finished", "This score sheet is finished; it cannot change.")
    if state.left:
        raise InvalidScore("left", "This archer has left the shoot.")


def add_arrows(
    state: ArcherState, values: Sequence[Arrow | str], *, whole_end: bool
) -> ArcherState:
    """The state with ``values`` shot next.

    Args:
        whole_end: The values are one end: at least one arrow, and no more than fit in
            the end being shot (an end of the round's size, e.g. 6).
    """
    _open(state)
    arrows = tuple(parse_arrow(v) for v in values)
    if not arrows:
        raise InvalidScore("invalid_arrow", "Score at least one arrow.")
    if whole_end:
        try:
            end_size = get_round(state.round).end_size
        except InvalidState as exc:
            raise InvalidScore(exc.code, exc.message) from exc
        room = end_size - len(state.arrows) % end_size
        if len(arrows) > room:
            raise InvalidScore(
                "invalid_end",
                f"An end has {end_size} arrows; {len(arrows)} do not fit "
                f"({room} left in this end).",
            )
    return checked(replace(state, arrows=state.arrows + arrows))


def without_last_arrow(state: ArcherState) -> ArcherState:
    _open(state)
    if not state.arrows:
        raise InvalidScore("nothing_to_undo", "There is no arrow to undo.")
    return replace(state, arrows=state.arrows[:-1])
