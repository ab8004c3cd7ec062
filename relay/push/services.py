"""Which push services the relay may POST to: the guard against server-side request forgery.

A subscription's endpoint comes from the browser, so from anyone: without a check a
hostile client could subscribe ``http://10.0.0.5/admin`` and have the relay call it each
time a notice goes out. Every endpoint is therefore checked against an allow-list of push
service origins when it is subscribed (refused then, with a clear error) and again right
before each request.

An allow-list entry is an origin: ``https://`` and a host, optionally with a port; a host
may start with ``*.`` to take every subdomain (Windows' push service gives each client
one of many ``*.notify.windows.com`` hosts). ``http://`` is accepted only for a loopback
host (a push service run by a test or a developer on this machine), never for a remote
one, so notices never cross a network unencrypted and unauthenticated. The defaults are
the push services of the browsers people use.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_PUSH_SERVICES",
    "MAX_ENDPOINT_CHARS",
    "EndpointRefused",
    "PushServices",
    "ServiceOrigin",
]

#: The push services of Chrome and Android (FCM), Firefox (Mozilla autopush), Edge (WNS)
#: and Safari (Apple).
DEFAULT_PUSH_SERVICES: Final = (
    "https://fcm.googleapis.com",
    "https://updates.push.services.mozilla.com",
    "https://*.notify.windows.com",
    "https://web.push.apple.com",
)
#: The longest endpoint accepted; real ones are 150-400 characters.
MAX_ENDPOINT_CHARS: Final = 1024

_LOOPBACK_NAMES: Final = ("localhost",)


class EndpointRefused(ValueError):
    """An endpoint the relay will not call; the message says why, for the person."""


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


@dataclass(frozen=True, slots=True)
class ServiceOrigin:
    """One allow-list entry."""

    scheme: str
    host: str
    """Lower case; a leading ``*.`` stands for any subdomain (not the bare domain)."""
    port: int

    @classmethod
    def parse(cls, text: str) -> ServiceOrigin:
        """Read an entry such as ``https://fcm.googleapis.com`` or ``http://127.0.0.1:9000``.

        Raises:
            ValueError: saying what is wrong with it.
        """
        parts = urlsplit(text.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"{text!r} is not an origin such as https://push.example.com")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError(f"{text!r} must be an origin only (no path, query or user)")
        host = parts.hostname.lower()
        if scheme == "http" and not _is_loopback(host):
            raise ValueError(f"{text!r}: only a loopback push service may use http://")
        try:
            port = parts.port or _default_port(scheme)
        except ValueError as exc:
            raise ValueError(f"{text!r} has an invalid port") from exc
        return cls(scheme, host, port)

    def admits(self, scheme: str, host: str, port: int) -> bool:
        if scheme != self.scheme or port != self.port:
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and len(host) > len(self.host) - 1
        return host == self.host


class PushServices:
    """The allow-list, and the check of an endpoint against it."""

    def __init__(self, origins: Iterable[str] = DEFAULT_PUSH_SERVICES) -> None:
        self.origins = tuple(ServiceOrigin.parse(origin) for origin in origins)

    def check(self, endpoint: str) -> str:
        """The endpoint, if the relay may POST to it.

        Raises:
            EndpointRefused: an endpoint that is not an https URL of an allowed push
                service (or is too long, or carries a user name, password or fragment).
        """
        if len(endpoint) > MAX_ENDPOINT_CHARS:
            raise EndpointRefused(
                f"The push endpoint is longer than {MAX_ENDPOINT_CHARS} characters."
            )
        if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in endpoint):
            raise EndpointRefused("The push endpoint holds characters a URL cannot.")
        try:
            parts = urlsplit(endpoint)
            port = parts.port or _default_port(parts.scheme.lower())
        except ValueError:
            raise EndpointRefused("The push endpoint is not a valid URL.") from None
        host = (parts.hostname or "").lower()
        if parts.username is not None or parts.password is not None or parts.fragment:
            raise EndpointRefused("The push endpoint must not carry a user name or fragment.")
        scheme = parts.scheme.lower()
        if not any(origin.admits(scheme, host, port) for origin in self.origins):
            raise EndpointRefused(
                "This relay sends notifications only through the browsers' own push "
                "services; that push endpoint is not one of them."
            )
        return endpoint
