"""Hostile ``hello`` and ``write`` frames through a live relay, while a shoot goes on.

``test_codec_fuzz.py`` proves the decoder returns a message or a ``ProtocolError``; this
proves the relay around it: every frame, valid, random or damaged, is answered exactly as
``docs/protocol.md`` says (the error code the pure decoder gives, then the documented close;
or a welcome or refusal for a hello that decodes; or one answer for a write that
decodes), the relay stays up, and an archer and a bystander subscriber of the same shoot
carry on throughout: every acknowledged write reaches the bystander.

Hypothesis runs in a worker thread and hands each example to the Trio loop that runs the
relay, so one relay and one bystander see every example and shrinking works as usual.
Frames start from valid ones and are damaged by :func:`tests.frame_damage.damaged`.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import trio
import trio_websocket
from hypothesis import HealthCheck, given, settings

from relay.refusals import REFUSALS
from sync.codec import decode_client, decode_server, encode
from sync.errors import ProtocolError
from sync.protocol import (
    CLOSE_POLICY,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_TOO_BIG,
    Ack,
    Error,
    Hello,
    Notice,
    Ping,
    Pong,
    ServerMessage,
    Superseded,
    Update,
    Welcome,
    Write,
)
from tests.frame_damage import damaged
from tests.wire import create_shoot, join, peer, register

pytestmark = pytest.mark.slow

#: Examples per test: a few seconds each on a loaded 2-core machine, shrinking aside.
EXAMPLES = 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: What one example may take; it never waits for a timer of the relay's.
EXAMPLE_TIMEOUT_S = 10.0

#: The documented close code after each fatal error a hello can get once it decodes.
#: (A state vector that does not read as one never decodes: the codec refuses it.)
HELLO_REFUSALS = {r.code: r.close_code for r in REFUSALS.values()}
#: The non-fatal errors that answer a write that decodes.
WRITE_REFUSALS = {
    "not_your_register",
    "invalid_name",
    "unknown_round",
    "invalid_profile",
    "too_many_arrows",
    "invalid_arrow",
    "clock_skew",
    "rate_limited",
}


# -- talking to the relay ----------------------------------------------------------------


@dataclass
class Outcome:
    """What the relay sent after the frame under test, and how the connection ended."""

    messages: list[ServerMessage] = field(default_factory=list)
    close_code: int | None = None
    """``None`` when the test closed the connection itself, after an answer."""


_addresses = itertools.count(1)


@asynccontextmanager
async def _connect_from_a_new_address(
    port: int,
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """A WebSocket to the relay from an address of 127.0.0.0/8 no example used before.

    Failed hellos count against the client's address; from one address the throttle
    would soon answer every hello with ``throttled``, before the relay got to the rest.
    """
    n = next(_addresses)
    sock = trio.socket.socket()
    try:
        # Where only 127.0.0.1 is configured (macOS), hellos may be throttled instead.
        with contextlib.suppress(OSError):
            await sock.bind((f"127.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255 or 1}", 0))
        await sock.connect(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    stream = trio.SocketStream(sock)
    async with trio.open_nursery() as nursery:
        ws = await trio_websocket.wrap_client_stream(nursery, stream, "127.0.0.1", "/ws")
        try:
            yield ws
        finally:
            await ws.aclose()
            await stream.aclose()


async def _exchange(
    port: int,
    frame: bytes | str,
    answered: Callable[[ServerMessage], bool],
    before: Hello | None = None,
) -> Outcome:
    """Connect, say ``before`` (and wait for the welcome), send ``frame``, and read until
    the relay closes the connection or sends a message ``answered`` accepts."""
    outcome = Outcome()
    async with _connect_from_a_new_address(port) as ws:
        if before is not None:
            await ws.send_message(encode(before))
            assert isinstance(decode_server(await ws.get_message()), Welcome)
        try:
            await ws.send_message(frame)
            while True:
                message = decode_server(await ws.get_message())
                outcome.messages.append(message)
                if answered(message):
                    return outcome
        except trio_websocket.ConnectionClosed as closed:
            outcome.close_code = closed.reason.code
    return outcome


def _expected_decoding(frame: bytes | str) -> ProtocolError | Any:
    """What the pure decoder makes of the frame: the reference for the relay's answer."""
    if isinstance(frame, str):
        return ProtocolError("malformed", "text")
    try:
        return decode_client(frame)
    except ProtocolError as exc:
        return exc


