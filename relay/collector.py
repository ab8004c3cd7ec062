"""Short garbage-collector pauses for a relay holding thousands of connections.

Theory of operation
-------------------
CPython's full collection walks every container object it tracks. With 10,000 sessions on
the heap that is about a million objects: 0.35-1 s of CPU with the event loop stopped, for
every shoot on the relay at once, and one comes each time the heap has grown by a quarter,
which is exactly when connections are arriving (``benchmarks/README.md``).

:class:`Collector` hooks the collector (``gc.callbacks``) and freezes the heap when a full
collection ends (``gc.freeze``): what survived it is out of sight of the next one, which
walks only what survived since. Full collections become more frequent and small: one per
:data:`FULL_EVERY` middle collections, 140 ms at the most at 10,000 connections where
one walk of everything took 340-470 ms, measured on the same machine.

It freezes the heap when a middle collection ends too: what survived one is what the next
full collection would walk, and while 10,000 connections came in, that was 124-243 ms a
time. Frozen at once, nothing is walked twice. In the many-shoots benchmark (1,000 shoots
x 10 clients, five alternated pairs) the p99 went from 12-168 ms to 5-8 ms and the
longest stall from 107-352 ms to 23-45 ms.

The price: a frozen object that later becomes garbage *in a reference cycle* is not freed
while it is frozen (garbage freed by reference counting goes as always). What ends after
living a while must therefore leave no cycles, and the relay's sessions and shoots leave
none: a closed session's socket lets go of its subscriber and closes wsproto's parser
(:meth:`relay.wssocket.OwnedSocket.release`), and an unloaded shoot's parts call it back
through weak references (:mod:`relay.callbacks`); ``tests/test_collector.py`` checks both,
and the benchmark's churn run (``benchmarks/churn.py``) counts the frozen objects over
16,000 sessions: flat, where wsproto's parsers had added 8.7 per session. Code to come
might leave some, and ``/metrics`` shows the frozen count (``fastshoot_gc_frozen_objects``)
for an operator to see it grow: every :data:`THAW_EVERY` full collections the collector
thaws the heap (``gc.unfreeze``), and the next full collection walks all of it, frees
what is waiting and freezes the rest. That long walk comes once per a hundred short ones
(a quarter of an hour apart with 10,000 connections busy), not with every quarter the
heap grows.

The heap's long-lived part (the round catalogues, the handicap tables) is frozen at start
(:func:`relay.server.run` installs the collector there).
"""

from __future__ import annotations

import gc
from typing import Any, Final

__all__ = ["FULL_EVERY", "THAW_EVERY", "Collector"]

#: A full collection once per this many middle-generation ones. CPython's default, 10,
#: made the pauses shorter still (50-75 ms) but cost a restarted relay taking back 5,000
#: sessions about 0.4 s more of its CPU (nine walks of what it took back, against one
#: before); 30 costs it about 0.2 s (three walks).
FULL_EVERY: Final = 30
#: Full collections between two that walk the whole heap.
THAW_EVERY: Final = 100


class Collector:
    """Freezes the heap after each middle and full collection, and thaws it every
    ``thaw_every`` full ones.

    Install it once, in the process that serves: the collector is the process's.
    """

    def __init__(self, thaw_every: int = THAW_EVERY) -> None:
        if thaw_every < 1:
            raise ValueError("thaw_every must be at least 1")
        self._thaw_every = thaw_every
        self._since_thaw = 0
        self._thawed = False
        """Thawed, and the full collection that walks everything has not come yet."""
        self.full_collections = 0
        self.thaws = 0

    def install(self) -> None:
        """Hook the collector, with a full collection every :data:`FULL_EVERY` middle ones."""
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_EVERY)
        gc.callbacks.append(self._on_collection)

    def uninstall(self) -> None:
        """Unhook it and give the collector back everything frozen."""
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
        gc.unfreeze()

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop":
            return
        generation = info["generation"]
        if generation == 1:
            if not self._thawed:  # else the walk of everything would find it frozen again
                gc.freeze()  # what survived this one is out of the full ones' sight
            return
        if generation != 2:
            return
        self.full_collections += 1
        self._since_thaw += 1
        if self._since_thaw < self._thaw_every:
            self._thawed = False
            gc.freeze()  # what survived this one is out of the next one's sight
            return
        # The next full collection walks everything, frozen cycles included; it freezes
        # what is left, and the count starts again.
        self._since_thaw = 0
        self.thaws += 1
        self._thawed = True
        gc.unfreeze()
