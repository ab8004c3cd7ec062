"""Callbacks that do not keep their object alive.

A live shoot's parts (its persister, its board's projector, the updates it holds back)
call the shoot back. Bound methods would make each part a reference cycle with the shoot,
and an unloaded shoot, document and all, would then wait for the collector's next walk of
the whole heap, which the relay makes rare (:mod:`relay.collector` freezes what survives
one). Through :func:`weakly`, the shoot is freed by reference counting the moment the
registry lets go of it. A callback made to be called once (the registry's ``on_close``,
which holds the registry's record of the shoot) is swapped for :func:`nothing` as it is
called, for the same reason.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import ParamSpec

__all__ = ["nothing", "weakly"]

_Args = ParamSpec("_Args")


def weakly(method: Callable[_Args, None]) -> Callable[_Args, None]:
    """``method`` (a bound method), called through a weak reference to its object: once
    the object is gone, a call does nothing."""
    ref = weakref.WeakMethod(method)

    def call(*args: _Args.args, **kwargs: _Args.kwargs) -> None:
        bound = ref()
        if bound is not None:
            bound(*args, **kwargs)

    return call


def nothing() -> None:
    """A callback that does nothing."""