def _check_undecodable(frame: bytes | str, error: ProtocolError, outcome: Outcome) -> None:
    errors = [m for m in outcome.messages if isinstance(m, Error)]
    assert [(e.code, e.fatal, e.id) for e in errors] == [(error.code, True, None)]
    assert errors[0].message
    expected_close = CLOSE_TOO_BIG if error.code == "frame_too_large" else CLOSE_PROTOCOL_ERROR
    assert outcome.close_code == expected_close


# -- the shoot that goes on --------------------------------------------------------------


@dataclass
class LiveShoot:
    """A shoot with a writing archer and a bystander viewer, watched during the fuzz."""

    code: str
    archer: str
    archer_token: str
    other: str
    other_token: str
    acked: list[tuple[Any, ...]] = field(default_factory=list)
    seen_by_bystander: list[tuple[Any, ...]] = field(default_factory=list)
    stop: trio.Event = field(default_factory=trio.Event)

    async def keep_scoring(self, relay_url: str) -> None:
        """Write an end every 150 ms (under the rate limit), each acknowledged."""
        async with peer(relay_url, self.code, archer=self.archer, token=self.archer_token) as me:
            await me.expect(Welcome)
            n = 0
            while not self.stop.is_set():
                n += 1
                arrows = (9, 7, 5) * (n % 20 + 1)
                await me.write(n, register(self.archer, arrows, device="phone"))
                with trio.fail_after(EXAMPLE_TIMEOUT_S):
                    answer = await me.expect(Ack | Error)  # type: ignore[arg-type]
                assert isinstance(answer, Ack), answer
                self.acked.append(arrows)
                with trio.move_on_after(0.15):
                    await self.stop.wait()

    async def watch(self, relay_url: str, *, task_status: trio.TaskStatus[None]) -> None:
        async with peer(relay_url, self.code) as bystander:
            await bystander.expect(Welcome)
            task_status.started()
            while True:
                await bystander.expect(Update)
                state = bystander.doc.registers().get(self.archer)
                if state is not None:
                    self.seen_by_bystander.append(state.state.arrows)


async def _open_shoot(relay_url: str) -> LiveShoot:
    async with httpx.AsyncClient(base_url=relay_url) as http:
        code = (await create_shoot(http))["code"]
        archer, archer_token = await join(http, code, "Chris")
        other, other_token = await join(http, code, "Alex")
    return LiveShoot(code, archer, archer_token, other, other_token)


async def _fuzz_beside_a_live_shoot(
    relay_url: str, run_examples: Callable[[LiveShoot], None]
) -> None:
    shoot = await _open_shoot(relay_url)
    with trio.fail_after(120):  # ~20 s expected; the bound is for a hang
        async with trio.open_nursery() as nursery:
            await nursery.start(shoot.watch, relay_url)
            nursery.start_soon(shoot.keep_scoring, relay_url)
            await trio.to_thread.run_sync(run_examples, shoot)
            shoot.stop.set()
            # The last acknowledged end reaches the bystander too.
            while len(shoot.acked) < 3 or shoot.seen_by_bystander[-1:] != shoot.acked[-1:]:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    # The archer kept scoring throughout, and the bystander saw every acknowledged end
    # (in order; a resync could only merge some, and the bystander never fell behind).
    assert all(arrows in shoot.seen_by_bystander for arrows in shoot.acked)
    async with httpx.AsyncClient(base_url=relay_url) as http:
        assert (await http.get("/health")).status_code == 200


def _on_trio(fn: Callable[..., Any], *args: Any) -> Any:
    """Run one example's coroutine on the relay's Trio loop, from hypothesis's thread."""

    async def bounded() -> Any:
        with trio.fail_after(EXAMPLE_TIMEOUT_S):
            return await fn(*args)

    return trio.from_thread.run(bounded)


# -- the tests ---------------------------------------------------------------------------


