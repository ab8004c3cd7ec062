"""What every handler of the relay shares: settings, store, registry, metrics, throttle."""

from __future__ import annotations

from dataclasses import dataclass, field

from .auth import JoinThrottle
from .config import Settings
from .metrics import Metrics
from .registry import ShootRegistry
from .store import RedisStore

__all__ = ["RelayContext"]


@dataclass(slots=True)
class RelayContext:
    settings: Settings
    store: RedisStore
    registry: ShootRegistry
    metrics: Metrics
    throttle: JoinThrottle = field(default_factory=JoinThrottle)
    closing: bool = False
    redis_ok: bool = True
