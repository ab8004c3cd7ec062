"""The durable outbox: writes not yet acknowledged by the relay, kept across restarts.

Theory of operation
-------------------
What the outbox holds and the rules that change it (pending writes, newest per register;
the registers last seen; the clock's high-water mark; the shoot they belong to) are
:class:`sync.outbox.OutboxState`, which the client session machine
(:mod:`sync.client_session`) changes. This module only keeps it in a file, so a device
that restarts offline still has its unsent writes, never issues a smaller stamp than
before, and never sends an old day's writes to a new shoot under the same code.

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
from sync.outbox import OutboxState

from ._errors import ShootError

__all__ = ["Outbox", "write_atomically"]

_VERSION: Final = 1


class Outbox(OutboxState):
    """Pending writes and last-seen registers (:class:`~sync.outbox.OutboxState`),
    optionally backed by a file.

    Args:
        path: Where to keep it; ``None`` keeps it in memory only (lost on exit).

    Raises:
        ShootError: ``outbox_corrupt`` when the file exists but cannot be read.
    """

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()
        self.path = path
        if path is not None and path.exists():
            self._load(path)

    # -- the file ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "pending": [register_to_wire(r) for r in self.pending()],
            "seen": [register_to_wire(r) for r in self.seen_all()],
            "clock": None if self.clock is None else self.clock.to_wire(),
            "shoot_id": self.shoot_id,
        }

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text("utf-8"))
            if not isinstance(data, dict) or data.get("version") != _VERSION:
                raise ValueError("unknown outbox version")
            for raw in data.get("pending", []):
                self.put(register_from_wire(raw))
            for raw in data.get("seen", []):
                self.see(register_from_wire(raw))
            clock = data.get("clock")
            if clock is not None:
                wall_ms, counter, device_id = clock
                self.clock = Stamp(int(wall_ms), int(counter), str(device_id))
            shoot_id = data.get("shoot_id")  # absent in files from before it was kept
            if shoot_id is not None and not isinstance(shoot_id, str):
                raise ValueError("the shoot id is not a string")
            self.shoot_id = shoot_id
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
