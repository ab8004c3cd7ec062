"""What every handler of the relay shares: settings, store, registry, metrics, throttle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from .auth import JoinThrottle
from .config import Settings
from .ended import EndedShoots
from .metrics import Metrics
from .registry import ShootRegistry
from .store import RedisStore

if TYPE_CHECKING:
    from .push.service import PushService

__all__ = ["RelayContext"]


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
