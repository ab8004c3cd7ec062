"""The access rule (:mod:`sync.access`) from its inputs alone: no Redis, no actor."""

from __future__ import annotations

import pytest

from sync.access import (
    Access,
    access_without_record,
    archer_access,
    hash_token,
    token_matches,
)

NOW = 1_780_000_000_000
TOKEN = "s3cret-token"
HASH = hash_token(TOKEN)


def decide(now_ms: int, archer_id: str | None, token: str | None, known: str | None) -> Access:
    """The rule as the owner's actor applies it, holding every record."""
    return access_without_record(now_ms, NOW, archer_id) or archer_access(token, known)


def test_an_ended_shoot_lets_nobody_in_whatever_the_token() -> None:
    assert access_without_record(NOW, NOW, None) == "expired"
    assert access_without_record(NOW + 1, NOW, "chris") == "expired"
    assert decide(NOW, "chris", TOKEN, HASH) == "expired"


def test_a_viewer_needs_no_record() -> None:
    assert access_without_record(NOW - 1, NOW, None) == "granted"


def test_an_archer_on_a_live_shoot_is_decided_by_the_record() -> None:
    assert access_without_record(NOW - 1, NOW, "chris") is None
    assert decide(NOW - 1, "chris", TOKEN, HASH) == "granted"


@pytest.mark.parametrize(
    ("token", "known"),
    [
        (TOKEN, None),  # no record of this archer
        (None, HASH),  # no token sent
        ("", HASH),
        ("s3cret-tokeN", HASH),  # another token
        (HASH, HASH),  # the hash itself is not the token
    ],
)
def test_an_archer_without_the_matching_token_is_denied(
    token: str | None, known: str | None
) -> None:
    assert archer_access(token, known) == "denied"


def test_tokens_are_kept_as_sha256_and_a_missing_one_never_matches() -> None:
    assert HASH == "a81e611a041b13f078bf8ebe5dab4d4fd63fcc5594661c918bec093a2f416a7e"
    assert token_matches(TOKEN, HASH)
    assert not token_matches(None, HASH)
    assert not token_matches(TOKEN, hash_token("other"))
