"""What the relay says at start-up about the address phones should open."""

from __future__ import annotations

import pytest

from relay.lan import is_loopback_url, lan_address, start_up_advice


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8080/join/4821", True),
        ("http://127.8.9.1/", True),
        ("http://localhost:8080/", True),
        ("http://[::1]:8080/", True),
        ("http://192.168.1.20:8080/join/4821", False),
        ("https://archery.example/join/4821", False),
    ],
)
def test_loopback_urls_are_recognised(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


def test_lan_address_is_never_loopback() -> None:
    found = lan_address()
    assert found is None or not is_loopback_url(f"http://{found}/")


def test_advice_names_the_lan_url_when_listening_on_every_interface() -> None:
    advice = start_up_advice("0.0.0.0", 8080, None, "192.168.1.20")
    assert "http://192.168.1.20:8080" in advice
    assert "PUBLIC_URL=http://192.168.1.20:8080" in advice


def test_advice_when_only_loopback_is_bound_says_phones_cannot_reach_it() -> None:
    advice = start_up_advice("127.0.0.1", 8080, None, "192.168.1.20")
    assert "phones cannot reach" in advice
    assert "HOST=0.0.0.0" in advice


def test_advice_with_public_url_repeats_it() -> None:
    assert "https://archery.example" in start_up_advice(
        "0.0.0.0", 8080, "https://archery.example", "192.168.1.20"
    )


def test_advice_without_a_network_asks_for_public_url() -> None:
    assert "set PUBLIC_URL" in start_up_advice("0.0.0.0", 8080, None, None)
