"""This machine's IANA time zone, for ``fast-shoot create``'s default.

A shoot lives until midnight where its creator is, so the zone matters; defaulting to UTC
silently ended shoots mid-evening for anyone west of Greenwich. Python has no call that
names the local zone, so this reads what the system says, in the order the C library
does: ``$TZ``, then the ``/etc/localtime`` link (Linux, macOS), then ``/etc/timezone``
(Debian). ``None`` when none of them names a zone this Python knows; the caller then
asks for ``--tz`` rather than guess.
"""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

__all__ = ["local_time_zone"]


def _known(name: str) -> str | None:
    name = name.strip().lstrip(":")
    if not name or name.startswith("/") or ".." in name:
        return None
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return None
    return name


def local_time_zone(etc: Path = Path("/etc")) -> str | None:
    """The IANA name of this machine's zone (``"Europe/London"``), or ``None``."""
    tz = os.environ.get("TZ")
    if tz:
        return _known(tz)  # an explicit $TZ wins, even when it names no zone we know
    try:
        target = os.readlink(etc / "localtime")
    except OSError:
        target = ""
    if "zoneinfo/" in target:
        found = _known(target.split("zoneinfo/", 1)[1])
        if found:
            return found
    try:
        return _known((etc / "timezone").read_text("utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
