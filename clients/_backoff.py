"""Reconnect delays: exponential backoff with full jitter, as a standalone helper.

The clients' own reconnect rule lives in the session machine (:mod:`sync.reconnect`);
this class draws delays by the same ceiling for callers that want one outside a session.

After a relay restart every client reconnects at once; full jitter (a delay drawn
uniformly between zero and the exponential cap) spreads them out, so the relay sees a
ramp instead of a wall (see the AWS architecture blog's "Exponential Backoff And Jitter").
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from sync.reconnect import full_jitter_ceiling

__all__ = ["Backoff"]


@dataclass(slots=True)
class Backoff:
    """Draws delays ``uniform(0, min(cap, base * 2**attempt))`` and remembers them.

    Args:
        base_s: The cap of the first delay.
        cap_s: The largest any delay can be.
        rng: The random source (inject a seeded one in tests).
    """

    base_s: float = 0.5
    cap_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    history: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    """The most recent delays drawn, newest last."""

    def delay(self, attempt: int) -> float:
        ceiling = full_jitter_ceiling(attempt, self.base_s, self.cap_s)
        delay = self.rng.uniform(0, ceiling)
        self.history.append(delay)
        return delay
