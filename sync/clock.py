"""Hybrid logical clocks: timestamps that follow wall time but never run backwards.

Theory of operation
-------------------
Every write an archer's device makes carries a :class:`Stamp` ``(wall_ms, counter,
device_id)``. Stamps are totally ordered, first by wall time, then by the counter, then by
the device id, so two devices can never produce equal stamps. The register merge keeps the
larger stamp (see :mod:`sync.register`).

A plain wall clock is not enough: a phone's clock can be behind the clock of the tablet
the same archer used a minute ago, and its newer write would then lose. The hybrid clock
fixes that by *observing* every stamp the device sees (its own register as the relay
holds it, included): the next stamp it issues is always larger than anything observed.

A clock far *ahead* is the opposite danger: a write stamped tomorrow would beat every
honest write until tomorrow. :func:`check_skew` bounds how far ahead of the relay's own
clock a stamp may be; the relay refuses anything beyond it, and the refusal carries the
relay's time so the device can correct itself and stamp again.

Correcting must not forget too much. The relay has only ever accepted stamps within the
bound of its own clock, and its clock does not run backwards, so after a refusal at
``server_ms`` every stamp the relay may hold is at most ``server_ms + MAX_CLOCK_SKEW_MS``.
:meth:`HybridClock.correct` forgets exactly the stamps beyond that (they were never
accepted) and keeps the largest one within it, so the re-stamped write still beats
everything the device had seen, such as its tablet's write from a minute ago. The
clock keeps its last few stamps for this, the ones it observed *below* its own clock
included (the tablet's write may arrive after this device's clock ran ahead; forgetting
it was a bug the convergence property test found).

Everything here is pure: the current time is always passed in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from .errors import ClockSkewError

__all__ = ["MAX_CLOCK_SKEW_MS", "RECENT_STAMPS", "HybridClock", "Stamp", "check_skew"]

#: How far ahead of the relay's clock a write may be stamped (5 minutes). Phones keep
#: time by the network, so honest devices are well inside this; a device outside it is told
#: the relay's time and re-stamps.
MAX_CLOCK_SKEW_MS: Final = 5 * 60 * 1000

#: Longest device id accepted; ids are opaque strings chosen by the device.
MAX_DEVICE_ID_LENGTH: Final = 64

#: Stamps a clock remembers for :meth:`HybridClock.correct`. A device issues one per
#: write, so this is many ends of scoring with a wrong clock before a refusal arrives.
RECENT_STAMPS: Final = 32


@dataclass(frozen=True, order=True, slots=True)
class Stamp:
    """A hybrid logical timestamp; larger stamps win.

    Field order is comparison order.
    """

    wall_ms: int
    """Milliseconds since the Unix epoch, as the device's hybrid clock saw them."""
    counter: int
    """Orders stamps issued within one millisecond (or while the wall clock lagged)."""
    device_id: str
    """The issuing device; breaks ties so that no two devices ever issue equal stamps."""

    def to_wire(self) -> list[int | str]:
        """The stamp as a three-element CBOR/JSON array."""
        return [self.wall_ms, self.counter, self.device_id]


class HybridClock:
    """Issues increasing :class:`Stamp` values for one device.

    Not thread-safe; each device (or test replica) owns one.

    Args:
        device_id: This device's id, the tie-break in every stamp it issues.
        offset_ms: Added to the wall clock; set from the relay's time after a
            ``clock_skew`` refusal.
    """

    def __init__(self, device_id: str, *, offset_ms: int = 0) -> None:
        self.device_id = device_id
        self.offset_ms = offset_ms
        self._last = Stamp(0, 0, device_id)
        # The stamps issued or observed lately, newest last (not in order: a stamp observed
        # below `_last` is kept too), and the largest of those that fell out.
        self._recent: deque[Stamp] = deque()
        self._evicted: Stamp | None = None

    def _advance(self, stamp: Stamp) -> None:
        self._last = stamp
        self._remember(stamp)

    def _remember(self, stamp: Stamp) -> None:
        if len(self._recent) == RECENT_STAMPS:
            oldest = self._recent.popleft()
            self._evicted = oldest if self._evicted is None else max(self._evicted, oldest)
        self._recent.append(stamp)

    @property
    def last(self) -> Stamp:
        """The largest stamp issued or observed so far."""
        return self._last

    def now(self, wall_ms: int) -> Stamp:
        """Issue a stamp larger than every stamp issued or observed before.

        Args:
            wall_ms: The device's wall clock in milliseconds.
        """
        wall = wall_ms + self.offset_ms
        if wall > self._last.wall_ms:
            stamp = Stamp(wall, 0, self.device_id)
        else:
            stamp = Stamp(self._last.wall_ms, self._last.counter + 1, self.device_id)
        self._advance(stamp)
        return stamp

    def observe(self, seen: Stamp) -> None:
        """Move past a stamp seen from elsewhere, so the next one issued is larger."""
        own = Stamp(seen.wall_ms, seen.counter, self.device_id)
        if (seen.wall_ms, seen.counter) > (self._last.wall_ms, self._last.counter):
            self._advance(own)
        else:
            # Below the clock now, but a correction may forget everything above it: the
            # relay may hold this stamp, so the corrected clock must still beat it.
            self._remember(own)

    def correct(self, wall_ms: int, server_ms: int, max_skew_ms: int = MAX_CLOCK_SKEW_MS) -> None:
        """Adopt the relay's time after a ``clock_skew`` refusal.

        The offset makes future stamps follow the relay's clock. Stamps issued or observed
        beyond ``server_ms + max_skew_ms`` are forgotten: the relay never accepted them,
        and they were the problem. Every stamp within that bound is kept (the relay may
        hold it), so the next stamp is still larger than all of them.

        Args:
            wall_ms: The device's wall clock now.
            server_ms: The relay's clock, from the refusal.
            max_skew_ms: The relay's bound (:data:`MAX_CLOCK_SKEW_MS`).
        """
        self.offset_ms = server_ms - wall_ms
        bound = server_ms + max_skew_ms
        if self._last.wall_ms <= bound:
            return
        kept = [stamp for stamp in self._recent if stamp.wall_ms <= bound]
        if self._evicted is not None:
            if self._evicted.wall_ms <= bound:
                kept.append(self._evicted)
            else:
                # Stamps within the bound may have fallen out of memory: stay at the bound,
                # above anything the relay can hold (the relay still accepts it).
                kept.append(Stamp(bound, 0, self.device_id))
        self._last = max(kept, default=Stamp(0, 0, self.device_id))
        self._recent = deque(stamp for stamp in self._recent if stamp.wall_ms <= bound)


def check_skew(stamp: Stamp, server_ms: int, max_skew_ms: int = MAX_CLOCK_SKEW_MS) -> None:
    """Refuse a stamp too far ahead of the relay's clock.

    Raises:
        ClockSkewError: when ``stamp.wall_ms`` is more than ``max_skew_ms`` ahead of
            ``server_ms``. Stamps in the past are always fine: being late is what
            offline devices do, and the merge handles it.
    """
    if stamp.wall_ms > server_ms + max_skew_ms:
        ahead_s = (stamp.wall_ms - server_ms) / 1000
        raise ClockSkewError(
            f"This device's clock is {ahead_s:.0f} s ahead of the relay's; "
            "correct it and send the write again.",
            server_ms,
        )
