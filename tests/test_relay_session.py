"""The relay's session machine (:mod:`sync.relay_session`) driven by events alone: frames in,
with the time passed in; answers, refusals and closes out. No socket, no actor."""

from __future__ import annotations

from dataclasses import replace

import cbor2
import pytest

from sync.clock import Stamp
from sync.codec import encode
from sync.models import ArcherState
from sync.protocol import (
    CLOSE_POLICY,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_RATE_LIMITED,
    CLOSE_TOO_BIG,
    CLOSE_UNAUTHORIZED,
    MAX_CLIENT_FRAME_BYTES,
    Error,
    Hello,
    Ping,
    Pong,
    Write,
)
from sync.register import Register
from sync.relay_session import (
    MAX_RATE_LIMITED,
    Action,
    Answer,
    Authorise,
    End,
    Phase,
    RelaySession,
    SessionLimits,
    SessionMisuse,
    SubmitWrite,
    Subscribe,
)

WALL = 1_780_000_000_000
HELLO = Hello("1234", "archer", archer="chris", token="t")
VIEWER = Hello("1234", "viewer")
#: A burst and rate of round numbers, so the arithmetic below is exact.
LIMITS = SessionLimits(hello_timeout_s=10.0, writes_burst=20, writes_per_s=10.0)


def write(request_id: int, archer: str = "chris") -> bytes:
    register = Register(archer, Stamp(WALL, 0, "phone"), ArcherState("Chris", "national"))
    return encode(Write(request_id, register))


def live(hello: Hello = HELLO, archer_id: str | None = "chris", now: float = 0.0) -> RelaySession:
    """A session through hello, authorisation and subscription, live at ``now``."""
    session = RelaySession(now, LIMITS)
    assert session.frame_received(encode(hello), now, WALL) == [Authorise(hello)]
    assert session.authorised(archer_id) == [Subscribe(hello, archer_id)]
    assert session.subscribed(now) == []
    assert session.phase is Phase.LIVE
    return session


def codes(actions: list[Action]) -> list[tuple[str, str, int | None]]:
    """Each answer or end as (kind, error code, request id); pongs as ("pong", "", nonce)."""
    out: list[tuple[str, str, int | None]] = []
    for action in actions:
        match action:
            case Answer(message=Error(code=code, id=request_id)):
                out.append(("answer", code, request_id))
            case Answer(message=Pong(nonce=nonce)):
                out.append(("pong", "", nonce))
            case End(error=error):
                out.append(("end", error.code, error.id))
            case SubmitWrite(write=w):
                out.append(("submit", "", w.id))
            case _:
                out.append((type(action).__name__, "", None))
    return out


# -- the session's order -------------------------------------------------------------------


def test_hello_is_authorised_then_subscribed_then_live() -> None:
    session = RelaySession(5.0, LIMITS)
    assert session.phase is Phase.HELLO
    assert session.frame_received(encode(HELLO), 6.0, WALL) == [Authorise(HELLO)]
    assert session.phase is Phase.AUTHORISING
    assert session.next_timer == float("inf")  # the hello came: no deadline any more
    assert session.authorised("chris") == [Subscribe(HELLO, "chris")]
    assert session.archer_id == "chris"
    assert session.phase is Phase.SUBSCRIBING
    assert session.subscribed(7.0) == []
    assert session.phase is Phase.LIVE
    assert codes(session.frame_received(write(1), 7.0, WALL)) == [("submit", "", 1)]


@pytest.mark.parametrize(
    "first",
    [Ping(1), Write(1, Register("chris", Stamp(WALL, 0, "p"), ArcherState("C", "national")))],
)
def test_the_first_frame_must_be_hello(first: Ping | Write) -> None:
    session = RelaySession(0.0, LIMITS)
    actions = session.frame_received(encode(first), 0.0, WALL)
    assert actions == [
        End(Error("unexpected", "The first message must be hello.", fatal=True), CLOSE_POLICY)
    ]
    assert session.closed
    # Nothing after the end is read or answered, a hello included.
    assert session.frame_received(encode(HELLO), 0.0, WALL) == []
    assert session.refused("unknown_shoot", "No.", 4404) == []


def test_a_second_hello_ends_the_session() -> None:
    session = live()
    [end] = session.frame_received(encode(HELLO), 1.0, WALL)
    assert end == End(
        Error("unexpected", "This session has already said hello.", fatal=True), CLOSE_POLICY
    )
    assert session.closed


def test_no_hello_by_the_deadline_ends_the_session() -> None:
    session = RelaySession(100.0, LIMITS)
    assert session.next_timer == 110.0
    assert session.timer_fired(109.999) == []  # early: nothing yet
    assert session.phase is Phase.HELLO
    [end] = session.timer_fired(110.0)
    assert end == End(Error("timeout", "No hello arrived in time.", fatal=True), CLOSE_POLICY)
    assert session.closed
    assert session.next_timer == float("inf")


