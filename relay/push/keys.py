"""The relay's VAPID key pair (RFC 8292): one per deployment, shared by every instance.

A browser's subscription is tied to the public key it was made with (the
``applicationServerKey``), and the push service accepts only messages signed with the
matching private key. So every relay instance must sign with the same key, and the key
must outlive restarts, or every phone silently stops getting notices.

Where it comes from, in order:

1. ``PUSH_VAPID_PRIVATE_KEY``: the raw 32-byte P-256 private key, base64url (what
   ``web-push generate-vapid-keys`` and ``vapid --gen`` print), for deployments that keep
   secrets outside Redis. Never commit it.
2. Otherwise Redis: the first instance that needs a key generates one and stores it with
   ``SET NX``; every other instance, and every later start, reads the one that won.
   It never expires (deleting it ends every subscription made with it).

It is loaded lazily, on the first request that needs it, so a relay starts while Redis is
away; until Redis answers, push is unavailable (503) and the in-page notices go on.
"""

from __future__ import annotations

import binascii
import logging
from base64 import urlsafe_b64decode, urlsafe_b64encode
from dataclasses import dataclass
from typing import Final

import redis
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02, VapidException

from ..store import RedisStore, StoreUnavailable

__all__ = [
    "VAPID_KEY",
    "KeyHolder",
    "VapidKeys",
    "load_or_create",
    "parse_private_key",
    "subject_signs",
]

log = logging.getLogger(__name__)

#: The Redis key holding the shared private key (base64url, raw 32 bytes).
VAPID_KEY: Final = "push:vapid:private"


def _b64(raw: bytes) -> str:
    return urlsafe_b64encode(raw).rstrip(b"=").decode()


def parse_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from its raw 32 bytes in base64url.

    Raises:
        ValueError: saying what is wrong (for the operator's configuration error).
    """
    try:
        raw = urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("it is not base64url") from None
    if len(raw) != 32:
        raise ValueError(f"it must be 32 bytes of key, not {len(raw)}")
    try:
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError:
        raise ValueError("it is not a valid P-256 private key") from None


def subject_signs(subject: str) -> bool:
    """Whether py-vapid accepts ``subject`` as the ``sub`` claim (checked once, at start,
    so a contact it refuses cannot fail every push later)."""
    probe = Vapid02(ec.generate_private_key(ec.SECP256R1()))
    try:
        probe.sign({"aud": "https://push.example.com", "sub": subject})
    except VapidException:
        return False
    return True


@dataclass(frozen=True, slots=True)
class VapidKeys:
    private_key: ec.EllipticCurvePrivateKey

    @property
    def public_key(self) -> str:
        """The ``applicationServerKey`` for browsers: the uncompressed point, base64url."""
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return _b64(point)

    def signer(self) -> Vapid02:
        return Vapid02(self.private_key)

    def private_text(self) -> str:
        number = self.private_key.private_numbers().private_value
        return _b64(number.to_bytes(32, "big"))


def load_or_create(client: redis.Redis) -> VapidKeys:
    """The shared key from Redis, generated and stored first if there is none (blocking).

    Raises:
        ValueError: the stored key is damaged (the operator must delete or fix it).
    """
    fresh = VapidKeys(ec.generate_private_key(ec.SECP256R1()))
    for _ in range(3):  # an operator deleting the key in between only costs a retry
        client.set(VAPID_KEY, fresh.private_text(), nx=True)
        stored = client.get(VAPID_KEY)
        if stored is not None:
            text = stored.decode() if isinstance(stored, bytes) else str(stored)
            return VapidKeys(parse_private_key(text))
    raise redis.RedisError("the VAPID key keeps disappearing from Redis")


class KeyHolder:
    """The keys, from the configuration or loaded from Redis once, on first use.

    Args:
        configured: The key from ``PUSH_VAPID_PRIVATE_KEY``; ``None`` to use Redis.
    """

    def __init__(
        self, store: RedisStore, client: redis.Redis, configured: VapidKeys | None = None
    ) -> None:
        self._store = store
        self._client = client
        self._keys = configured
        self._lock = trio.Lock()

    async def get(self) -> VapidKeys:
        """Raises:
        StoreUnavailable: Redis cannot be reached, or holds a damaged key (logged)."""
        if self._keys is not None:
            return self._keys
        async with self._lock:
            if self._keys is None:
                try:
                    self._keys = await self._store.call(load_or_create, self._client)
                except ValueError as exc:
                    log.error("the VAPID key in Redis (%s) is damaged: %s", VAPID_KEY, exc)
                    raise StoreUnavailable("the VAPID key in Redis is damaged") from exc
            return self._keys
