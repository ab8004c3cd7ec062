"""Write tokens: random secrets for archers, of which Redis keeps only a SHA-256.

A leaked database therefore does not leak the right to write anyone's scores. How a token
is hashed and matched is the access rule's (:mod:`sync.access`); this module draws them.
"""

from __future__ import annotations

import secrets

from sync.access import hash_token, token_matches

__all__ = ["hash_token", "new_token", "token_matches"]


def new_token() -> str:
    return secrets.token_urlsafe(24)
