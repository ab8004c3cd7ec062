"""Names of a shoot's Redis keys, and how long its data is kept.

Every key of a code carries the code as its hash tag (``{1234}``), so a Redis Cluster keeps
all of a shoot's keys on one slot and one Lua script may touch any of them. No script
touches a key outside that tag. The layout is described in :mod:`relay.store`.
"""

from __future__ import annotations

from sync.models import ENDED_KEPT_MS, Shoot

__all__ = ["code_key", "data_key", "fence_keys", "kept_until", "reply_key"]


def code_key(code: str, part: str) -> str:
    """A key of the code itself (its claim ``meta``, ``latest``)."""
    return f"shoot:{{{code}}}:{part}"


def data_key(shoot: Shoot, part: str) -> str:
    """A key of one shoot's data (codes are reused: data is keyed by shoot id too)."""
    return f"shoot:{{{shoot.code}}}:{shoot.shoot_id}:{part}"


def fence_keys(shoot: Shoot) -> list[str]:
    """What a fenced script checks before it writes (the code's claim, the shoot's lease and
    epoch), in the order the scripts take them (:mod:`relay.scripts`)."""
    return [code_key(shoot.code, "meta"), data_key(shoot, "lease"), data_key(shoot, "epoch")]


def reply_key(shoot: Shoot, instance: str) -> str:
    """The stream where the owner answers the writes one instance forwarded to it."""
    return data_key(shoot, f"replies:{instance}")


def kept_until(shoot: Shoot) -> int:
    """When the shoot's document expires: a day after the shoot ends (ms)."""
    return shoot.expires_ms + ENDED_KEPT_MS
