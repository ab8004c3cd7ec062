"""Which URL phones should use: the relay's address on the local network.

A relay started on a laptop at the club answers on ``http://127.0.0.1:8080`` for the
laptop's own browser, but a phone cannot open that: 127.0.0.1 is the phone itself. Join
links and QR codes use ``PUBLIC_URL`` when it is set, else the request's own origin, so a
shoot created from the laptop's browser would silently hand phones a link they cannot
open. At start-up the relay therefore says, once, what phones should use.

The LAN address is found by asking the kernel which local address it would route a UDP
datagram to a private address from; ``connect`` on a UDP socket sends nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Final
from urllib.parse import urlsplit

__all__ = ["is_loopback_url", "lan_address", "start_up_advice"]

#: Any private address works: no datagram is sent, the kernel only picks a route.
_PROBE: Final = ("10.255.255.255", 1)


def lan_address() -> str | None:
    """This machine's address on its local network; ``None`` when it has none."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(_PROBE)
            address = str(probe.getsockname()[0])
    except OSError:
        return None
    ip = ipaddress.ip_address(address)
    return None if ip.is_loopback or ip.is_unspecified else address


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at the machine that opens it (127.0.0.0/8, ::1, localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def start_up_advice(host: str, port: int, public_url: str | None, lan: str | None) -> str:
    """The sentence the relay logs at start-up about the address phones should use."""
    if public_url:
        return f"join links and QR codes use PUBLIC_URL={public_url}"
    bound_loopback = is_loopback_url(f"http://{host}/") if host else False
    if bound_loopback:
        return (
            f"listening on {host} only: phones cannot reach this relay. Start it with "
            "HOST=0.0.0.0 (and PUBLIC_URL set to an address phones can open) to share shoots."
        )
    if lan is None:
        return (
            "no local network address found: set PUBLIC_URL to the address phones should "
            "open, or join links and QR codes use whatever address each browser used."
        )
    url = f"http://{lan}:{port}"
    return (
        f"phones on this network should open {url} (set PUBLIC_URL={url} so join links and "
        "QR codes point there even when the shoot is created on this machine)"
    )
