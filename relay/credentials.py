"""Write tokens: random secrets for archers, of which Redis keeps only a SHA-256.

A leaked database therefore does not leak the right to write anyone's scores.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["hash_token", "new_token", "token_matches"]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str | None, token_sha256: str) -> bool:
    """Compare in constant time; a missing token never matches."""
    return token is not None and hmac.compare_digest(hash_token(token), token_sha256)
