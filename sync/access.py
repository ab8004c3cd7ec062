"""Who may open a session on a shoot: the access rule, pure.

Theory of operation
-------------------
A ``hello`` (and a second device's join) names an archer and carries the write token that
archer's join issued; Redis keeps only the token's SHA-256, so a leaked database does not
leak the right to write anyone's scores. The rule, in order:

1. a shoot past its end (``expires_ms``) lets nobody in: ``expired``;
2. a viewer (no archer) is let in: ``granted``;
3. an archer is let in only if the shoot has a record of them and the token's hash matches
   it (compared in constant time; a missing token never matches): ``granted``, else
   ``denied``.

The owner's actor holds every archer's record; a follower relay may have to read a record
from Redis first (an archer who joined since it loaded the shoot), but only when the
record decides: :func:`access_without_record` says when it does not. What a refusal
becomes on the wire (which error, which close code, the address throttle) is
:mod:`relay.auth`'s and :mod:`sync.relay_session`'s.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal, TypeAlias

__all__ = ["Access", "access_without_record", "archer_access", "hash_token", "token_matches"]

Access: TypeAlias = Literal["granted", "denied", "expired"]


def hash_token(token: str) -> str:
    """What Redis keeps of a write token."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str | None, token_sha256: str) -> bool:
    """Compare in constant time; a missing token never matches."""
    return token is not None and hmac.compare_digest(hash_token(token), token_sha256)


def access_without_record(now_ms: int, expires_ms: int, archer_id: str | None) -> Access | None:
    """The answer when no archer's record is needed for it (an ended shoot, a viewer), or
    ``None``: then :func:`archer_access` decides, with the archer's record."""
    if now_ms >= expires_ms:
        return "expired"
    if archer_id is None:
        return "granted"
    return None


def archer_access(token: str | None, token_sha256: str | None) -> Access:
    """An archer's access to a live shoot, from the token they sent and the hash of the
    one their join issued (``None``: the shoot has no record of them)."""
    if token_sha256 is None or not token_matches(token, token_sha256):
        return "denied"
    return "granted"
