"""Display names unique within a shoot, across every relay that shares its Redis.

Two archers with one name would be indistinguishable on every leaderboard, so a join with
a name already in the shoot is refused (409 ``name_taken``). The shoot's document says
which names are in use, but reading it and admitting the archer are two steps, and two
joins (through two relays, or one) can both read before either admits. So each join also
claims its name in Redis, in one atomic step: ``shoot:{C}:<id>:names`` maps a normalised
name (:func:`name_key`) to ``"<archer id> <claimed ms>"``, and a claim is written only if
the hash still holds what the joiner saw there (compare and set,
:data:`relay.scripts.NAME_CLAIM`). Of two joins of one name at the same moment exactly
one wins, whichever relays they came through. The key carries the shoot's hash tag, so a
Redis Cluster runs the script on the shoot's node.

Theory of operation, for a join of name N:

1. The document: an archer in it who has not left and whose name is N holds N. This also
   covers archers who joined before claims existed (a relay upgraded mid-day).
2. The claim: if nobody claimed N, claim it. If someone did, the claim is *stale* when the
   document shows its archer left or renamed since (names are freed by the document, as
   they always were), or when it is older than :data:`CLAIM_GRACE_MS` and no archer
   record was ever stored for it (its join failed and its relay died before giving the
   claim back). A stale claim is replaced by compare and set, so two joins replacing one
   stale claim still admit one. Any other claim holds N: an archer who joined, or a join
   under way through another relay whose archer is not in this relay's view yet.
3. A join that fails after claiming gives its claim back (:func:`release_name`).
"""

from __future__ import annotations

import contextlib
import unicodedata
from dataclasses import dataclass
from typing import Final

import trio

from sync.models import Shoot

from .messages import ShootView
from .records import StoreUnavailable
from .store import RedisStore

__all__ = ["CLAIM_GRACE_MS", "NameClaim", "NameTaken", "claim_name", "name_key", "release_name"]

#: How long a claim without a stored archer record is taken for a join under way. A join
#: stores its record well within this (admission, then one Redis write), unless its relay
#: died; a longer wait only keeps a dead join's name blocked longer.
CLAIM_GRACE_MS: Final = 60_000
#: Compare-and-set attempts per join: each retry follows a claim found stale, and a claim
#: written meanwhile by another join is fresh, so two are enough; three leave room.
_ATTEMPTS: Final = 3


def name_key(name: str) -> str:
    """What makes two display names the same to a person: case, width and spacing aside."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


class NameTaken(Exception):
    """Someone in the shoot (or joining it right now) already has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name
        """The name as the archer holding it wrote it, when known, else as asked."""


@dataclass(frozen=True, slots=True)
class NameClaim:
    """A join's hold on a name in Redis."""

    key: str
    """The normalised name (:func:`name_key`)."""
    value: str
    """``"<archer id> <claimed ms>"``: who claimed it, and when."""


async def claim_name(
    store: RedisStore, view: ShootView, name: str, archer_id: str, now_ms: int
) -> NameClaim:
    """Claim ``name`` for a joining archer, or refuse it (steps 1 and 2 above).

    Args:
        view: The shoot as this relay sees it now (its document's registers).

    Raises:
        NameTaken: an archer in the shoot, or a join under way, holds the name.
        StoreUnavailable: Redis could not be asked; nothing was claimed.
    """
    wanted = name_key(name)
    for register in view.registers.values():
        if not register.state.left and name_key(register.state.name) == wanted:
            raise NameTaken(register.state.name)
    claim = NameClaim(wanted, f"{archer_id} {now_ms}")
    shoot, seen = view.shoot, None
    for _ in range(_ATTEMPTS):
        claimed, held = await store.call(store.claim_name, shoot, wanted, claim.value, seen)
        if claimed:
            return claim
        if held is not None and not await _stale(store, view, wanted, held, now_ms):
            raise NameTaken(name)
        seen = held
    raise NameTaken(name)


async def _stale(store: RedisStore, view: ShootView, wanted: str, held: str, now_ms: int) -> bool:
    """Whether a claim no longer holds its name (step 2 above)."""
    holder, _, claimed_ms = held.partition(" ")
    register = view.registers.get(holder)
    if register is not None:  # the archer is in the document: it alone says
        return register.state.left or name_key(register.state.name) != wanted
    if now_ms - (int(claimed_ms) if claimed_ms.isdigit() else 0) < CLAIM_GRACE_MS:
        return False  # a join under way (maybe through another relay)
    return await store.call(store.get_archer, view.shoot, holder) is None


async def release_name(store: RedisStore, shoot: Shoot, claim: NameClaim) -> None:
    """Give back the claim of a join that failed, best effort and briefly (also while
    the join is being cancelled): a claim left behind frees itself after
    :data:`CLAIM_GRACE_MS`, as no archer record was stored for it."""
    shielded = trio.CancelScope(shield=True)
    with shielded, trio.move_on_after(1), contextlib.suppress(StoreUnavailable):
        await store.call(store.release_name, shoot, claim.key, claim.value)
