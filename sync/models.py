"""The shoot and the archer's state: the live form of the app's history item.

A finished shoot in the app is a history item: date, round, the arrows as scored, the
archer's profile (bowstyle, age group, gender), classification and handicap. While a
shoot is live, each archer's :class:`ArcherState` is that item in progress; the relay keeps
one per archer in a last-writer-wins register (:mod:`sync.register`).

Only what the archer decides travels: name, round, profile, arrows, finished, left.
Totals, hits, golds, ends and classifications are always derived here from the arrows
(:func:`summarize`), never taken from a client, so a device cannot claim a score its
arrows do not add up to.
"""

from __future__ import annotations

import datetime as dt
import threading
import unicodedata
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import InvalidState
from .rounds import Arrow, RoundInfo, display_order, get_round

__all__ = [
    "AGE_GROUPS",
    "BOWSTYLES",
    "CHECKED_CACHE",
    "ENDED_KEPT_MS",
    "GENDERS",
    "MAX_NAME_LENGTH",
    "MAX_TITLE_LENGTH",
    "MIN_LIFETIME_MS",
    "ArcherState",
    "Need",
    "Profile",
    "ScoreSummary",
    "Shoot",
    "checked",
    "end_of_local_day",
    "shoot_expiry",
    "summarize",
    "validate_code",
    "validate_name",
    "validate_state",
    "validate_title",
]

MAX_NAME_LENGTH: Final = 40
MAX_TITLE_LENGTH: Final = 100
#: However late in the day a shoot is created, it lives at least this long: an evening
#: shoot must not end at midnight in the middle of its last end.
MIN_LIFETIME_MS: Final = 6 * 3_600_000
#: After its end a shoot's final results stay readable (read-only) this long.
ENDED_KEPT_MS: Final = 24 * 3_600_000

#: Profile values, as archeryutils' AGB 2023 enums name them (lower case on the wire).
BOWSTYLES: Final = frozenset(
    {
        "recurve",
        "compound",
        "barebow",
        "longbow",
        "traditional",
        "flatbow",
        "compoundlimited",
        "compoundbarebow",
    }
)
AGE_GROUPS: Final = frozenset(
    {
        "adult",
        "over_50",
        "under_21",
        "under_18",
        "under_16",
        "under_15",
        "under_14",
        "under_12",
    }
)
#: AGB's 2023 rules class archers as open or female.
GENDERS: Final = frozenset({"open", "female"})


@dataclass(frozen=True, slots=True)
class Profile:
    """What the classification tables need to know about an archer."""

    bowstyle: str = "recurve"
    age_group: str = "adult"
    gender: str = "open"


@dataclass(frozen=True, slots=True)
class ArcherState:
    """Everything one archer decides about their shoot: the register's value.

    A write is always the whole state (an idempotent PUT), never a delta, so a write
    retried, duplicated or delivered late cannot double-count an arrow.
    """

    name: str
    """Display name, free text, shown escaped wherever it appears."""
    round: str
    """archeryutils code name of the round, e.g. ``"national"``."""
    profile: Profile = Profile()
    arrows: tuple[Arrow, ...] = ()
    """Arrows in the order shot, as scored: ``9, 7, "X", 10, "M"``..."""
    finished: bool = False
    """The archer has saved their score sheet; the score is final."""
    left: bool = False
    """The archer left the shoot; kept so a stale device cannot bring them back."""


@dataclass(frozen=True, slots=True)
class ScoreSummary:
    """What the arrows add up to; derived, never sent by a client."""

    total: int
    hits: int
    golds: int
    """Arrows in the top ring: 9s on imperial faces, 10s and Xs on metric faces."""
    xs: int
    arrows_shot: int
    ends_completed: int
    end_totals: tuple[int, ...]
    """Score of each completed end, for per-end graphs and best-end figures."""


@dataclass(frozen=True, slots=True)
class Shoot:
    """A shoot's metadata, fixed when it is created."""

    code: str
    """The 4-digit join code, ``"1000"`` to ``"9999"``; unique while the shoot lives."""
    shoot_id: str
    """An opaque id unique across time (codes are reused on later days)."""
    title: str
    creator: str
    created_ms: int
    expires_ms: int
    """When the shoot ends, as an epoch timestamp in milliseconds: the end of the
    creator's local day, but at least :data:`MIN_LIFETIME_MS` after creation
    (:func:`shoot_expiry`)."""
    time_zone: str
    """The creator's IANA time zone, e.g. ``"Europe/London"``."""


