"""The live client: a replica of one shoot, a durable outbox, and the connection loop.

Theory of operation
-------------------
A :class:`ShootClient` holds three things:

* a **replica** of the shoot's document (:class:`~sync.document.ShootDocument`), changed
  only by updates from the relay;
* the **outbox** (:mod:`clients._outbox`): this device's writes the relay has not yet
  acknowledged, newest per register, on disk;
* a **hybrid clock** that stamps writes and observes every stamp the device sees.

What the user sees (:attr:`ShootClient.registers`, :attr:`ShootClient.leaderboard`) is the
replica overlaid with the outbox, register by register, by the merge: a write shows at
once, online or not, and disappears into the replica's copy once the relay has it.

The connection loop (:meth:`ShootClient.run`) repeats: open the WebSocket, send ``hello``
with the replica's state vector, apply the ``welcome`` (starting a fresh replica when
``reset``, counted in :attr:`ShootClient.resets`), then read until the connection ends.
Two helper tasks run beside the reader:

* the **heartbeat**: a ``ping`` once nothing has been sent, *or* nothing received, for
  ``ping_interval_s``; the connection is dead if nothing arrives within
  ``pong_timeout_s`` of it. So a connection silent for ``ping_interval_s +
  pong_timeout_s`` is noticed even while writes keep going out. Every send (the
  heartbeat's too) is bounded by ``pong_timeout_s`` as well, lock wait included: a relay
  that stops reading the socket would otherwise block a send, and with it the heartbeat,
  for ever (``send_timeout``; see :meth:`ShootClient._send`).
* the **sender**, the only task that sends writes: it sends every pending write that is
  due (never sent on this connection, re-stamped, or unanswered for ``resend_after_s``),
  oldest first, through a token bucket that mirrors the relay's (a burst of
  :data:`~sync.limits.WRITES_BURST`, then :data:`~sync.limits.WRITES_PER_S`), so
  replaying a long outbox after a reconnect is paced instead of refused. The replay runs
  beside the reader, which keeps reading answers and updates meanwhile.

Between attempts the loop waits a delay from :class:`~clients._backoff.Backoff` (full
jitter); it stops for good after the relay closes with 4401, 4404 or 4410.

Answers to writes: ``ack`` with the pending write's stamp removes it from the outbox (an
``ack`` of an older write, replaced there by a newer one meanwhile, is still reported:
that write is durable);
``superseded`` adopts the winner (an event says so) and drops the pending write if the
winner is at least as new; ``error`` ``clock_skew`` corrects the clock from the relay's
time and re-stamps the same state; ``rate_limited`` keeps the write, empties the sender's
bucket (the relay's is empty) and sends it again when a token is back; any other error
drops the write and reports it.

Cancellation: writes are saved to the outbox in a worker thread that is not abandoned on
cancel, so a write the caller saw return is on disk, and one cancelled mid-save is either
wholly there or not.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import trio

from sync.clock import HybridClock, Stamp
from sync.codec import decode_server, encode
from sync.document import ShootDocument
from sync.leaderboard import Leaderboard, build_leaderboard
from sync.limits import WRITES_BURST, WRITES_PER_S, TokenBucket
from sync.models import ArcherState, Shoot
from sync.protocol import (
    MAX_SERVER_FRAME_BYTES,
    Ack,
    ClientMessage,
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
from sync.register import Register, merge
from sync.rounds import Arrow
from sync.wall import system_wall_ms

from ._backoff import Backoff
from ._errors import (
    NotJoined,
    RelayUnreachable,
    ShootError,
    ShootExpired,
    Unauthorized,
    UnknownShoot,
    error_for_code,
    translate,
)
from ._events import (
    ConnectionChanged,
    ConnectionState,
    Event,
    EventQueue,
    NoticeReceived,
    RegistersChanged,
    WriteAcked,
    WriteRefused,
    WriteSuperseded,
)
from ._identity import Identity, new_device_id
from ._outbox import Outbox, write_atomically
from ._scoring import add_arrows, checked, without_last_arrow
from ._transport import open_socket

__all__ = ["ClientOptions", "ShootClient", "connect", "system_wall_ms"]

_FATAL: Final = (UnknownShoot, ShootExpired, Unauthorized)


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Timings of the connection loop; the defaults follow ``docs/protocol.md``."""

    ping_interval_s: float = 15.0
    """Send a ``ping`` after this long without sending, or without receiving, anything."""
    pong_timeout_s: float = 10.0
    """The connection is dead if nothing arrives this long after a ``ping``, or if one
    frame cannot be sent within it (the relay has stopped reading)."""
    resend_after_s: float = 10.0
    """Send an unanswered write again after this long (on the same connection)."""
    connect_timeout_s: float = 10.0
    """Give up on one attempt (WebSocket handshake, then ``welcome``) after this long."""
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    event_queue_size: int = 256
    """Events kept for the user before the oldest are dropped (see :attr:`ShootClient.events`)."""


