"""Counting a task's steps: how tests see that a task stayed asleep."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import trio

__all__ = ["StepsOf", "counting_steps"]


class StepsOf(trio.abc.Instrument):
    """Counts the steps of the tasks whose name ends with ``suffix`` (a task started with
    ``nursery.start_soon(obj.run)`` is named after the method's qualified name)."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.count = 0

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith(self.suffix):
            self.count += 1


@contextmanager
def counting_steps(suffix: str) -> Iterator[StepsOf]:
    """Count, while inside, the steps of the tasks named ``...suffix``."""
    steps = StepsOf(suffix)
    trio.lowlevel.add_instrument(steps)
    try:
        yield steps
    finally:
        trio.lowlevel.remove_instrument(steps)
