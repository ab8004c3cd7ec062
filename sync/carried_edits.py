"""The visible-loser rule of a client session: no edit of this device's is dropped
silently.

:class:`~sync.client_session.ClientSession` reports an edit of this device's that another
device's newer state replaced without including it (:class:`~sync.client_actions.Replaced`).
Three ways lead there: the relay answers ``superseded`` and the pending write is dropped;
a new local write replaces a pending one that a newer state had already beaten; an
acknowledged write is later replaced by another device's state that does not contain it.
"Contains" is judged by content (:func:`~sync.client_actions.includes`): the same round
with this device's arrows as the first ones, so another device's undo of this device's
arrow is reported too.

:class:`CarriedEdits` is the memory this needs across answers and connections: per
archer, this device's last edit while it is still carried by what the relay holds, and
the newest write already reported acknowledged. It decides and keeps; the session acts
(it owns the outbox and the clock a rewrite needs).
"""

from __future__ import annotations

from dataclasses import dataclass

from .client_actions import Replaced, includes
from .clock import Stamp
from .register import Register

__all__ = ["CarriedEdits", "Rewrite", "replaced"]


def replaced(lost: Register, winner: Register, *, acknowledged: bool = False) -> list[Replaced]:
    """The report that ``winner`` replaced ``lost``, unless it holds what ``lost`` wrote."""
    if lost == winner or includes(winner, lost):
        return []
    return [Replaced(lost, winner, acknowledged)]


@dataclass(frozen=True, slots=True)
class Rewrite:
    """Write ``newest`` (this device's last edit) again, stamped above every stamp seen:
    an older edit of this device's won over it (see :meth:`CarriedEdits.stale_own`)."""

    newest: Register


class CarriedEdits:
    """Per archer, this device's last edit still carried, and the newest write reported
    acknowledged.

    Args:
        device_id: This device's id: an edit is this device's when its stamp names it.
    """

    def __init__(self, device_id: str) -> None:
        self._device_id = device_id
        self._carried: dict[str, Register] = {}
        """Per archer, this device's last edit while no other device's state that does not
        hold it has replaced it (then it is reported, once)."""
        self._acked: dict[str, Stamp] = {}
        """Per archer, the stamp of the newest write reported ``Acked``: each write is
        reported once, in stamp order, however many copies of it the relay answered."""

    def remember(self, edit: Register) -> None:
        """``edit`` is this device's last edit of its archer."""
        self._carried[edit.archer_id] = edit

    def forget(self, archer_id: str) -> None:
        """The archer's last edit was reported replaced: nothing of it is carried now."""
        self._carried.pop(archer_id, None)

    def clear(self) -> None:
        """The outbox now belongs to another shoot: nothing of the old one is carried."""
        self._carried.clear()
        self._acked.clear()

    def first_ack(self, register: Register) -> bool:
        """Record that ``register`` is acknowledged; whether it is newer than every write
        of its archer reported before (a resent copy's second ack is not)."""
        last = self._acked.get(register.archer_id)
        if last is not None and register.stamp <= last:
            return False
        self._acked[register.archer_id] = register.stamp
        return True

    def seen(self, value: Register, *, pending: bool) -> Replaced | Rewrite | None:
        """``value`` is now the archer's state at the relay: whether it still holds this
        device's last edit (acknowledged, or held by an earlier winner). If not, the edit
        is reported, once; if ``value`` is an older edit of this device's that won, the
        last one is to be written again. A pending write is answered on its own."""
        carried = self._carried.get(value.archer_id)
        if carried is None or pending:
            return None
        if self.mine(value):
            return Rewrite(carried) if self.stale_own(value, carried) else None
        if carried.key() >= value.key() or includes(value, carried):
            return None
        del self._carried[value.archer_id]
        return Replaced(carried, value, acknowledged=True)

    def mine(self, register: Register) -> bool:
        return register.stamp.device_id == self._device_id

    def stale_own(self, winner: Register, newest: Register) -> bool:
        """Whether ``winner``, this device's, is an older edit than ``newest`` (its last)
        that won all the same: stamped before a ``clock_skew`` correction and carried
        late (a forwarded write, a resent copy), it beats every stamp the corrected clock
        issued since (the convergence test found it rolling back an acknowledged end)."""
        return self.mine(winner) and winner.state != newest.state and winner.key() > newest.key()
