"""Text measured in terminal cells, for tables that line up whatever the names hold.

``len()`` counts code points, but a terminal gives a CJK character or an emoji two
cells, a combining accent none, and a flag two for its two code points. A table padded
with ``len()`` drifts by a cell for every such character, and a name cut at ``[:24]`` can
split an accent from its letter. This module measures by cells and cuts only between
grapheme clusters (a base character with the marks, joiners and modifiers that follow
it), the way terminals draw them. It follows the Unicode East Asian Width property, as
``wcwidth`` and terminal emulators do, without a dependency.

(And :func:`plural`, the other thing every line the command prints needs.)
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Final

__all__ = ["ELLIPSIS", "clusters", "fit", "pad", "plural", "width"]

ELLIPSIS: Final = "…"

_ZWJ: Final = "\u200d"
_VS16: Final = "\ufe0f"  # "show the previous character as an emoji": two cells


def _zero_width(ch: str) -> bool:
    """Marks, joiners, variation selectors and skin-tone modifiers join the previous cluster."""
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Cf")
        or "\ufe00" <= ch <= "\ufe0f"
        or "\U0001f3fb" <= ch <= "\U0001f3ff"
    )


def _regional(ch: str) -> bool:
    return "\U0001f1e6" <= ch <= "\U0001f1ff"


def clusters(text: str) -> Iterator[str]:
    """The user-perceived characters of ``text`` (an approximation of UAX #29)."""
    current = ""
    joined = False  # the previous code point was a zero-width joiner
    for ch in text:
        starts_new = bool(current) and not joined and not _zero_width(ch)
        if starts_new and _regional(ch) and len(current) == 1 and _regional(current):
            starts_new = False  # the second half of a flag
        if starts_new:
            yield current
            current = ""
        current += ch
        joined = ch == _ZWJ
    if current:
        yield current


def _cluster_width(cluster: str) -> int:
    base = cluster[0]
    if unicodedata.category(base) in ("Cc", "Cs"):
        return 0
    if _regional(base) or _VS16 in cluster:
        return 2
    if _zero_width(base):
        return 0
    return 2 if unicodedata.east_asian_width(base) in ("W", "F") else 1


def width(text: str) -> int:
    """Terminal cells ``text`` takes."""
    if text.isascii():
        return len(text)
    return sum(_cluster_width(c) for c in clusters(text))


def fit(text: str, cells: int) -> str:
    """``text`` cut to at most ``cells`` cells between clusters, ending in "…" when cut."""
    if width(text) <= cells:
        return text
    if cells <= 0:
        return ""
    kept: list[str] = []
    used = 0
    for cluster in clusters(text):
        w = _cluster_width(cluster)
        if used + w > cells - 1:  # room for the ellipsis
            break
        kept.append(cluster)
        used += w
    return "".join(kept) + ELLIPSIS


def pad(text: str, cells: int, *, right: bool = False) -> str:
    """``text`` fitted to ``cells`` and padded with spaces to exactly that width."""
    text = fit(text, cells)
    gap = " " * (cells - width(text))
    return gap + text if right else text + gap


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 arrow``, ``2 arrows``; ``nouns`` for irregular plurals."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"
