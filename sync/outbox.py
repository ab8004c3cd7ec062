"""A device's pending writes and last-seen registers: the outbox's rules, without the file.

Theory of operation
-------------------
A write is the archer's whole state, so only the newest pending write per register
matters: a newer one replaces the older (by the register merge), and resending it is
harmless. A write leaves the outbox only when an ``ack`` names the same stamp, or when a
winner at least as new is adopted (``superseded``), or when the relay refuses it for a
rule it breaks.

The outbox also remembers, per register, the newest value this device has *seen* (its own
writes once acked, the relay's copy, a superseding winner) and the largest stamp the
device's clock has issued or observed. A device that restarts offline therefore builds
its next write on the right state and never issues a smaller stamp than before.

This is the part :class:`sync.client_session.ClientSession` decides with; keeping it on
disk is the driver's job (the Python SDK's ``clients._outbox``, the browser's IndexedDB).
"""

from __future__ import annotations

from .clock import Stamp
from .register import Register, merge

__all__ = ["OutboxState"]


class OutboxState:
    """Pending writes, the registers last seen, and the clock's high-water mark."""

    def __init__(self) -> None:
        self._pending: dict[str, Register] = {}
        self._seen: dict[str, Register] = {}
        self.clock: Stamp | None = None
        """The largest stamp the device's clock had issued or observed when last saved."""
        self.shoot_id: str | None = None
        """The shoot these writes belong to (a code is reused on other days)."""

    # -- reading -------------------------------------------------------------------------

    def pending(self) -> list[Register]:
        """The pending writes, oldest stamp first (the order to resend them in)."""
        return sorted(self._pending.values(), key=lambda r: r.key())

    def get(self, archer_id: str) -> Register | None:
        return self._pending.get(archer_id)

    def seen(self, archer_id: str) -> Register | None:
        return self._seen.get(archer_id)

    def seen_all(self) -> list[Register]:
        return list(self._seen.values())

    def __len__(self) -> int:
        return len(self._pending)

    # -- changing (each returns whether the caller should save) ---------------------------

    def put(self, register: Register) -> bool:
        """Queue a write; it replaces an older pending write for the same register."""
        current = self._pending.get(register.archer_id)
        if merge(current, register) is current:
            return False
        self._pending[register.archer_id] = register
        return True

    def replace(self, register: Register) -> bool:
        """Swap the pending write for a re-stamped one (after ``clock_skew``)."""
        self._pending[register.archer_id] = register
        return True

    def acknowledge(self, archer_id: str, stamp: Stamp) -> Register | None:
        """Drop the pending write if it has this stamp; it is durable on the relay.

        Returns:
            The write that was dropped, if the stamp matched.
        """
        current = self._pending.get(archer_id)
        if current is None or current.stamp != stamp:
            return None
        del self._pending[archer_id]
        self._seen_merge(current)
        return current

    def discard(self, archer_id: str, stamp: Stamp) -> bool:
        """Drop the pending write with this stamp (the relay refused it)."""
        current = self._pending.get(archer_id)
        if current is None or current.stamp != stamp:
            return False
        del self._pending[archer_id]
        return True

    def adopt(self, winner: Register) -> Register | None:
        """Record a winner; drop the pending write if the winner is at least as new.

        Returns:
            The pending write that was dropped, if any.
        """
        self._seen_merge(winner)
        current = self._pending.get(winner.archer_id)
        if current is not None and winner.key() >= current.key():
            del self._pending[winner.archer_id]
            return current
        return None

    def reset_seen(self, archer_id: str, register: Register | None) -> None:
        """Forget what was seen of ``archer_id`` beyond ``register``: after a reset the
        relay's full state is the truth, and a value seen before may be one the crashed
        relay lost (its writer still has it pending, and sends it again)."""
        if register is None:
            self._seen.pop(archer_id, None)
        else:
            self._seen[archer_id] = register

    def clear(self) -> None:
        """Forget every write and every value seen (the code now names another shoot).
        The clock's high-water mark stays: stamps never go back."""
        self._pending.clear()
        self._seen.clear()

    def see(self, register: Register) -> bool:
        """Remember a register value seen from the relay; True if it was news."""
        return self._seen_merge(register)

    def _seen_merge(self, register: Register) -> bool:
        current = self._seen.get(register.archer_id)
        if merge(current, register) is current:
            return False
        self._seen[register.archer_id] = register
        return True
