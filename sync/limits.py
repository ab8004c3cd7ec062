"""The relay's limits: write rates, join throttling, and how big a shoot may grow.

Pure: the caller passes the time in (so the relay uses Trio's clock and the tests use
whatever time they like), and the document's size is measured by a function it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "HELLO_TIMEOUT_S",
    "JOIN_FAILURES_BURST",
    "JOIN_FAILURES_PER_S",
    "MAX_ARCHERS_PER_SHOOT",
    "MAX_DOCUMENT_BYTES",
    "MAX_WRITE_UPDATE_BYTES",
    "WRITES_BURST",
    "WRITES_PER_S",
    "SizeBudget",
    "TokenBucket",
]

#: Seconds a new connection has to send its ``hello`` (the session machine's rule,
#: :mod:`sync.relay_session`; here so that the relay's settings name it without loading
#: the machine and the codec behind it).
HELLO_TIMEOUT_S: Final = 10.0

#: Writes a connection may send at once, then per second. An archer writes once per
#: arrow; 10/s is far above any human, far below a flood.
WRITES_BURST: Final = 20
WRITES_PER_S: Final = 10.0

#: Failed joins (wrong code, wrong token) an address may make at once, then per second:
#: guessing among 9,000 codes at one every two seconds takes hours.
JOIN_FAILURES_BURST: Final = 10
JOIN_FAILURES_PER_S: Final = 0.5

#: Archers who may join one shoot. A club shoot has a few dozen; every write rebuilds the
#: shoot's leaderboard, so this also bounds what one write costs.
MAX_ARCHERS_PER_SHOOT: Final = 200
#: Largest encoded Yjs document of a shoot. 200 archers who each shot a York (144 arrows,
#: the longest round) end by end come to under 0.3 MiB, 300 arrows each to about 0.5 MiB;
#: the cap keeps every welcome (the whole document, for a new replica) at a quarter of the
#: 8 MiB a client accepts in one frame, whatever a shoot's history.
MAX_DOCUMENT_BYTES: Final = 2 * 1024 * 1024
#: More than the Yjs update of any one write can be (a whole register at the structural
#: limits, every field changed, is under 3 KiB): a write is refused when the document is
#: within this of its cap, so no write ever takes it over.
MAX_WRITE_UPDATE_BYTES: Final = 16 * 1024


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


@dataclass(slots=True)
class SizeBudget:
    """Keeps a document under ``cap`` bytes without measuring it on every write.

    Measuring means encoding the whole document (milliseconds for a big shoot), so the
    budget keeps an estimate, the last measured size plus the bytes of every update since,
    and measures only when the estimate comes within ``need`` of the cap. A measurement
    stays valid until the document grows again, so a shoot at its cap is not re-measured
    for every refused write.
    """

    cap: int
    estimate: int
    """The size at the last measurement plus the updates since."""
    measured: bool = True
    """Whether :attr:`estimate` is exact (nothing was added since it was measured)."""

    def grew(self, update_bytes: int) -> None:
        self.estimate += update_bytes
        self.measured = False

    def has_room(self, need: int, measure: Callable[[], int]) -> bool:
        """Whether ``need`` more bytes keep the document within the cap."""
        if self.estimate + need <= self.cap:
            return True
        if not self.measured:
            self.estimate, self.measured = measure(), True
        return self.estimate + need <= self.cap