def _check_text(value: str, *, what: str, code: str, limit: int, required: bool) -> str:
    text = value.strip()
    if required and not text:
        raise InvalidState(code, f"The {what} cannot be empty.")
    if len(text) > limit:
        raise InvalidState(code, f"The {what} is longer than {limit} characters.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in text):
        raise InvalidState(code, f"The {what} contains control characters.")
    return text


def validate_name(name: str) -> str:
    """Return the trimmed display name, or raise ``invalid_name``."""
    return _check_text(name, what="name", code="invalid_name", limit=MAX_NAME_LENGTH, required=True)


def validate_title(title: str) -> str:
    """Return the trimmed shoot title (may be empty), or raise ``invalid_title``."""
    return _check_text(
        title, what="title", code="invalid_title", limit=MAX_TITLE_LENGTH, required=False
    )


def validate_code(code: str) -> str:
    """Return a well-formed join code, or raise ``invalid_code``."""
    if len(code) != 4 or not code.isascii() or not code.isdigit() or code[0] == "0":
        raise InvalidState("invalid_code", "A shoot code is four digits, 1000 to 9999.")
    return code


def validate_profile(profile: Profile) -> None:
    """Raise ``invalid_profile`` naming the field and the values it may take."""
    for what, value, allowed in (
        ("bowstyle", profile.bowstyle, BOWSTYLES),
        ("age group", profile.age_group, AGE_GROUPS),
        ("gender", profile.gender, GENDERS),
    ):
        if value not in allowed:
            raise InvalidState(
                "invalid_profile",
                f"Unknown {what} {value[:40]!r}; use one of {', '.join(sorted(allowed))}.",
            )


def validate_state(state: ArcherState) -> RoundInfo:
    """Check a state against the rules of its round and the relay's limits.

    Returns:
        The round, looked up once, for callers that go on to summarize.

    Raises:
        InvalidState: ``invalid_name``, ``unknown_round``, ``invalid_profile``,
            ``too_many_arrows`` or ``invalid_arrow``, with a sentence saying which.
    """
    if validate_name(state.name) != state.name:
        raise InvalidState("invalid_name", "The name has leading or trailing spaces.")
    info = get_round(state.round)
    validate_profile(state.profile)
    if len(state.arrows) > info.total_arrows:
        raise InvalidState(
            "too_many_arrows",
            f"A {info.name} has {info.total_arrows} arrows; this score has {len(state.arrows)}.",
        )
    allowed_per_arrow = info.allowed_per_arrow()
    for index, arrow in enumerate(state.arrows):
        # bool is an int subclass; True is not an arrow.
        if isinstance(arrow, bool) or arrow not in allowed_per_arrow[index]:
            allowed = ", ".join(str(a) for a in display_order(info.allowed_at(index)))
            raise InvalidState(
                "invalid_arrow",
                f"Arrow {index + 1} scores {arrow!r}, which a {info.name} does not allow "
                f"there (allowed: {allowed}).",
            )
    return info


@dataclass(frozen=True, slots=True)
class Need:
    """What an archer's projection (:mod:`sync.classification`) depends on, and the key
    it is kept by: the tables must hold its answer before a lookup can give it. Here,
    not there, so that the document can recognise one without importing archeryutils."""

    round: str
    arrows: int
    """Arrows counted: the completed ends, or the whole round once finished."""
    score: int
    profile: Profile
    finished: bool


#: Valid states remembered by :func:`checked`: a few per archer of every live shoot.
CHECKED_CACHE: Final = 4096


_Checked = tuple[RoundInfo, ScoreSummary] | None
_CHECKED: dict[ArcherState, _Checked] = {}
_CHECKED_LOCK = threading.Lock()


def checked(state: ArcherState, previous: ArcherState | None = None) -> _Checked:
    """The state's round and summary, or ``None`` if the state is invalid (then
    :func:`validate_state` says why).

    Cached because one write needs them three times (the relay's check, the derived
    values, the board) and a board built from scratch needs them for every archer, all but
    one unchanged; states are frozen and hashable. ``previous``, a state of the same
    archer already checked, lets a write that only adds arrows be checked and summed
    from the new arrows alone (the usual write: one more arrow).
    """
    found = _CHECKED.get(state, _UNCHECKED)
    if found is not _UNCHECKED:
        return found  # type: ignore[return-value]
    base = None if previous is None else _CHECKED.get(previous)
    if base is not None and previous is not None and _extends(previous, state):
        result: _Checked = _checked_after(state, previous, *base)
    else:
        try:
            info = validate_state(state)
        except InvalidState:
            result = None
        else:
            result = info, summarize(state, info)
    with _CHECKED_LOCK:  # worker threads build boards too
        while len(_CHECKED) >= CHECKED_CACHE:
            del _CHECKED[next(iter(_CHECKED))]  # the oldest first
        _CHECKED[state] = result
    return result


_UNCHECKED: Final = object()


def _extends(previous: ArcherState, state: ArcherState) -> bool:
    """Whether ``state`` is ``previous`` with arrows added (or none), everything that
    validation looks at other than the arrows unchanged."""
    return (
        state.name == previous.name
        and state.round == previous.round
        and state.profile == previous.profile
        and len(state.arrows) >= len(previous.arrows)
        and state.arrows[: len(previous.arrows)] == previous.arrows
    )


def _checked_after(
    state: ArcherState, previous: ArcherState, info: RoundInfo, before: ScoreSummary
) -> _Checked:
    """:func:`checked` for a state that extends a valid one: only the new arrows are
    validated and summed (the answer is the same as from scratch, which a test checks)."""
    arrows, start = state.arrows, len(previous.arrows)
    if len(arrows) > info.total_arrows:
        return None
    allowed = info.allowed_per_arrow()
    for index in range(start, len(arrows)):
        arrow = arrows[index]
        if isinstance(arrow, bool) or arrow not in allowed[index]:
            return None
    new = arrows[start:]
    values = [a if isinstance(a, int) else _POINTS[a] for a in new]
    size = info.end_size
    ends = len(arrows) // size
    # The ends completed since: from the first end that was open before.
    opened = before.ends_completed * size
    tail = [a if isinstance(a, int) else _POINTS[a] for a in arrows[opened : ends * size]]
    return info, ScoreSummary(
        total=before.total + sum(values),
        hits=before.hits + len(new) - new.count("M"),
        golds=before.golds + sum(map(int.__eq__, values, info.gold_per_arrow()[start:])),
        xs=before.xs + new.count("X"),
        arrows_shot=len(arrows),
        ends_completed=ends,
        end_totals=before.end_totals
        + tuple(sum(tail[i : i + size]) for i in range(0, len(tail), size)),
    )


def summarize(state: ArcherState, info: RoundInfo | None = None) -> ScoreSummary:
    """Derive totals from the arrows. The state must already be valid."""
    info = info or get_round(state.round)
    arrows = state.arrows
    # Whole-tuple operations instead of a loop per arrow: this runs on every write.
    values = [a if isinstance(a, int) else _POINTS[a] for a in arrows]
    misses = arrows.count("M")
    # A miss scores 0, never a top ring's value, so it is never counted as a gold.
    golds = sum(map(int.__eq__, values, info.gold_per_arrow()))
    size = info.end_size
    ends = len(arrows) // size
    return ScoreSummary(
        total=sum(values),
        hits=len(arrows) - misses,
        golds=golds,
        xs=arrows.count("X"),
        arrows_shot=len(arrows),
        ends_completed=ends,
        end_totals=tuple(sum(values[i : i + size]) for i in range(0, ends * size, size)),
    )


#: Points of the arrows that are not numbers.
_POINTS: Final[dict[str, int]] = {"X": 10, "M": 0}


def check_time_zone(name: str) -> ZoneInfo:
    """Return the zone, or raise ``invalid_time_zone``."""
    try:
        if not name or len(name) > 64:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidState("invalid_time_zone", f"Unknown time zone {name!r}.") from exc


def end_of_local_day(now_ms: int, time_zone: str) -> int:
    """The first millisecond of the next local day in ``time_zone``, as epoch ms.

    A shoot lives until the end of the creator's day where they are, not the server's
    midnight (the first leaderboard expired shoots at UTC midnight, mid-session for some).
    """
    zone = check_time_zone(time_zone)
    local = dt.datetime.fromtimestamp(now_ms / 1000, tz=zone)
    tomorrow = local.date() + dt.timedelta(days=1)
    midnight = dt.datetime.combine(tomorrow, dt.time(0), tzinfo=zone)
    return int(midnight.timestamp() * 1000)


def shoot_expiry(created_ms: int, time_zone: str) -> int:
    """When a shoot created at ``created_ms`` ends: the end of the creator's local day,
    but never less than :data:`MIN_LIFETIME_MS` after its creation.

    A shoot created at 23:05 once lived 54 minutes; the floor keeps an evening session
    going past midnight, while a morning shoot still ends with its day.

    Raises:
        InvalidState: ``invalid_time_zone``.
    """
    return max(end_of_local_day(created_ms, time_zone), created_ms + MIN_LIFETIME_MS)
