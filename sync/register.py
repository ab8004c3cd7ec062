"""The last-writer-wins register that holds one archer's state, and its merge.

Theory of operation
-------------------
A register's value is a whole :class:`~sync.models.ArcherState` with the
:class:`~sync.clock.Stamp` of the write that set it. Merging two registers keeps the one
with the larger ``(stamp, canonical state bytes)`` key. Stamps from different devices never
tie (the device id is part of the stamp); the state's canonical CBOR bytes
(:mod:`sync.canonical`) are in the key only so that even a buggy device reusing a stamp
cannot make two replicas disagree, and any client, the browser included, can reproduce
the order. Because ``max`` over a total order is
commutative, associative and idempotent, replicas that have seen the same writes agree,
whatever order, duplication or delay the network added.

The relay decides the merge *before* writing to the Yjs document: Yjs settles two
concurrent sets of one map key by its client ids, not by our timestamps, so the
document only ever receives winners from one writer (the shoot's actor).
"""

from __future__ import annotations

from dataclasses import dataclass

from .canonical import canonical_state
from .clock import Stamp
from .models import ArcherState

__all__ = ["Applied", "Duplicate", "Outcome", "Register", "Superseded", "decide", "merge"]


@dataclass(frozen=True, slots=True)
class Register:
    """One archer's state as of one write."""

    archer_id: str
    stamp: Stamp
    state: ArcherState

    def key(self) -> tuple[Stamp, bytes]:
        """The merge order: stamp first, then the canonical bytes of the state."""
        return (self.stamp, canonical_state(self.state))


def merge(a: Register | None, b: Register | None) -> Register | None:
    """The winner of two registers for the same archer (``None`` is the empty register)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if _compare(a, b) >= 0 else b


def _compare(a: Register, b: Register) -> int:
    """``key()`` order (-1, 0, 1), encoding the states only when the stamps tie (a buggy
    device): a write is decided on every write, and the encoding is most of its cost."""
    if a.stamp != b.stamp:
        return 1 if a.stamp > b.stamp else -1
    if a.state == b.state:
        return 0
    first, second = canonical_state(a.state), canonical_state(b.state)
    return (first > second) - (first < second)


@dataclass(frozen=True, slots=True)
class Applied:
    """The write won and is now the register's value."""

    register: Register


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The register already holds exactly this write: acknowledge it, change nothing."""

    register: Register


@dataclass(frozen=True, slots=True)
class Superseded:
    """A newer write already won; the writer should adopt :attr:`winner`."""

    winner: Register


Outcome = Applied | Duplicate | Superseded


def decide(current: Register | None, write: Register) -> Outcome:
    """What applying ``write`` to a register holding ``current`` does."""
    if current is None:
        return Applied(write)
    order = _compare(write, current)
    if order > 0:
        return Applied(write)
    if order == 0:
        return Duplicate(current)
    return Superseded(current)
