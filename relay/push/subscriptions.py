"""A browser's push subscription, validated, and the per-shoot store of them in Redis.

Key layout (beside the shoot's own keys, under the same ``{code}`` hash tag, so a Redis
Cluster keeps them on the shoot's slot)::

    shoot:{1234}:<id>:push    hash  sha256(endpoint) -> JSON {endpoint, p256dh, auth, archer}

The hash expires with the shoot's day (no notice is sent after it). One device is one
endpoint, so subscribing again from a device replaces its entry (also when it now belongs
to another archer). The bounds, checked atomically in one script: at most
:data:`MAX_DEVICES_PER_ARCHER` devices per archer and :data:`MAX_VIEWERS` viewers' devices
per shoot, so the whole hash is at most ``max_archers * 4 + 64`` entries of at most ~1.3 KB,
and a hostile client filling the viewers' places cannot take an archer's.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from base64 import urlsafe_b64decode, urlsafe_b64encode
from dataclasses import dataclass
from typing import Any, Final

import redis
from cryptography.hazmat.primitives.asymmetric import ec

from sync.models import Shoot

from .services import EndpointRefused, PushServices

__all__ = [
    "MAX_DEVICES_PER_ARCHER",
    "MAX_VIEWERS",
    "PushFull",
    "Subscription",
    "SubscriptionStore",
    "parse_subscription",
]

#: Devices (browsers) one archer may have subscribed in a shoot: phone, tablet, a spare.
MAX_DEVICES_PER_ARCHER: Final = 4
#: Devices subscribed as viewers (no archer) in a shoot.
MAX_VIEWERS: Final = 64

# KEYS[1] the hash; ARGV: field, value, archer ('' for a viewer), cap, expiry (ms).
# Counts the entries of the same archer (or of viewers) other than this device's own.
_ADD: Final = """
local field, value, archer, cap = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local entries = redis.call('HGETALL', KEYS[1])
local same = 0
for i = 1, #entries, 2 do
  if entries[i] ~= field then
    local ok, entry = pcall(cjson.decode, entries[i + 1])
    local owner = ''
    if ok and type(entry) == 'table' and type(entry['archer']) == 'string' then
      owner = entry['archer']
    end
    if owner == archer then same = same + 1 end
  end
end
if same >= cap then return 0 end
redis.call('HSET', KEYS[1], field, value)
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
return 1
"""


class PushFull(Exception):
    """The archer (or the shoot's viewers) has every push place taken."""

    def __init__(self, archer_id: str | None) -> None:
        who = "this archer" if archer_id else "this shoot's viewers"
        cap = MAX_DEVICES_PER_ARCHER if archer_id else MAX_VIEWERS
        super().__init__(
            f"Notifications are on for {cap} devices of {who} already; "
            "turn them off on one of those first."
        )


def _b64url(value: object, name: str, size: int) -> bytes:
    if not isinstance(value, str) or len(value) > 2 * size:
        raise EndpointRefused(f"The subscription's key {name!r} must be a base64url string.")
    try:
        raw = urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise EndpointRefused(f"The subscription's key {name!r} is not base64url.") from None
    if len(raw) != size:
        raise EndpointRefused(f"The subscription's key {name!r} must be {size} bytes.")
    return raw


@dataclass(frozen=True, slots=True)
class Subscription:
    """Where and how to send one device its notices (RFC 8291 keys)."""

    endpoint: str
    p256dh: bytes
    """The device's P-256 public key, uncompressed (65 bytes)."""
    auth: bytes
    """The device's 16-byte authentication secret."""
    archer_id: str | None
    """The archer whose notices these are; ``None`` for a viewer (lead changes only)."""

    @property
    def key(self) -> str:
        """The device's field in the shoot's hash."""
        return hashlib.sha256(self.endpoint.encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps(
            {
                "endpoint": self.endpoint,
                "p256dh": _encode(self.p256dh),
                "auth": _encode(self.auth),
                "archer": self.archer_id,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Subscription:
        """Read :meth:`to_json`'s output (raises ``ValueError`` and friends when damaged)."""
        data = json.loads(raw)
        archer = data.get("archer")
        return cls(
            data["endpoint"],
            _b64url(data["p256dh"], "p256dh", 65),
            _b64url(data["auth"], "auth", 16),
            archer if isinstance(archer, str) else None,
        )


def _encode(raw: bytes) -> str:
    return urlsafe_b64encode(raw).rstrip(b"=").decode()


def parse_subscription(raw: object, services: PushServices, archer_id: str | None) -> Subscription:
    """Validate a ``PushSubscription.toJSON()`` object from a browser.

    Raises:
        EndpointRefused: the endpoint is not an allowed push service, or the keys are not
            a P-256 public key and a 16-byte secret.
    """
    if not isinstance(raw, dict):
        raise EndpointRefused("Field 'subscription' must be the browser's push subscription.")
    endpoint = raw.get("endpoint")
    keys = raw.get("keys")
    if not isinstance(endpoint, str) or not isinstance(keys, dict):
        raise EndpointRefused("The subscription must have an 'endpoint' and 'keys'.")
    services.check(endpoint)
    p256dh = _b64url(keys.get("p256dh"), "p256dh", 65)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise EndpointRefused("The subscription's key 'p256dh' is not a P-256 point.") from None
    return Subscription(endpoint, p256dh, _b64url(keys.get("auth"), "auth", 16), archer_id)


def _push_key(shoot: Shoot) -> str:
    return f"shoot:{{{shoot.code}}}:{shoot.shoot_id}:push"


class SubscriptionStore:
    """Blocking Redis calls (run them through :meth:`relay.store.RedisStore.call`)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._add = client.register_script(_ADD)

    def add(self, shoot: Shoot, subscription: Subscription) -> None:
        """Keep the device's subscription until the shoot's end.

        Raises:
            PushFull: the archer (or the viewers) has no place left.
        """
        archer = subscription.archer_id or ""
        cap = MAX_DEVICES_PER_ARCHER if subscription.archer_id else MAX_VIEWERS
        args: list[Any] = [subscription.key, subscription.to_json(), archer, cap, shoot.expires_ms]
        if not self._add(keys=[_push_key(shoot)], args=args):
            raise PushFull(subscription.archer_id)

    def remove(self, shoot: Shoot, endpoint: str) -> bool:
        """Forget a device's subscription; whether there was one."""
        field = hashlib.sha256(endpoint.encode()).hexdigest()
        return bool(self._redis.hdel(_push_key(shoot), field))

    def all(self, shoot: Shoot) -> list[Subscription]:
        """Every subscription of the shoot (entries that fail to decode are skipped)."""
        found = []
        raw: dict[bytes, bytes] = self._redis.hgetall(_push_key(shoot))  # type: ignore[assignment]
        for value in raw.values():
            try:
                found.append(Subscription.from_json(value))
            except (ValueError, TypeError, KeyError):  # EndpointRefused is a ValueError
                continue  # only the relay writes these; a damaged one is a lost device
        return found