def test_the_deadline_does_not_end_a_session_that_said_hello() -> None:
    session = live(now=0.0)
    assert session.timer_fired(1_000.0) == []
    assert session.phase is Phase.LIVE


# -- frames that cannot be decoded -----------------------------------------------------------

UNDECODABLE = [
    pytest.param("hello", "malformed", CLOSE_PROTOCOL_ERROR, id="text"),
    pytest.param(b"\xff\x00garbage", "malformed", CLOSE_PROTOCOL_ERROR, id="not-cbor"),
    pytest.param(
        b"\x00" * (MAX_CLIENT_FRAME_BYTES + 1), "frame_too_large", CLOSE_TOO_BIG, id="too-big"
    ),
    pytest.param(
        cbor2.dumps({"v": 2, "type": "ping", "nonce": 1}),
        "unsupported_version",
        CLOSE_PROTOCOL_ERROR,
        id="version-2",
    ),
]


@pytest.mark.parametrize(("frame", "code", "close_code"), UNDECODABLE)
@pytest.mark.parametrize("phase", ["first", "live"])
def test_an_undecodable_frame_is_fatal_first_or_live(
    frame: bytes | str, code: str, close_code: int, phase: str
) -> None:
    session = RelaySession(0.0, LIMITS) if phase == "first" else live()
    [end] = session.frame_received(frame, 0.0, WALL)
    assert isinstance(end, End)
    assert (end.error.code, end.error.fatal, end.error.id, end.close_code) == (
        code,
        True,
        None,
        close_code,
    )
    assert end.error.message
    assert session.closed


# -- refusals from the access check and the actor ---------------------------------------------


def test_a_refused_hello_ends_with_the_code_it_was_given() -> None:
    session = RelaySession(0.0, LIMITS)
    session.frame_received(encode(HELLO), 0.0, WALL)
    message = "That archer id and token do not match."
    [end] = session.refused("unauthorized", message, CLOSE_UNAUTHORIZED)
    assert end == End(Error("unauthorized", message, fatal=True), CLOSE_UNAUTHORIZED)
    assert session.closed


def test_a_live_session_can_be_refused_too() -> None:
    """An actor that stops (restart, takeover) refuses the writes handed to it."""
    session = live()
    [end] = session.refused("unavailable", "Try again soon.", 1013)
    assert isinstance(end, End)
    assert end.close_code == 1013
    assert session.closed


@pytest.mark.parametrize("sv", [b"\x01\x80", b"\x02\x01\x01", b"\x00\x00"], ids=repr)
def test_a_hello_whose_state_vector_is_malformed_ends_before_authorising(sv: bytes) -> None:
    """The shoot's actor is never handed a state vector it cannot read: the machine ends
    the session itself (it was once the actor's decision)."""
    session = RelaySession(0.0, LIMITS)
    [end] = session.frame_received(encode(replace(HELLO, sv=sv)), 0.0, WALL)
    assert isinstance(end, End)
    assert (end.error.code, end.error.fatal, end.close_code) == (
        "invalid_state_vector",
        True,
        CLOSE_PROTOCOL_ERROR,
    )
    assert session.closed
    assert session.hello is None


def test_a_subscription_the_shoot_cannot_serve_is_refused() -> None:
    """The actor stopped (or the relay is closing) before it queued the welcome."""
    session = RelaySession(0.0, LIMITS)
    session.frame_received(encode(HELLO), 0.0, WALL)
    session.authorised("chris")
    [end] = session.refused("unavailable", "Try again soon.", 1013)
    assert isinstance(end, End)
    assert end.close_code == 1013
    assert session.closed


# -- writes ------------------------------------------------------------------------------------


def test_a_viewer_may_not_write() -> None:
    session = live(VIEWER, None)
    [answer] = session.frame_received(write(7), 0.0, WALL)
    assert answer == Answer(
        Error("read_only", "Viewers cannot write; join as an archer to score.", id=7)
    )
    assert not answer.message.fatal
    assert session.phase is Phase.LIVE


def test_an_archer_writes_only_its_own_register() -> None:
    session = live()
    assert codes(session.frame_received(write(1, "sam"), 0.0, WALL)) == [
        ("answer", "not_your_register", 1)
    ]
    assert codes(session.frame_received(write(2, "chris"), 0.0, WALL)) == [("submit", "", 2)]


def test_a_ping_is_answered_with_the_relays_wall_clock() -> None:
    session = live()
    assert session.frame_received(encode(Ping(42)), 3.0, WALL + 5) == [Answer(Pong(42, WALL + 5))]


