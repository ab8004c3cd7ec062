"""What every handler of the relay shares: settings, store, registry, metrics, throttle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import trio

from .auth import JoinThrottle
from .config import Settings
from .ended import EndedShoots
from .metrics import Metrics
from .registry import ShootRegistry
from .store import RedisStore

if TYPE_CHECKING:
    from .push.service import PushService

__all__ = ["HELLOS_AT_ONCE", "RelayContext"]

#: Hellos the relay answers at once; the others wait their turn, first come first served.
#: After a restart thousands of clients say hello within a second. Answered all at once,
#: trio's fair scheduling moves every one a step at a time, so each welcome waits for
#: nearly all the others and clients that give up on a slow welcome retry into the same
#: queue; answered a bounded number at a time, they finish in the order they came, and
#: the first are back in sync at once. Large enough to keep many shoots loading from
#: Redis in parallel.
HELLOS_AT_ONCE: Final = 64


@dataclass(slots=True)
class RelayContext:
    settings: Settings
    store: RedisStore
    registry: ShootRegistry
    metrics: Metrics
    throttle: JoinThrottle = field(default_factory=JoinThrottle)
    ended: EndedShoots = field(init=False)
    """Final results of shoots whose day is over (read only)."""
    push: PushService | None = None
    """Web Push (subscriptions, keys, the sender); ``None`` where it is not set up."""
    closing: bool = False
    no_sessions: trio.Event = field(default_factory=trio.Event)
    """Set while no WebSocket session is open; shutdown waits on it."""
    hellos: trio.Semaphore = field(default_factory=lambda: trio.Semaphore(HELLOS_AT_ONCE))
    """Hellos being answered at once (see :data:`HELLOS_AT_ONCE`)."""

    def __post_init__(self) -> None:
        self.ended = EndedShoots(self.store)
        self.no_sessions.set()

    def session_opened(self) -> None:
        self.metrics.connections += 1
        if self.no_sessions.is_set():
            self.no_sessions = trio.Event()

    def session_closed(self) -> None:
        self.metrics.connections -= 1
        if self.metrics.connections == 0:
            self.no_sessions.set()
