"""The visible loser: a write of this device's that a newer one from another device beat.

The merge keeps the newest state of an archer's register, so when two devices scored
different ends offline, the older state is replaced. That is the rule, but the archer
must see it: the SDK reports it (:class:`~clients.WriteSuperseded`), the CLI says which
ends were replaced, in words, and keeps the replaced state in its state folder beside
the outbox, so ``fast-shoot restore`` can write it again as a new (newest) write.
"""

from __future__ import annotations

import json
from pathlib import Path

from sync.codec import register_from_wire, register_to_wire
from sync.errors import ProtocolError
from sync.models import ArcherState
from sync.register import Register
from sync.rounds import get_round

from ._errors import ShootError
from ._identity import Identity
from ._outbox import write_atomically

__all__ = ["describe_replaced", "load_replaced", "replaced_path", "save_replaced"]


def replaced_path(home: Path, identity: Identity) -> Path:
    return home / f"replaced-{identity.code}-{identity.archer_id}.json"


def _ends(state: ArcherState) -> list[tuple[object, ...]]:
    size = get_round(state.round).end_size
    return [tuple(state.arrows[i : i + size]) for i in range(0, len(state.arrows), size)]


def describe_replaced(lost: ArcherState, winner: ArcherState) -> list[str]:
    """One sentence per end of ``lost`` that ``winner`` does not have as it was.

    A replaced state with no such end (a finish, a round change) gets one sentence too.
    """
    theirs = _ends(winner) if winner.round == lost.round else []
    lines = []
    for number, end in enumerate(_ends(lost), start=1):
        if number <= len(theirs) and theirs[number - 1] == end:
            continue
        arrows = " ".join(str(a) for a in end)
        lines.append(
            f"Your end {number} ({arrows}) from this device was replaced by a newer write "
            "from another device."
        )
    if not lines:
        lines.append("A change from this device was replaced by a newer write from another device.")
    lines.append("Run `fast-shoot restore` to write this device's version again.")
    return lines


def save_replaced(path: Path, lost: Register) -> None:
    """Keep ``lost`` (blocking; call from a worker thread). A later loss replaces an earlier
    one only if it is newer: the newest replaced state is the one to restore."""
    kept = load_replaced(path)
    if kept is not None and kept.key() >= lost.key():
        return
    write_atomically(path, json.dumps(register_to_wire(lost)).encode("utf-8"))


def load_replaced(path: Path) -> Register | None:
    """The replaced write kept in ``path``, or None when there is none."""
    try:
        return register_from_wire(json.loads(path.read_text("utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, ProtocolError) as exc:
        raise ShootError(
            "replaced_corrupt", f"The replaced-write file {path} cannot be read ({exc})."
        ) from exc