# -- the write rate ----------------------------------------------------------------------------


def test_writes_over_the_burst_are_refused_until_the_bucket_refills() -> None:
    session = live(now=0.0)
    allowed = [session.frame_received(write(n), 0.0, WALL) for n in range(1, 21)]
    assert all(codes(a) == [("submit", "", n)] for n, a in enumerate(allowed, 1))
    assert codes(session.frame_received(write(21), 0.0, WALL)) == [("answer", "rate_limited", 21)]
    # 10 per second: one token back after 0.1 s, and only one.
    assert codes(session.frame_received(write(22), 0.1, WALL)) == [("submit", "", 22)]
    assert codes(session.frame_received(write(23), 0.1, WALL)) == [("answer", "rate_limited", 23)]
    assert session.phase is Phase.LIVE


@pytest.mark.parametrize(
    ("hello", "archer_id", "other"),
    [(VIEWER, None, "chris"), (HELLO, "chris", "sam")],
    ids=["viewer", "other-archer"],
)
def test_refused_writes_count_against_the_rate_limit(
    hello: Hello, archer_id: str | None, other: str
) -> None:
    """Answering a refusal costs the relay as much as answering a write: the 21st refused
    write in a burst is refused for rate, and so is a good write right after them."""
    session = live(hello, archer_id)
    refused = [codes(session.frame_received(write(n, other), 0.0, WALL)) for n in range(1, 21)]
    assert all(r == [("answer", refused[0][0][1], n)] for n, r in enumerate(refused, 1))
    assert codes(session.frame_received(write(21, other), 0.0, WALL)) == [
        ("answer", "rate_limited", 21)
    ]
    if archer_id is not None:
        assert codes(session.frame_received(write(22), 0.0, WALL)) == [
            ("answer", "rate_limited", 22)
        ]


def test_a_client_that_ignores_rate_limited_is_closed_with_4429() -> None:
    session = live(now=0.0)
    for n in range(20):
        session.frame_received(write(n), 0.0, WALL)
    for n in range(100, 100 + MAX_RATE_LIMITED):
        assert codes(session.frame_received(write(n), 0.0, WALL)) == [("answer", "rate_limited", n)]
    [end] = session.frame_received(write(999), 0.0, WALL)
    assert end == End(
        Error("rate_limited", "Too many writes; resend later.", id=999, fatal=True),
        CLOSE_RATE_LIMITED,
    )
    assert session.closed
    assert session.frame_received(write(1000), 0.0, WALL) == []


def test_one_rate_limited_write_is_forgiven_per_second() -> None:
    """A client that slows down after its refusals goes on: after 50 strikes, one second
    later, one more refusal is allowed (not the end) and the bucket has 10 writes again."""
    session = live(now=0.0)
    for n in range(20 + MAX_RATE_LIMITED):
        session.frame_received(write(n), 0.0, WALL)
    later = [codes(session.frame_received(write(n), 1.0, WALL)) for n in range(200, 211)]
    assert later[:10] == [[("submit", "", n)] for n in range(200, 210)]
    assert later[10] == [("answer", "rate_limited", 210)]  # the strike forgiven at 1.0 s
    [end] = session.frame_received(write(211), 1.0, WALL)
    assert isinstance(end, End)
    assert end.close_code == CLOSE_RATE_LIMITED


def test_the_rate_counts_from_the_subscription() -> None:
    session = RelaySession(0.0, SessionLimits(writes_burst=1, writes_per_s=1.0))
    session.frame_received(encode(HELLO), 0.0, WALL)
    session.authorised("chris")
    session.subscribed(50.0)
    assert codes(session.frame_received(write(1), 50.0, WALL)) == [("submit", "", 1)]
    assert codes(session.frame_received(write(2), 50.5, WALL)) == [("answer", "rate_limited", 2)]
    assert codes(session.frame_received(write(3), 51.0, WALL)) == [("submit", "", 3)]


# -- the driver's mistakes ------------------------------------------------------------------------


def test_events_out_of_order_are_the_drivers_bug() -> None:
    session = RelaySession(0.0, LIMITS)
    with pytest.raises(SessionMisuse):
        session.authorised("chris")  # no hello yet
    with pytest.raises(SessionMisuse):
        session.subscribed(0.0)
    session.frame_received(encode(HELLO), 0.0, WALL)
    with pytest.raises(SessionMisuse):
        session.frame_received(encode(Ping(1)), 0.0, WALL)  # nobody reads while authorising
    session.authorised("chris")
    with pytest.raises(SessionMisuse):
        session.authorised("chris")
    with pytest.raises(SessionMisuse):
        session.frame_received(encode(Ping(1)), 0.0, WALL)  # nor while subscribing
