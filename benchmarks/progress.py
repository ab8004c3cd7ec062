"""A one-line progress bar on stderr (no dependency), redrawn in place."""

from __future__ import annotations

import sys
import time
from typing import TextIO

import trio

__all__ = ["Progress"]

WIDTH = 30


class Progress:
    """The whole run's progress: a step counter and, within a step, elapsed time."""

    def __init__(self, steps: int, stream: TextIO | None = None) -> None:
        self.steps = max(1, steps)
        self.done = 0
        self.label = ""
        self._stream = stream or sys.stderr
        self._started = time.monotonic()

    def step(self, label: str) -> None:
        """Start the next step (the previous one is complete)."""
        self.label = label
        self.draw()

    def finish_step(self) -> None:
        self.done = min(self.steps, self.done + 1)
        self.draw()

    def draw(self, fraction_of_step: float = 0.0) -> None:
        fraction = min(1.0, (self.done + max(0.0, min(1.0, fraction_of_step))) / self.steps)
        filled = int(fraction * WIDTH)
        elapsed = time.monotonic() - self._started
        line = (
            f"\r[{'#' * filled}{'.' * (WIDTH - filled)}] {fraction * 100:3.0f}% "
            f"{elapsed:5.0f}s  {self.label[:60]:<60}"
        )
        self._stream.write(line)
        self._stream.flush()

    async def tick_for(self, seconds: float) -> None:
        """Redraw a few times a second while a timed phase runs (run it in a nursery)."""
        started = time.monotonic()
        while True:
            self.draw((time.monotonic() - started) / max(seconds, 1e-9))
            await trio.sleep(0.25)

    def close(self) -> None:
        self.done = self.steps
        self.label = "done"
        self.draw()
        self._stream.write("\n")
        self._stream.flush()
