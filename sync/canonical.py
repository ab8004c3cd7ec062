"""The canonical bytes of an archer's state: the register's deterministic tie-break.

Theory of operation
-------------------
Two writes with equal stamps should never exist (the device id is in the stamp), but a
buggy device that reuses a stamp for a different state must still not make two replicas
disagree. So the merge order is ``(stamp, canonical bytes of the state)``: the state's
wire map (the ``state`` of a ``write`` frame) encoded as RFC 8949 core deterministic
CBOR (section 4.2.1: shortest integer and length heads, definite lengths, map keys sorted
by the bytes of their encoding), compared bytewise.

Any client can reproduce this without our code: the browser's
``clients/web/src/protocol/canonical.ts`` implements the same encoding and is checked
against this module on shared fixtures. ``repr`` (the old tie-break) could not be
reproduced outside Python.
"""

from __future__ import annotations

from typing import Any

import cbor2

from .models import ArcherState

__all__ = ["canonical_state", "state_to_wire"]


def state_to_wire(state: ArcherState) -> dict[str, Any]:
    """The state as the plain map that ``write`` and ``superseded`` carry."""
    return {
        "name": state.name,
        "round": state.round,
        "profile": {
            "bowstyle": state.profile.bowstyle,
            "age_group": state.profile.age_group,
            "gender": state.profile.gender,
        },
        "arrows": list(state.arrows),
        "finished": state.finished,
        "left": state.left,
    }


def canonical_state(state: ArcherState) -> bytes:
    """The state's core deterministic CBOR encoding (every key here is a short text
    string, so cbor2's canonical order, length first, is RFC 8949's bytewise order)."""
    return cbor2.dumps(state_to_wire(state), canonical=True)
