"""Token buckets: the write rate limit per connection and the join throttle per address.

Pure: the caller passes the time in, so the relay uses Trio's clock and the tests use
whatever time they like.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "JOIN_FAILURES_BURST",
    "JOIN_FAILURES_PER_S",
    "WRITES_BURST",
    "WRITES_PER_S",
    "TokenBucket",
]

#: Writes a connection may send at once, then per second. An archer writes once per
#: arrow; 10/s is far above any human, far below a flood.
WRITES_BURST: Final = 20
WRITES_PER_S: Final = 10.0

#: Failed joins (wrong code, wrong token) an address may make at once, then per second:
#: guessing among 9,000 codes at one every two seconds takes hours.
JOIN_FAILURES_BURST: Final = 10
JOIN_FAILURES_PER_S: Final = 0.5


@dataclass(slots=True)
class TokenBucket:
    """Allows ``burst`` events at once and ``rate`` per second after that."""

    burst: float
    rate: float
    tokens: float = -1.0
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now

    def try_take(self, now: float) -> bool:
        """Take a token if there is one; ``False`` means over the limit."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def would_allow(self, now: float) -> bool:
        """Whether a token is available, without taking it."""
        self._refill(now)
        return self.tokens >= 1.0

    def retry_after(self, now: float) -> float:
        """Seconds until the next token."""
        self._refill(now)
        return max(0.0, (1.0 - self.tokens) / self.rate)
