"""The one wall-clock reading in the project.

Everything else in :mod:`sync` is pure and takes the time as an argument; the drivers
(the relay's actor, HTTP handlers and sessions, the SDK) read the clock here and pass it
in, and tests pass their own.
"""

from __future__ import annotations

import time

__all__ = ["system_wall_ms"]


def system_wall_ms() -> int:
    """This machine's wall clock in milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000