def websocket_url(relay_url: str) -> str:
    """The relay's WebSocket endpoint for its HTTP origin."""
    base = relay_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return base + "/ws"


class ShootClient:
    """A live replica of one shoot, as a viewer or as one archer's device.

    Use :func:`connect`, which runs the connection loop in the background::

        async with connect(url, "4821", identity=me, outbox_path=path) as client:
            await client.score_end([9, 9, 7, 7, 5, "M"])   # shows at once, even offline
            await client.wait_synced()                       # acked by the relay

    Args:
        relay_url: The relay's HTTP origin.
        code: The shoot's code.
        identity: The archer this device writes as; ``None`` for a read-only viewer.
        outbox_path: The file that keeps unacknowledged writes across restarts; ``None``
            keeps them in memory only.
        options: Timings of the connection loop.
        wall_clock: The device's wall clock in ms (inject a skewed one in tests).
        rng: Random source for the backoff jitter.

    Raises:
        ShootError: ``outbox_corrupt`` if the outbox file cannot be read.
    """

    def __init__(
        self,
        relay_url: str,
        code: str,
        *,
        identity: Identity | None = None,
        outbox_path: Path | None = None,
        options: ClientOptions | None = None,
        wall_clock: Callable[[], int] = system_wall_ms,
        rng: random.Random | None = None,
    ) -> None:
        self.relay_url = relay_url
        self.code = code
        self.identity = identity
        self.options = options or ClientOptions()
        self._wall = wall_clock
        self._ws_url = websocket_url(relay_url)
        self._doc = ShootDocument()
        self._outbox = Outbox(outbox_path)
        device_id = identity.device_id if identity else new_device_id("viewer")
        self._clock = HybridClock(device_id)
        for stamp in self._known_stamps():
            self._clock.observe(stamp)
        self.events = EventQueue(self.options.event_queue_size)
        """Changes and notices, oldest first; bounded (see :class:`EventQueue`)."""
        self.backoff = Backoff(self.options.backoff_base_s, self.options.backoff_cap_s)
        if rng is not None:
            self.backoff.rng = rng
        self.shoot: Shoot | None = None
        """The shoot's metadata, once a ``welcome`` has arrived."""
        self.state = ConnectionState.WAITING
        self.error: ShootError | None = None
        """Why the last connection attempt ended (or why the client stopped)."""
        self.connections = 0
        """Sessions that reached ``welcome`` so far."""
        self.resets = 0
        """Welcomes that said ``reset``: the relay had lost items this replica held (it
        stopped before Redis had them), so the replica was replaced by the relay's full
        state. Pending writes are resent as after any reconnect, so nothing is lost."""
        self._scope = trio.CancelScope()
        self._changed = trio.Event()
        self._send_lock = trio.Lock()
        self._write_lock = trio.Lock()
        self._save_lock = trio.Lock()
        self._next_id = 0
        self._nonce = 0
        self._inflight: dict[int, Register] = {}
        # Per archer, the newest of this device's writes the relay has acknowledged.
        self._acked: dict[str, Register] = {}
        # Per connection: archer id -> (stamp sent, when), and the sender's token bucket.
        self._sent: dict[str, tuple[Stamp, float]] = {}
        self._bucket = TokenBucket(WRITES_BURST, WRITES_PER_S)
        self._sender_wake = trio.Event()
        self._last_sent = self._last_received = 0.0

    # -- what the user reads -------------------------------------------------------------

    @property
    def archer_id(self) -> str | None:
        return self.identity.archer_id if self.identity else None

    @property
    def registers(self) -> dict[str, Register]:
        """Every archer's register: the replica, overlaid with this device's newer writes."""
        registers = self._doc.registers()
        if self.archer_id is not None:
            own = self._outbox.seen(self.archer_id)
            registers[self.archer_id] = merge(registers.get(self.archer_id), own)  # type: ignore[assignment]
        for pending in self._outbox.pending():
            registers[pending.archer_id] = merge(registers.get(pending.archer_id), pending)  # type: ignore[assignment]
        return {k: v for k, v in registers.items() if v is not None}

    def register(self, archer_id: str | None = None) -> Register | None:
        """One archer's visible register (this device's archer by default)."""
        archer_id = archer_id or self.archer_id
        return None if archer_id is None else self.registers.get(archer_id)

    @property
    def leaderboard(self) -> Leaderboard:
        """The leaderboard as this device sees it, its own pending writes included."""
        return build_leaderboard(self.registers.values())

    @property
    def pending(self) -> list[Register]:
        """Writes not yet acknowledged by the relay, oldest first."""
        return self._outbox.pending()

    @property
    def reconnect_delays(self) -> list[float]:
        """The most recent backoff delays drawn, newest last."""
        return list(self.backoff.history)

    async def wait_until(self, predicate: Callable[[ShootClient], bool]) -> None:
        """Wait until ``predicate(self)`` holds; it is re-checked after every change."""
        while not predicate(self):
            await self._changed.wait()

    async def wait_connected(self) -> None:
        """Wait for a ``welcome``.

        Raises:
            ShootError: the client stopped for good (e.g. :class:`UnknownShoot`).
        """
        await self.wait_until(
            lambda c: c.state in (ConnectionState.CONNECTED, ConnectionState.CLOSED)
        )
        self._raise_if_closed()

    async def wait_synced(self) -> None:
        """Wait until connected with an empty outbox (every write acknowledged).

        Raises:
            ShootError: the client stopped for good before that.
        """
        await self.wait_until(
            lambda c: (
                (c.state is ConnectionState.CONNECTED and not len(c._outbox))
                or c.state is ConnectionState.CLOSED
            )
        )
        self._raise_if_closed()

    def _raise_if_closed(self) -> None:
        if self.state is ConnectionState.CLOSED:
            raise self.error or ShootError("closed", "The client is closed.")

    # -- writes --------------------------------------------------------------------------

    async def score_end(self, arrows: Sequence[Arrow | str]) -> Register:
        """Score one end (``[9, 9, 7, 7, 5, "M"]``; strings such as ``"x"`` are accepted).

        The write shows at once in :attr:`leaderboard` and is in the outbox when this
        returns; it reaches the relay when the client is connected.

        Raises:
            InvalidScore: an arrow the round does not allow, more arrows than fit in the
                end or the round, or the score sheet is finished.
            NotJoined: a viewer, or a device that has never seen its archer's state.
        """
        return await self._write(lambda s: add_arrows(s, arrows, whole_end=True))

    async def score_arrow(self, value: Arrow | str) -> Register:
        """Score one arrow. Raises as :meth:`score_end`."""
        return await self._write(lambda s: add_arrows(s, [value], whole_end=False))

    async def undo(self) -> Register:
        """Take back the last arrow."""
        return await self._write(without_last_arrow)

    async def change_round(self, round: str, *, keep_arrows: bool = True) -> Register:
        """Switch to another round (archeryutils code name, e.g. ``"york"``).

        Raises:
            InvalidScore: ``unknown_round``, or arrows the new round does not allow
                (pass ``keep_arrows=False`` to start the new round afresh).
        """
        return await self._write(
            lambda s: checked(replace(s, round=round, arrows=s.arrows if keep_arrows else ()))
        )

    async def finish(self) -> Register:
        """Mark the score sheet final."""
        return await self._write(lambda s: replace(s, finished=True))

    async def leave(self) -> Register:
        """Leave the shoot (the archer disappears from the leaderboard)."""
        return await self._write(lambda s: replace(s, left=True))

    async def restore(self, state: ArcherState) -> Register:
        """Write ``state`` as the archer's newest, e.g. a :class:`WriteSuperseded`'s
        ``lost.state`` the archer wants back; it replaces the current state as a new write.

        Raises:
            InvalidScore: the state breaks its round's rules.
        """
        return await self._write(lambda _: checked(state))

    async def _write(self, change: Callable[[ArcherState], ArcherState]) -> Register:
        identity = self.identity
        if identity is None:
            raise NotJoined("read_only", "Viewers cannot score; join the shoot as an archer.")
        async with self._write_lock:
            current = self.register()
            base = current.state if current is not None else identity.initial
            if base is None:
                raise NotJoined(
                    "no_state",
                    "This device has not seen the archer's scores yet; connect to the relay once.",
                )
            state = change(base)
            register = Register(identity.archer_id, self._clock.now(self._wall()), state)
            self._outbox.put(register)
            await self._save()
            self._emit(RegistersChanged(frozenset({identity.archer_id}), "local"))
            self._sender_wake.set()  # the sender sends it at once when connected
            return register

    # -- the connection loop -------------------------------------------------------------

    def close(self) -> None:
        """Stop the connection loop; pending writes stay in the outbox file."""
        self._scope.cancel()
        self._set_state(ConnectionState.CLOSED, self.error)

    async def run(self) -> None:
        """Connect, stay connected, reconnect with backoff; until closed or refused."""
        attempt = 0
        with self._scope:
            while True:
                self._set_state(ConnectionState.CONNECTING, self.error)
                connections = self.connections
                try:
                    await self._session()
                except Exception as exc:
                    error = translate(exc, self.relay_url)
                    if error is None:
                        raise
                else:  # pragma: no cover - a session only ends by an exception
                    error = RelayUnreachable("disconnected", "The connection ended.")
                if self.connections > connections:
                    attempt = 0
                if isinstance(error, _FATAL):
                    self._set_state(ConnectionState.CLOSED, error)
                    return
                self._set_state(ConnectionState.WAITING, error)
                await trio.sleep(self.backoff.delay(attempt))
                attempt += 1

    async def _session(self) -> None:
        options = self.options
        async with open_socket(
            self._ws_url,
            connect_timeout=options.connect_timeout_s,
            max_message_size=MAX_SERVER_FRAME_BYTES,
        ) as ws:
            identity = self.identity
            hello = Hello(
                shoot=self.code,
                role="archer" if identity else "viewer",
                sv=self._doc.state_vector(),
                archer=identity.archer_id if identity else None,
                token=identity.token if identity else None,
            )
            await self._send(ws, hello)
            first: ServerMessage | None = None
            with trio.move_on_after(options.connect_timeout_s):
                first = await self._receive(ws)
            if first is None:
                raise RelayUnreachable("timeout", "The relay did not answer hello in time.")
            match first:
                case Welcome():
                    await self._on_welcome(first)
                case Error(code=code, message=message):
                    raise error_for_code(code, message)
                case _:
                    raise ShootError("unexpected", "The relay did not answer hello.")
            try:
                self.connections += 1
                self._set_state(ConnectionState.CONNECTED, None)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._heartbeat, ws)
                    nursery.start_soon(self._sender, ws)
                    while True:
                        await self._handle(await self._receive(ws))
            finally:
                self._inflight.clear()
                self._sent.clear()

    async def _send(self, ws: Any, message: ClientMessage) -> None:
        """Send one frame, waiting for the send lock and the socket ``pong_timeout_s`` at
        most in all.

        A send that cannot finish means the relay has stopped reading this connection, and
        nothing else will notice: the heartbeat's own ``ping`` would wait behind it for
        ever, and so would trio-websocket's reader task, which needs the same stream to
        answer the relay's WebSocket pings and stops reading the relay's frames (acks
        included) meanwhile. So the connection is given up and the loop reconnects;
        pending writes are sent again on the next session.

        Raises:
            RelayUnreachable: ``send_timeout``.
        """
        with trio.move_on_after(self.options.pong_timeout_s) as bound:
            async with self._send_lock:
                await ws.send_message(encode(message))
                self._last_sent = trio.current_time()
        if bound.cancelled_caught:
            # A frame may be half written: the connection cannot be used again.
            raise RelayUnreachable(
                "send_timeout", "The relay stopped reading this connection; reconnecting."
            )

    async def _receive(self, ws: Any) -> ServerMessage:
        frame = await ws.get_message()
        self._last_received = trio.current_time()
        if isinstance(frame, str):
            raise ShootError("malformed", "The relay sent a text frame.")
        return decode_server(frame)

    async def _send_write(self, ws: Any, register: Register) -> None:
        self._next_id += 1
        self._inflight[self._next_id] = register
        self._sent[register.archer_id] = (register.stamp, trio.current_time())
        await self._send(ws, Write(self._next_id, register))

    def _due_at(self, register: Register) -> float:
        """When a pending write should go (again) on this connection."""
        sent = self._sent.get(register.archer_id)
        if sent is None or sent[0] != register.stamp:
            return -math.inf  # not sent on this connection yet, or re-stamped since
        return sent[1] + self.options.resend_after_s

    async def _sender(self, ws: Any) -> None:
        """Send due writes, oldest first, never faster than the relay's rate limit."""
        bucket = self._bucket = TokenBucket(WRITES_BURST, WRITES_PER_S, updated=trio.current_time())
        while True:
            # Anything that may make a write due sets this event; the state is re-read
            # after every wait, so a wake-up that came while sending is not lost.
            self._sender_wake = trio.Event()
            now = trio.current_time()
            pending = self._outbox.pending()
            due = [register for register in pending if self._due_at(register) <= now]
            if not due:
                next_due = min((self._due_at(register) for register in pending), default=math.inf)
                with trio.move_on_at(next_due):
                    await self._sender_wake.wait()
                continue
            if not bucket.try_take(now):
                await trio.sleep(bucket.retry_after(now))
                continue
            await self._send_write(ws, due[0])

    async def _heartbeat(self, ws: Any) -> None:
        options = self.options
        while True:
            # Quiet in either direction counts: a client that keeps resending writes into
            # a dead connection must still find out that nothing comes back.
            quiet_since = min(self._last_sent, self._last_received)
            ping_at = quiet_since + options.ping_interval_s
            if trio.current_time() < ping_at:
                await trio.sleep_until(ping_at)
                continue
            self._nonce += 1
            await self._send(ws, Ping(self._nonce))
            pinged = self._last_sent
            await trio.sleep_until(pinged + options.pong_timeout_s)
            if self._last_received < pinged:
                raise RelayUnreachable(
                    "heartbeat_timeout", "The relay stopped answering; reconnecting."
                )

    # -- what arrives --------------------------------------------------------------------

    async def _on_welcome(self, welcome: Welcome) -> None:
        before = self._doc.registers()
        if welcome.reset:
            self._doc = ShootDocument()
            self.resets += 1
        self._doc.apply_update(welcome.update)
        self.shoot = welcome.shoot
        await self._after_replica_change(before)

    async def _after_replica_change(self, before: dict[str, Register]) -> None:
        after = self._doc.registers()
        changed = frozenset(
            a for a in after.keys() | before.keys() if after.get(a) != before.get(a)
        )
        own = self._doc.register(self.archer_id) if self.archer_id else None
        if own is not None:
            self._clock.observe(own.stamp)
            if self._outbox.see(own):
                await self._save()
        if changed:
            self._emit(RegistersChanged(changed, "relay"))
        else:
            self._notify()

    async def _handle(self, message: ServerMessage) -> None:
        match message:
            case Update(update=update):
                before = self._doc.registers()
                self._doc.apply_update(update)
                await self._after_replica_change(before)
            case Ack(id=request_id, archer=archer, stamp=stamp):
                sent = self._inflight.pop(request_id, None)
                self._clock.observe(stamp)
                acked = self._outbox.acknowledge(archer, stamp)
                if acked is not None:
                    await self._save()
                elif sent is not None and (sent.archer_id, sent.stamp) == (archer, stamp):
                    # A newer write of the archer's replaced this one in the outbox while
                    # it was on its way: it is durable all the same (the newer one waits).
                    acked = sent
                if acked is not None and self._newly_acked(acked):
                    self._emit(WriteAcked(acked))
                else:
                    self._notify()
            case Superseded(id=request_id, winner=winner):
                sent = self._inflight.pop(request_id, None)
                self._clock.observe(winner.stamp)
                dropped = self._outbox.adopt(winner)
                await self._save()
                lost = sent or dropped
                if lost is not None:
                    self._emit(WriteSuperseded(lost, winner))
                self._emit(RegistersChanged(frozenset({winner.archer_id}), "relay"))
            case Error(id=None, code=code, message=text):
                self.error = error_for_code(code, text)
                self._notify()
            case Error(id=int(request_id)):
                await self._on_write_error(request_id, message)
            case Notice():
                self._emit(NoticeReceived(message))
            case Pong() | Welcome():
                pass

    async def _on_write_error(self, request_id: int, error: Error) -> None:
        sent = self._inflight.pop(request_id, None)
        if sent is None:
            return
        pending = self._outbox.get(sent.archer_id)
        still_pending = pending is not None and pending.stamp == sent.stamp
        if error.code == "rate_limited":
            # The relay's bucket is empty: empty ours too, so the sender waits for the
            # next token, and make the write due again at once.
            self._bucket.tokens, self._bucket.updated = 0.0, trio.current_time()
            if self._sent.get(sent.archer_id, (None,))[0] == sent.stamp:
                del self._sent[sent.archer_id]
            self._sender_wake.set()
        elif error.code == "clock_skew" and error.server_ms is not None:
            self._clock.correct(self._wall(), error.server_ms)
            if still_pending:
                restamped = Register(sent.archer_id, self._clock.now(self._wall()), sent.state)
                self._outbox.replace(restamped)
                await self._save()
                self._sender_wake.set()  # a new stamp: due at once
        elif still_pending:
            self._outbox.discard(sent.archer_id, sent.stamp)
            await self._save()
            self._emit(WriteRefused(sent, error_for_code(error.code, error.message)))
            self._emit(RegistersChanged(frozenset({sent.archer_id}), "relay"))

    # -- plumbing ------------------------------------------------------------------------

    def _newly_acked(self, register: Register) -> bool:
        """Whether ``register`` is newer than every write of its archer acknowledged so far
        (a resent write is acknowledged once per copy; it is reported once)."""
        newest = self._acked.get(register.archer_id)
        if newest is not None and register.key() <= newest.key():
            return False
        self._acked[register.archer_id] = register
        return True

    def _known_stamps(self) -> list[Stamp]:
        stamps = [r.stamp for r in self._outbox.pending()]
        if self.archer_id is not None and (seen := self._outbox.seen(self.archer_id)):
            stamps.append(seen.stamp)
        if self._outbox.clock is not None:
            stamps.append(self._outbox.clock)
        return stamps

    async def _save(self) -> None:
        async with self._save_lock:
            path = self._outbox.path
            if path is None:
                return
            self._outbox.clock = self._clock.last
            # Serialised here, on Trio's thread: other tasks change the outbox while the
            # worker thread writes, so the worker must only ever see these bytes.
            payload = self._outbox.encode()
            await trio.to_thread.run_sync(write_atomically, path, payload)

    def _set_state(self, state: ConnectionState, error: ShootError | None) -> None:
        changed = state is not self.state
        self.state, self.error = state, error
        if changed:
            self._emit(ConnectionChanged(state, error))

    def _emit(self, event: Event) -> None:
        self.events.put(event)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


