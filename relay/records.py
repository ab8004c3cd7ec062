"""What the store hands out and raises: records of shoots, archers and owners, its errors.

Kept apart from :mod:`relay.store` (the Redis calls) so that the modules that only pass
these values around (messages, actors, leases) do not depend on how they are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sync.models import Shoot

__all__ = [
    "ArcherRecord",
    "Durability",
    "LeaseHeld",
    "NoCodeAvailable",
    "Owner",
    "ShootExpired",
    "ShootFenced",
    "StoreUnavailable",
    "StoredShoot",
    "UnknownShoot",
    "parse_version",
]


class UnknownShoot(Exception):
    """No shoot has this code (never created, or already expired from Redis)."""


class ShootExpired(Exception):
    """The shoot's day is over."""


class StoreUnavailable(Exception):
    """Redis could not be reached or failed; the caller may retry later."""


class NoCodeAvailable(Exception):
    """All 9,000 join codes are taken by live shoots."""


class ShootFenced(Exception):
    """Redis refused a write: the shoot no longer holds its code (it ended, or a newer
    shoot has the code). Retrying cannot help; what was not written is dropped."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"shoot {code}: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ArcherRecord:
    """What the relay keeps about an archer beside their register: their secret."""

    token_sha256: str
    name: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class StoredShoot:
    """A shoot as loaded from Redis."""

    shoot: Shoot
    snapshot: bytes | None
    log: list[tuple[str, bytes]]
    """``(stream id, update)`` pairs in order."""
    archers: dict[str, ArcherRecord] = field(default_factory=dict)
    """Who may write, so a loaded shoot can admit its archers while Redis is away."""
    log_end: str = "0-0"
    """The id of the log's last entry, markers included (where a follower tails from)."""

    @property
    def updates(self) -> list[bytes]:
        """The Yjs updates that make the document: the snapshot, then the log."""
        snapshot = [self.snapshot] if self.snapshot else []
        return snapshot + [update for _, update in self.log]


@dataclass(frozen=True, slots=True)
class Durability:
    """What the Redis behind the store does with a write before answering."""

    version: str
    aof: bool
    """The append-only file is on."""
    appendfsync: str | None
    """``always``, ``everysec`` or ``no``; ``None`` where ``CONFIG GET`` is not allowed."""
    waitaof: bool
    """Appends wait for ``WAITAOF 1 0`` (Redis >= 7.2 with the append-only file on)."""

    def describe(self) -> str:
        if self.waitaof:
            promise = "each ack waits until Redis has fsynced the write (WAITAOF)"
        elif self.aof and self.appendfsync == "always":
            promise = "each ack waits until Redis has fsynced the write (appendfsync always)"
        elif self.aof:
            policy = self.appendfsync or "unknown"
            promise = f"a Redis crash can lose the last second of acks (appendfsync {policy})"
        else:
            promise = "acks are in Redis's memory only (no append-only file)"
        return f"Redis {self.version}: {promise}"


def parse_version(text: str) -> tuple[int, ...]:
    """``"7.0.15"`` -> ``(7, 0, 15)``; parts that are not numbers end the tuple."""
    parts: list[int] = []
    for part in text.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class Owner:
    """Who may write a shoot: the epoch of its lease and the instance holding it."""

    epoch: int
    instance: str

    @property
    def token(self) -> str:
        """What the lease key holds while this owner has it."""
        return f"{self.epoch}:{self.instance}"


@dataclass(frozen=True, slots=True)
class LeaseHeld:
    """Another instance holds the shoot's lease (``holder``) for ``pttl_ms`` more."""

    holder: str
    pttl_ms: int
