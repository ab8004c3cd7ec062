"""The load worker does not measure its own garbage collector (``benchmarks.load``).

A collection in a worker holding thousands of connections stops it for tens to hundreds
of milliseconds, and every message that arrives meanwhile is stamped late: the server
would be blamed for the worker's pause.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from benchmarks.load import no_collections


class _Node:
    """A container the collector tracks."""


@pytest.fixture
def collector_as_it_was() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        gc.unfreeze()
        if not enabled:
            gc.disable()


@pytest.mark.usefixtures("collector_as_it_was")
def test_a_measurement_window_has_no_collections_and_the_connections_are_out_of_sight() -> None:
    connections = [_Node() for _ in range(1_000)]  # what the worker opened before
    with no_collections():
        assert not gc.isenabled()
        walked = {id(o) for o in gc.get_objects()}
        assert not any(id(node) in walked for node in connections)
        cycle = _Node()
        cycle.me = cycle  # type: ignore[attr-defined]
        alive = weakref.ref(cycle)
        del cycle
        assert alive() is not None  # garbage, but only a collection frees a cycle
    assert gc.isenabled()
    assert alive() is None, "what the window left was not collected after it"