@asynccontextmanager
async def connect(
    relay_url: str,
    code: str,
    *,
    identity: Identity | None = None,
    outbox_path: Path | None = None,
    options: ClientOptions | None = None,
    wall_clock: Callable[[], int] = system_wall_ms,
    rng: random.Random | None = None,
) -> AsyncIterator[ShootClient]:
    """Open a :class:`ShootClient` and run its connection loop until the block ends.

    The block starts at once, connected or not: writes queue in the outbox and go out when
    the relay is reachable. Use :meth:`ShootClient.wait_connected` to wait for it.
    Arguments are :class:`ShootClient`'s.
    """
    client = ShootClient(
        relay_url,
        code,
        identity=identity,
        outbox_path=outbox_path,
        options=options,
        wall_clock=wall_clock,
        rng=rng,
    )
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.run)
            try:
                yield client
            finally:
                client.close()
    except BaseExceptionGroup as group:
        # The block's own exception comes back wrapped by the nursery; give it back as
        # the caller raised it (the loop itself raises nothing the caller must see).
        single = _single(group)
        if single is None:
            raise
        raise single from None


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    while len(group.exceptions) == 1:
        inner = group.exceptions[0]
        if not isinstance(inner, BaseExceptionGroup):
            return inner
        group = inner
    return None
