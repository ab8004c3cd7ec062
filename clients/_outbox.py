"""The durable outbox: writes not yet acknowledged by the relay, kept across restarts.

Theory of operation
-------------------
A write is the archer's whole state, so only the newest pending write per register
matters: a newer one replaces the older (by the register merge), and resending it is
harmless. A write leaves the outbox only when an ``ack`` names the same stamp, or when a
winner at least as new is adopted (``superseded``), or when the relay refuses it for a
rule it breaks.

The file also remembers, per register, the newest value this device has *seen* (its own
writes once acked, the relay's copy, a superseding winner) and the largest stamp the
device's clock has issued or observed. A device that restarts offline therefore builds
its next write on the right state and never issues a smaller stamp than before.

Durability: every change rewrites the file atomically (a temporary file in the same
folder, flushed and fsynced, then ``os.replace``, then the folder fsynced), so a crash
leaves either the old or the new file, never a torn one. A file that cannot be parsed is
an error, not an empty outbox: losing scores silently is the one thing it must not do.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Final

from sync.clock import Stamp
from sync.codec import register_from_wire, register_to_wire
from sync.errors import ProtocolError
from sync.register import Register, merge

from ._errors import ShootError

__all__ = ["Outbox", "write_atomically"]

_VERSION: Final = 1


class Outbox:
    """Pending writes and last-seen registers, optionally backed by a file.

    Args:
        path: Where to keep it; ``None`` keeps it in memory only (lost on exit).

    Raises:
        ShootError: ``outbox_corrupt`` when the file exists but cannot be read.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._pending: dict[str, Register] = {}
        self._seen: dict[str, Register] = {}
        self.clock: Stamp | None = None
        if path is not None and path.exists():
            self._load(path)

    # -- reading -------------------------------------------------------------------------

    def pending(self) -> list[Register]:
        """The pending writes, oldest stamp first (the order to resend them in)."""
        return sorted(self._pending.values(), key=lambda r: r.key())

    def get(self, archer_id: str) -> Register | None:
        return self._pending.get(archer_id)

    def seen(self, archer_id: str) -> Register | None:
        return self._seen.get(archer_id)

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

    def see(self, register: Register) -> bool:
        """Remember a register value seen from the relay; True if it was news."""
        return self._seen_merge(register)

    def _seen_merge(self, register: Register) -> bool:
        current = self._seen.get(register.archer_id)
        if merge(current, register) is current:
            return False
        self._seen[register.archer_id] = register
        return True

    # -- the file ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "pending": [register_to_wire(r) for r in self.pending()],
            "seen": [register_to_wire(r) for r in self._seen.values()],
            "clock": None if self.clock is None else self.clock.to_wire(),
        }

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text("utf-8"))
            if not isinstance(data, dict) or data.get("version") != _VERSION:
                raise ValueError("unknown outbox version")
            for raw in data.get("pending", []):
                self.put(register_from_wire(raw))
            for raw in data.get("seen", []):
                self._seen_merge(register_from_wire(raw))
            clock = data.get("clock")
            if clock is not None:
                wall_ms, counter, device_id = clock
                self.clock = Stamp(int(wall_ms), int(counter), str(device_id))
        except (OSError, ValueError, TypeError, KeyError, ProtocolError) as exc:
            raise ShootError(
                "outbox_corrupt",
                f"The outbox file {path} cannot be read ({exc}); it was left as it is.",
            ) from exc

    def encode(self) -> bytes:
        """The file's contents now. Take it on the thread that changes the outbox: only
        the bytes may go to a worker thread (see :meth:`save`)."""
        return json.dumps(self.to_json(), separators=(",", ":")).encode("utf-8")

    def save(self) -> None:
        """Write the file atomically and durably (blocking).

        From async code, take :meth:`encode` on the event loop's thread and hand only the
        bytes to :func:`write_atomically` in a worker thread: serialising in the worker
        would read the outbox while the loop changes it.
        """
        if self.path is not None:
            write_atomically(self.path, self.encode())


def write_atomically(path: Path, payload: bytes) -> None:
    """Replace ``path`` with ``payload``: a crash leaves the old file or the new, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
