"""Fills a shoot's projection tables on a worker thread, so no write waits for archeryutils.

The actor projects every write from tables only (:func:`sync.classification.peek_projection`);
what the tables lack comes back as a :class:`~sync.classification.Need`, and the
write goes out at once without it: the board shows the archer without a projection, and
the document keeps the archer's previous derived values. The actor hands the need to its
:class:`Projector`, a companion task that fills the tables on a worker thread (a root find
or a classification table: milliseconds of numpy) and then calls the actor back on the
event loop, which writes the derived values and redoes the archer's line (see
:meth:`relay.owned_shoot.OwnedShoot.projected`). Needs that arrive meanwhile are batched
into the next fill.

Like the persister, it calls back into the actor between messages (the actor handles each
message without a checkpoint, so the callback never interleaves with one), and never after
the actor has stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import trio

from sync.classification import Need, fill, warm
from sync.models import ArcherState

__all__ = ["Projector"]


class Projector:
    """One shoot's projection filler.

    Args:
        on_filled: Called on the event loop after each batch is in the tables.
    """

    def __init__(self, on_filled: Callable[[], None]) -> None:
        self._on_filled = on_filled
        self._needs: set[Need] = set()
        self._warm: set[ArcherState] = set()
        self._wakeup = trio.Event()
        self._batch_done = trio.Event()
        self._busy = False

    @property
    def pending(self) -> bool:
        """Whether a fill is waiting or running (then the board may lack projections)."""
        return self._busy or bool(self._needs or self._warm)

    def request(self, needs: Iterable[Need]) -> None:
        """Fill these needs soon (no-op for an empty iterable)."""
        for need in needs:
            self._needs.add(need)
            self._wakeup.set()

    def warm(self, state: ArcherState) -> None:
        """Build the tables an archer in this (valid) state will need, before they need them."""
        self._warm.add(state)
        self._wakeup.set()

    async def run(self) -> None:
        """Fill batches until cancelled."""
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            needs, self._needs = self._needs, set()
            states, self._warm = self._warm, set()
            self._busy = True
            try:
                await trio.to_thread.run_sync(_fill, needs, states)
            finally:
                self._busy = False
            self._on_filled()
            self._batch_done.set()
            self._batch_done = trio.Event()

    async def wait_idle(self) -> None:
        """Wait until nothing is waiting to be filled (what the last batch asked for
        again included)."""
        while self.pending:
            await self._batch_done.wait()


def _fill(needs: set[Need], states: set[ArcherState]) -> None:
    """On a worker thread: put every answer the needs and states call for in the tables."""
    for state in states:
        warm(state)
    for need in needs:
        fill(need)
