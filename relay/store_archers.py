"""The archer calls: who has joined a shoot, and the display names they claimed.

A part of :class:`relay.store.RedisStore` (which mixes it in), kept apart because only
joining and checking a join use it (:mod:`relay.http`, :mod:`relay.names`, Web Push's
routes, a follower checking a session's token). An archer's record (``archers``: the hash
of the write token, the name, when it joined) and a name's claim (``names``, see
:mod:`relay.names`) live as long as the shoot does: write tokens are not kept past its end.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import redis

from sync.models import Shoot

from . import scripts
from .keys import code_key as _key
from .keys import data_key as _data_key
from .records import ArcherRecord

__all__ = ["ArcherCalls"]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ArcherCalls:
    """The archer calls of :class:`~relay.store.RedisStore` (blocking, like its others:
    run them through ``store.call``)."""

    _redis: redis.Redis

    def _archers_init(self) -> None:
        self._name_claim = self._redis.register_script(scripts.NAME_CLAIM)
        self._name_release = self._redis.register_script(scripts.NAME_RELEASE)

    def add_archer(self, shoot: Shoot, archer_id: str, record: ArcherRecord) -> None:
        key = _data_key(shoot, "archers")
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, archer_id, json.dumps(asdict(record)))
        pipe.pexpireat(key, shoot.expires_ms)
        pipe.execute()

    def get_archer(self, shoot: Shoot, archer_id: str) -> ArcherRecord | None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hget(_data_key(shoot, "archers"), archer_id)
        pipe.hget(_key(shoot.code, "archers"), archer_id)  # the layout before shoot ids
        raw, old = pipe.execute()
        raw = raw if raw is not None else old
        return None if raw is None else ArcherRecord(**json.loads(raw))

    def claim_name(
        self, shoot: Shoot, key: str, claim: str, seen: str | None
    ) -> tuple[bool, str | None]:
        """Claim a display name (its normalised ``key``) for a join, atomically, if the
        shoot's names still hold ``seen`` for it (``None``: no claim).

        Returns:
            Whether it was claimed, and if not, the claim there now (``None``: none).
        """
        args: list[str | int] = [key, claim, seen or "", shoot.expires_ms]
        result = self._name_claim(keys=[_data_key(shoot, "names")], args=args)
        if int(result[0]) == 1:
            return True, None
        return False, None if not result[1] else _text(result[1])

    def release_name(self, shoot: Shoot, key: str, claim: str) -> None:
        """Give a join's claim of a name back (if nobody replaced it meanwhile)."""
        self._name_release(keys=[_data_key(shoot, "names")], args=[key, claim])
