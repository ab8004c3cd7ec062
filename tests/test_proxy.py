"""Finding the client's address in a trusted proxy's header, and its throttle key."""

from __future__ import annotations

import pytest

from relay.config import Settings
from relay.proxy import forwarded_address
from relay.throttle import address_key


def _headers(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in pairs]


@pytest.mark.parametrize(
    ("headers", "name", "hops", "expected"),
    [
        # Only the header configured is read, whatever its case.
        (_headers(("fly-client-ip", "203.0.113.7")), "Fly-Client-IP", 1, "203.0.113.7"),
        (_headers(("x-forwarded-for", "203.0.113.7")), "Fly-Client-IP", 1, None),
        # The client may write anything on the left; our proxy appends on the right.
        (
            _headers(("x-forwarded-for", "10.9.9.9, 203.0.113.7")),
            "X-Forwarded-For",
            1,
            "203.0.113.7",
        ),
        (
            _headers(("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.7, 10.0.0.2")),
            "X-Forwarded-For",
            2,
            "203.0.113.7",
        ),
        # Fewer entries than our proxies append: someone bypassed one of them.
        (_headers(("x-forwarded-for", "203.0.113.7")), "X-Forwarded-For", 2, None),
        # Ports and brackets are shed; IPv6 is normalised.
        (_headers(("x-real-ip", "203.0.113.7:4711")), "X-Real-IP", 1, "203.0.113.7"),
        (_headers(("x-real-ip", "[2001:DB8::1]:443")), "X-Real-IP", 1, "2001:db8::1"),
        (_headers(("x-real-ip", "2001:db8:0::1")), "X-Real-IP", 1, "2001:db8::1"),
        # Anything that is not an address is ignored (the peer's address stays).
        (_headers(("x-real-ip", "unknown")), "X-Real-IP", 1, None),
        (_headers(("x-real-ip", "<script>")), "X-Real-IP", 1, None),
        (_headers(("x-real-ip", "1" * 5000)), "X-Real-IP", 1, None),
        (_headers(), "X-Real-IP", 1, None),
    ],
)
def test_forwarded_address(
    headers: list[tuple[bytes, bytes]], name: str, hops: int, expected: str | None
) -> None:
    assert forwarded_address(headers, name, hops) == expected


def test_ipv6_addresses_are_throttled_by_their_64_network() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:203.0.113.7") == address_key("203.0.113.7") == "203.0.113.7"
    assert address_key("203.0.113.7") != address_key("203.0.113.8")
    assert address_key("unknown") == "unknown"


def test_proxy_settings_come_from_the_environment() -> None:
    assert Settings.from_env({}).proxy_client_header is None
    settings = Settings.from_env({"PROXY_CLIENT_HEADER": "Fly-Client-IP", "PROXY_HOPS": "2"})
    assert (settings.proxy_client_header, settings.proxy_hops) == ("Fly-Client-IP", 2)
    trusted = Settings.from_env({"PROXY_TRUSTED_PEERS": "10.0.0.0/8, fdaa::/16 ,"})
    assert trusted.proxy_trusted_peers == ("10.0.0.0/8", "fdaa::/16")
    with pytest.raises(ValueError, match="PROXY_TRUSTED_PEERS"):
        Settings.from_env({"PROXY_TRUSTED_PEERS": "10.0.0.0/8, the proxy"})
    with pytest.raises(ValueError, match="PROXY_HOPS"):
        Settings.from_env({"PROXY_HOPS": "0"})
    with pytest.raises(ValueError, match="SHOOT_CREATES_PER_HOUR"):
        Settings.from_env({"SHOOT_CREATES_PER_HOUR": "0"})
    settings = Settings.from_env({"SHOOT_CREATES_BURST": "3", "SHOOT_CREATES_PER_HOUR": "6"})
    assert (settings.shoot_creates_burst, settings.shoot_creates_per_hour) == (3, 6.0)