async def test_damaged_hellos_are_answered_as_documented(relay_url: str) -> None:
    port = int(relay_url.rsplit(":", 1)[1])

    def run_examples(shoot: LiveShoot) -> None:
        valid = [
            encode(Hello(shoot.code, "viewer")),
            encode(Hello(shoot.code, "archer", b"\x00", shoot.other, shoot.other_token)),
            encode(Hello(shoot.code, "archer", b"\x00", shoot.other, "not-the-token")),
            encode(Ping(7)),
        ]

        @FUZZ
        @given(frame=damaged(valid))
        def example(frame: bytes | str) -> None:
            outcome = _on_trio(_exchange, port, frame, lambda m: isinstance(m, Welcome))
            expected = _expected_decoding(frame)
            if isinstance(expected, ProtocolError):
                _check_undecodable(frame, expected, outcome)
            elif not isinstance(expected, Hello):
                assert [(m.code, m.fatal) for m in outcome.messages] == [("unexpected", True)]  # type: ignore[union-attr]
                assert outcome.close_code == CLOSE_POLICY
            elif isinstance(outcome.messages[-1], Welcome):
                assert len(outcome.messages) == 1
                assert outcome.close_code is None
            else:
                # A refusal: an unknown shoot, a wrong token, too many failed hellos.
                error = outcome.messages[-1]
                assert isinstance(error, Error)
                assert error.fatal
                assert outcome.close_code == HELLO_REFUSALS[error.code]

        example()

    await _fuzz_beside_a_live_shoot(relay_url, run_examples)


async def test_damaged_writes_are_answered_as_documented(relay_url: str) -> None:
    port = int(relay_url.rsplit(":", 1)[1])

    def run_examples(shoot: LiveShoot) -> None:
        hello = Hello(shoot.code, "archer", b"\x00", shoot.other, shoot.other_token)
        valid = [
            encode(Write(3, register(shoot.other, (9, 7), device="tablet"))),
            encode(
                Write(4, register(shoot.other, ("X", 10, "M"), device="tablet", round="wa720_70"))
            ),
            encode(Write(5, register(shoot.archer, (9,), device="tablet"))),  # not theirs
        ]

        def answered(message: ServerMessage) -> bool:
            # A fatal error is followed by the close, which the check needs too.
            if isinstance(message, Error):
                return not message.fatal
            return isinstance(message, Ack | Superseded | Pong)

        @FUZZ
        @given(frame=damaged(valid))
        def example(frame: bytes | str) -> None:
            outcome = _on_trio(_exchange, port, frame, answered, hello)
            expected = _expected_decoding(frame)
            # The shoot's updates and notices reach this session too.
            answers = [m for m in outcome.messages if not isinstance(m, Update | Notice)]
            if isinstance(expected, ProtocolError):
                _check_undecodable(frame, expected, outcome)
            elif isinstance(expected, Hello):
                assert [(m.code, m.fatal) for m in answers] == [("unexpected", True)]  # type: ignore[union-attr]
                assert outcome.close_code == CLOSE_POLICY
            elif isinstance(expected, Ping):
                assert answers == [Pong(expected.nonce, answers[0].server_ms)]  # type: ignore[union-attr]
            else:
                assert isinstance(expected, Write)
                assert outcome.close_code is None
                assert len(answers) == 1
                answer = answers[0]
                assert getattr(answer, "id", None) == expected.id
                if isinstance(answer, Error):
                    assert not answer.fatal
                    assert answer.code in WRITE_REFUSALS
                    if expected.register.archer_id != shoot.other:
                        assert answer.code == "not_your_register"

        example()

    await _fuzz_beside_a_live_shoot(relay_url, run_examples)


def test_the_ci_profile_makes_failures_replayable() -> None:
    ci = settings.get_profile("ci")
    assert ci.print_blob
    assert ci.derandomize
    assert ci.deadline is None


def test_damaged_keeps_most_frames_decodable_enough_to_reach_the_relay() -> None:
    # Guards the generator: if every damaged frame were plain garbage, the tests above
    # would only ever exercise the first step of decoding.
    valid = [encode(Write(3, register("a1", (9, 7), device="tablet")))]
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, database=None)
    @given(frame=damaged(valid))
    def collect(frame: bytes | str) -> None:
        result = _expected_decoding(frame)
        seen.add(result.code if isinstance(result, ProtocolError) else type(result).__name__)

    collect()
    assert {"Write", "malformed", "invalid_field", "frame_too_large"} <= seen
