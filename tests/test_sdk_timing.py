"""The SDK's timers against a fake relay on loopback: heartbeats, resends, rate limits, pacing.

The fake relay (:class:`tests.sdk_fixtures.FakeRelay`) is a real WebSocket server that
misbehaves on cue; a real relay never goes silent or loses an answer when asked to.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import trio

from clients import (
    ClientOptions,
    ConnectionState,
    NoticeReceived,
    ShootClient,
    WriteAcked,
    WriteRefused,
    connect,
)
from clients._outbox import Outbox
from sync.clock import Stamp
from sync.limits import WRITES_BURST, WRITES_PER_S, TokenBucket
from sync.models import ArcherState
from sync.protocol import ClientMessage, Error, Hello, Notice, Ping, Write
from sync.register import Register
from tests.sdk_fixtures import (
    FakeRelay,
    FakeSession,
    ack,
    fake_identity,
    well_behaved,
)

E = TypeVar("E")

#: A frame the fake relay sends after the answers a test waits for: the client handles
#: frames in order, so once its event is out, so are theirs.
DONE = Notice("digest", "national", "a00", "Done.", None, None, None, 0)

#: Slack for scheduling on a busy machine, on top of each bound the SDK promises.
SLACK_S = 1.0


def quick(**timings: float) -> ClientOptions:
    base: dict[str, float] = {
        "ping_interval_s": 30.0,
        "pong_timeout_s": 30.0,
        "resend_after_s": 30.0,
        "connect_timeout_s": 2.0,
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.1,
    }
    return ClientOptions(**{**base, **timings})  # type: ignore[arg-type]


def events_of(client: ShootClient, kind: type[E]) -> list[E]:
    """Take every queued event; keep those of ``kind``."""
    found: list[E] = []
    while (event := client.events.get_nowait()) is not None:
        if isinstance(event, kind):
            found.append(event)
    return found


async def silent(session: FakeSession, message: ClientMessage) -> None:
    """Welcome the first session, then never send anything again on it."""
    if isinstance(message, Hello):
        if session.number == 1:
            await session.welcome(message)
        else:
            await well_behaved(session, message)
    elif session.number > 1:
        await well_behaved(session, message)


async def test_a_silent_connection_is_noticed_within_the_timeout_and_reconnected(
    nursery: trio.Nursery,
) -> None:
    fake = FakeRelay(silent)
    url = await fake.start(nursery)
    options = quick(ping_interval_s=0.2, pong_timeout_s=0.3)
    with trio.fail_after(10):
        async with connect(url, fake.code, options=options) as client:
            await client.wait_connected()
            with trio.fail_after(options.ping_interval_s + options.pong_timeout_s + SLACK_S):
                await client.wait_until(lambda c: c.state is not ConnectionState.CONNECTED)
            assert client.error is not None
            assert client.error.code == "heartbeat_timeout"
            assert fake.frames(Ping, session=1)  # it asked before giving up
            await client.wait_until(lambda c: c.connections == 2)
            assert len(client.reconnect_delays) == 1
            assert fake.sessions == 2


async def test_a_silent_connection_is_noticed_even_while_writes_are_resent(
    nursery: trio.Nursery,
) -> None:
    # Resending every 0.1 s means the client never stops sending: silence on the way in
    # must still count.
    fake = FakeRelay(silent)
    url = await fake.start(nursery)
    options = quick(ping_interval_s=0.3, pong_timeout_s=0.3, resend_after_s=0.1)
    with trio.fail_after(10):
        async with connect(url, fake.code, identity=fake_identity(url), options=options) as c:
            await c.wait_connected()
            await c.score_end([9, 9, 7, 7, 5, "M"])
            with trio.fail_after(options.ping_interval_s + options.pong_timeout_s + SLACK_S):
                await c.wait_until(lambda c: c.state is not ConnectionState.CONNECTED)
            assert c.error is not None
            assert c.error.code == "heartbeat_timeout"
            assert len(fake.frames(Write, session=1)) >= 2  # resent meanwhile
            await c.wait_synced()  # the second session acknowledges it
            assert c.connections == 2


async def test_a_write_whose_answer_is_lost_is_resent_on_the_same_connection(
    nursery: trio.Nursery,
) -> None:
    async def lose_the_first_answer(session: FakeSession, message: ClientMessage) -> None:
        if isinstance(message, Write) and len(fake.frames(Write)) == 1:
            return
        await well_behaved(session, message)

    fake = FakeRelay(lose_the_first_answer)
    url = await fake.start(nursery)
    options = quick(resend_after_s=0.3)
    with trio.fail_after(10):
        async with connect(url, fake.code, identity=fake_identity(url), options=options) as c:
            await c.wait_connected()
            before = trio.current_time()  # the first send cannot be earlier
            written = await c.score_end([9, 9, 7, 7, 5, "M"])
            await c.wait_synced()
            assert c.connections == 1
            first, second = (r.message for r in fake.frames(Write))
            assert isinstance(first, Write)
            assert isinstance(second, Write)
            assert first.register == second.register == written  # the same write, again
            assert first.id != second.id
            assert fake.frames(Write)[1].at - before >= options.resend_after_s
            assert [e.register for e in events_of(c, WriteAcked)] == [written]


async def test_an_ack_that_comes_after_a_newer_write_still_reports_the_older_write_durable(
    nursery: trio.Nursery,
) -> None:
    """An archer scoring faster than acks come back: the ack names a write the outbox has
    already replaced. That write is durable all the same and is reported; each write once,
    though a resent write is answered once per copy."""
    held: list[Write] = []

    async def answer_late(session: FakeSession, message: ClientMessage) -> None:
        if not isinstance(message, Write):
            await well_behaved(session, message)
            return
        held.append(message)
        if len(held) == 3:  # the first write, the newer one, and one of them resent
            for write in held:
                await session.send(ack(write))
            await session.send(DONE)  # every answer is in before this

    fake = FakeRelay(answer_late)
    url = await fake.start(nursery)
    options = quick(resend_after_s=0.2)
    with trio.fail_after(10):
        async with connect(url, fake.code, identity=fake_identity(url), options=options) as c:
            await c.wait_connected()
            first = await c.score_arrow(9)
            await fake.wait_until(lambda f: len(f.frames(Write)) == 1)
            second = await c.score_arrow(7)
            acked: list[Register] = []
            while not isinstance(event := await c.events.get(), NoticeReceived):
                if isinstance(event, WriteAcked):
                    acked.append(event.register)
            assert acked == [first, second]
            assert not c.pending


async def test_rate_limited_keeps_the_write_and_sends_it_again_soon(
    nursery: trio.Nursery,
) -> None:
    release = trio.Event()

    async def refuse_then_ack(session: FakeSession, message: ClientMessage) -> None:
        if isinstance(message, Write):
            if len(fake.frames(Write)) == 1:
                await session.send(Error("rate_limited", "Slow down.", id=message.id))
                return
            await release.wait()
            await session.send(ack(message))
            return
        await well_behaved(session, message)

    fake = FakeRelay(refuse_then_ack)
    url = await fake.start(nursery)
    # A resend timer this long cannot be what sends it again within the test's deadline.
    options = quick(resend_after_s=60.0)
    with trio.fail_after(10):
        async with connect(url, fake.code, identity=fake_identity(url), options=options) as c:
            await c.wait_connected()
            written = await c.score_end([9, 9, 7, 7, 5, "M"])
            await fake.wait_until(lambda f: len(f.frames(Write)) == 2)
            assert c.pending == [written]  # still in the outbox after the refusal
            assert events_of(c, WriteRefused) == []
            first, second = fake.frames(Write)
            assert second.message.register == written  # type: ignore[union-attr]
            # Sent again once the relay's bucket has a token again, not at once.
            assert second.at - first.at >= 0.9 / WRITES_PER_S
            release.set()
            await c.wait_synced()
            assert c.pending == []
            assert c.connections == 1


async def test_replaying_a_long_outbox_is_paced_to_the_relays_limit(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    count = WRITES_BURST + 15
    path = tmp_path / "outbox.json"
    saved = Outbox(path)
    for n in range(count):  # an outbox holding many registers' writes
        state = ArcherState(f"Archer {n}", "national", arrows=(9,) * 6)
        saved.put(Register(f"a{n:02}", Stamp(1_000 + n, 0, "py-test"), state))
    saved.save()

    fake = FakeRelay()
    url = await fake.start(nursery)
    with trio.fail_after(15):
        async with connect(
            url, fake.code, identity=fake_identity(url), outbox_path=path, options=quick()
        ) as c:
            assert len(c.pending) == count
            await c.wait_synced()
    (hello,) = fake.frames(Hello)
    writes = fake.frames(Write)
    assert [w.message.register.archer_id for w in writes] == [  # type: ignore[union-attr]
        f"a{n:02}" for n in range(count)
    ]  # each once, oldest first
    # The client's bucket starts full when the welcome arrives, after the hello did, and
    # a frame arrives after it was sent: so write k cannot arrive before this, however
    # the frames are delayed or bunched on the way.
    for k, write in enumerate(writes, start=1):
        earliest = hello.at + max(0, k - WRITES_BURST) / WRITES_PER_S
        assert write.at >= earliest, (k, write.at - hello.at)
    # The burst is not paced, and the rest is not much slower than the limit allows.
    assert writes[WRITES_BURST - 1].at - hello.at < (WRITES_BURST - 1) / WRITES_PER_S / 2
    assert writes[-1].at - hello.at <= (count - WRITES_BURST) / WRITES_PER_S + SLACK_S


async def test_a_replay_paced_like_the_relay_is_not_refused(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    # The relay's own rule, applied by the fake: a bucket per connection, full at hello.
    # (Frames bunched on the way can still meet an empty bucket; the rate_limited path
    # above recovers those, so this test allows a couple.)
    refused: list[int] = []
    bucket = TokenBucket(WRITES_BURST, WRITES_PER_S)

    async def limit_like_the_relay(session: FakeSession, message: ClientMessage) -> None:
        nonlocal bucket
        if isinstance(message, Hello):
            bucket = TokenBucket(WRITES_BURST, WRITES_PER_S, updated=trio.current_time())
        if isinstance(message, Write) and not bucket.try_take(trio.current_time()):
            refused.append(message.id)
            await session.send(Error("rate_limited", "Slow down.", id=message.id))
            return
        await well_behaved(session, message)

    count = WRITES_BURST + 10
    path = tmp_path / "outbox.json"
    saved = Outbox(path)
    for n in range(count):
        state = ArcherState(f"Archer {n}", "national", arrows=(9,) * 6)
        saved.put(Register(f"a{n:02}", Stamp(1_000 + n, 0, "py-test"), state))
    saved.save()

    fake = FakeRelay(limit_like_the_relay)
    url = await fake.start(nursery)
    with trio.fail_after(15):
        async with connect(
            url, fake.code, identity=fake_identity(url), outbox_path=path, options=quick()
        ) as c:
            await c.wait_synced()
            assert c.connections == 1
    assert len(refused) <= 2, refused  # unpaced, 10 of these would be refused


async def test_a_relay_that_never_answers_hello_again_is_retried_not_fatal(
    nursery: trio.Nursery,
) -> None:
    async def mute_second_session(session: FakeSession, message: ClientMessage) -> None:
        if session.number == 1 and isinstance(message, Hello):
            await session.welcome(message)
            await session.ws.aclose(1001)  # going away
        elif session.number >= 3:
            await well_behaved(session, message)

    fake = FakeRelay(mute_second_session)
    url = await fake.start(nursery)
    # Long enough that a slow first handshake on a loaded machine is not itself a timeout:
    # only the mute second session must run into it.
    options = quick(connect_timeout_s=1.0)
    with trio.fail_after(10):
        async with connect(url, fake.code, options=options) as client:
            await client.wait_until(lambda c: c.connections == 2)
            assert fake.sessions == 3
            timeouts = [
                e
                for e in events_of(client, object)
                if getattr(getattr(e, "error", None), "code", None) == "timeout"
            ]
            assert timeouts  # session 2 ended by the welcome timeout, and was retried
