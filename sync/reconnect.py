"""When a client dials the relay again: the reconnect rule, shared by every client.

Theory of operation
-------------------
After a relay restart every client reconnects at once; full jitter (a delay drawn
uniformly between zero and an exponential ceiling) spreads them out, so the relay sees a
ramp instead of a wall (the AWS architecture blog's "Exponential Backoff And Jitter").

* The ceiling of the ``n``-th failed attempt since the last ``welcome`` is
  ``min(cap, base * 2**n)``: with the defaults (0.5 s, 30 s) the first retry after a
  welcomed connection drops comes within half a second, later ones back off up to 30 s.
* A ``welcome`` resets the count: a relay that answered is worth retrying soon.
* The network coming back (the browser's ``online`` event) resets the count and dials at
  once: waiting out a long backoff would only keep an archer's scores on the phone.

The rule takes its time and its randomness as arguments (``now``, and ``jitter`` drawn
uniformly from ``[0, 1)`` by the driver), so a test or a recorded transcript replays it
exactly. :class:`sync.client_session.ClientSession` owns one; its drivers only sleep until
the time it names and dial.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReconnectRule", "full_jitter_ceiling"]

#: Exponents beyond this change nothing once the cap is reached (and never overflow).
_MAX_EXPONENT = 32


def full_jitter_ceiling(attempt: int, base_s: float, cap_s: float) -> float:
    """The largest delay of attempt number ``attempt`` (0 for the first)."""
    exponent = min(max(attempt, 0), _MAX_EXPONENT)
    return min(cap_s, base_s * 2.0**exponent)


@dataclass(slots=True)
class ReconnectRule:
    """Counts the attempts since the last welcome and says when to dial next.

    Args:
        base_s: The ceiling of the first delay.
        cap_s: The largest any delay can be.
    """

    base_s: float = 0.5
    cap_s: float = 30.0
    attempt: int = 0
    """Connections that ended since the last ``welcome`` (or ``online``)."""

    def dropped(self, now: float, jitter: float) -> float:
        """A connection (or an attempt at one) ended at ``now``: when to dial again.

        ``jitter`` is uniform in ``[0, 1)``; a value outside is clamped, so a driver's
        bad random source cannot make a client dial in the past or wait for ever.
        """
        ceiling = full_jitter_ceiling(self.attempt, self.base_s, self.cap_s)
        self.attempt += 1
        return now + min(max(jitter, 0.0), 1.0) * ceiling

    def welcomed(self) -> None:
        """The relay answered ``hello``: the next drop starts the schedule afresh."""
        self.attempt = 0

    def online(self, now: float) -> float:
        """The network is back: start afresh, and dial now."""
        self.attempt = 0
        return now
