"""The servers' logs of a run that went wrong, kept beside its report.

Each server (the relay, Redis, the references) logs into the run's temporary folder,
which goes when the run ends. A reference that held none of its connections, or a run
that recorded errors, cannot be understood afterwards without those logs (a floor that
refused 10,000 connections in one reference run was never explained), so then they are
copied into ``logs/`` beside the report. A run that went well keeps none, and the
committed reference results hold none (``.gitignore``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

__all__ = ["KEPT_BECAUSE", "failed_servers", "keep_logs"]

KEPT_BECAUSE: Final = "a server held none of its connections, or the run recorded errors"


def failed_servers(results: Any) -> set[str]:
    """The servers that held none of their connections in some measurement: every
    measurement of a server is a map naming it (``server``) with its ``connections``."""
    return {
        str(found["server"])
        for found in _maps(results)
        if "server" in found and found.get("connections") == 0
    }


def keep_logs(work_dir: Path, out: Path, errors: Sequence[str], failed: set[str]) -> Path | None:
    """Copy the run's logs into ``out/logs`` if a server failed or the run recorded
    errors; the folder, or ``None`` when nothing went wrong."""
    if not errors and not failed:
        return None
    kept = out / "logs"
    kept.mkdir(parents=True, exist_ok=True)
    for log in sorted(work_dir.glob("*.log")):
        shutil.copy2(log, kept / log.name)
    return kept


def _maps(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _maps(item)
    elif isinstance(value, list):
        for item in value:
            yield from _maps(item)
