"""The live client: a thin driver of the client session machine, plus files and sockets.

Theory of operation
-------------------
Every protocol decision (hello before anything, the replica and its reset rule, which
pending write goes out when, what an answer does to the outbox, the clock and its
``clock_skew`` correction, the heartbeat, which edits were lost) is made by
:class:`sync.client_session.ClientSession`. A :class:`ShootClient` only moves things
between it and the world:

* frames: one task reads the WebSocket and feeds each frame to the machine; sends are
  bounded by ``pong_timeout_s``, lock wait included (a relay that stops reading the
  socket would otherwise block the sender for ever: ``send_timeout``);
* time: one task sleeps until the machine's latest ``Timer`` and calls ``timer_fired``
  (the machine sends writes and pings only from there);
* files: ``SaveOutbox`` writes the outbox file (:mod:`clients._outbox`) in a worker
  thread that is not abandoned on cancel, before the next action is carried out, so a
  write the caller saw return is on disk, and one cancelled mid-save is either wholly
  there or not;
* news: the machine's other actions become the user's events (:mod:`clients._events`).

The connection loop (:meth:`ShootClient.run`) opens the WebSocket, runs those two tasks
until the machine says ``Close`` or the socket breaks, tells the machine
(``disconnected``, with a jitter drawn from ``rng``), sleeps until the machine's
``Reconnect`` time (its rule: :mod:`sync.reconnect`), and tries again; it stops for good
when the machine's session is closed for good (``unauthorized``, ``unknown_shoot``,
``expired``, or the matching close codes 4401, 4404, 4410).

What the user sees (:attr:`ShootClient.registers`, :attr:`ShootClient.leaderboard`) is the
machine's replica overlaid with its outbox: a write shows at once, online or not.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import trio

from sync import client_actions as A
from sync.client_session import ClientSession
from sync.codec import encode
from sync.leaderboard import Leaderboard, build_leaderboard
from sync.models import ArcherState, Shoot
from sync.protocol import MAX_SERVER_FRAME_BYTES, ClientMessage
from sync.register import Register
from sync.rounds import Arrow
from sync.wall import system_wall_ms

from ._errors import (
    NotJoined,
    RelayUnreachable,
    ShootError,
    close_code,
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
from ._options import ClientOptions, websocket_url
from ._outbox import Outbox, write_atomically
from ._scoring import add_arrows, checked, without_last_arrow
from ._transport import open_socket

__all__ = ["ShootClient", "system_wall_ms"]

#: Codes of the machine's ``Close`` that mean the relay is unreachable, not wrong.
_UNREACHABLE = frozenset({"timeout", "heartbeat_timeout"})


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
        rng: Random source for the reconnect jitter.

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
        self.options = options = options or ClientOptions()
        self._wall = wall_clock
        self._ws_url = websocket_url(relay_url, code)
        self._outbox = Outbox(outbox_path)
        self.session = ClientSession(
            code,
            identity.device_id if identity else new_device_id("viewer"),
            archer_id=identity.archer_id if identity else None,
            token=identity.token if identity else None,
            initial=identity.initial if identity else None,
            outbox=self._outbox,
            timings=A.SessionTimings(
                ping_interval_s=options.ping_interval_s,
                pong_timeout_s=options.pong_timeout_s,
                resend_after_s=options.resend_after_s,
                connect_timeout_s=options.connect_timeout_s,
                backoff_base_s=options.backoff_base_s,
                backoff_cap_s=options.backoff_cap_s,
            ),
        )
        """The protocol machine this client drives (read it; do not feed it events)."""
        self.events = EventQueue(options.event_queue_size)
        """Changes and notices, oldest first; bounded (see :class:`EventQueue`)."""
        self._rng = rng or random.Random()
        self._delays: deque[float] = deque(maxlen=64)
        self._reconnect_at = -math.inf
        self.state = ConnectionState.WAITING
        self.error: ShootError | None = None
        """Why the last connection attempt ended (or why the client stopped)."""
        self._scope = trio.CancelScope()
        self._changed = trio.Event()
        self._send_lock = trio.Lock()
        self._save_lock = trio.Lock()
        self._timer_at = math.inf
        self._timer_moved = trio.Event()
        self._saving = 0
        self._notify_deferred = False

    # -- what the user reads -------------------------------------------------------------

    @property
    def archer_id(self) -> str | None:
        return self.identity.archer_id if self.identity else None

    @property
    def shoot(self) -> Shoot | None:
        """The shoot's metadata, once a ``welcome`` has arrived."""
        return self.session.shoot

    @property
    def connections(self) -> int:
        """Sessions that reached ``welcome`` so far."""
        return self.session.connections

    @property
    def resets(self) -> int:
        """Welcomes that said ``reset``: the relay had lost items this replica held (it
        stopped before Redis had them), so the replica was replaced by the relay's full
        state. Pending writes are resent as after any reconnect, so nothing is lost."""
        return self.session.resets

    @property
    def registers(self) -> dict[str, Register]:
        """Every archer's register: the replica, overlaid with this device's newer writes."""
        return self.session.registers()

    def register(self, archer_id: str | None = None) -> Register | None:
        """One archer's visible register (this device's archer by default)."""
        archer_id = archer_id or self.archer_id
        return None if archer_id is None else self.session.visible(archer_id)

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
        """The most recent reconnect delays the machine chose, newest last."""
        return list(self._delays)

    async def wait_until(self, predicate: Callable[[ShootClient], bool]) -> None:
        """Wait until ``predicate(self)`` holds; it is re-checked after every change.

        Never while the outbox is being saved: the machine has changed the state by then,
        and the events that tell about it follow the save.
        """
        while self._saving or not predicate(self):
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
        try:
            register, actions = self.session.write(change, trio.current_time(), self._wall())
        except A.WriteUnavailable as exc:
            raise NotJoined(exc.code, exc.message) from exc
        await self._carry_out(actions, None)  # saved before this returns
        return register

    # -- the connection loop -------------------------------------------------------------

    def close(self) -> None:
        """Stop the connection loop; pending writes stay in the outbox file."""
        self._scope.cancel()
        self._set_state(ConnectionState.CLOSED, self.error)

    async def run(self) -> None:
        """Connect, stay connected, reconnect with backoff; until closed or refused."""
        with self._scope:
            while True:
                self._set_state(ConnectionState.CONNECTING, self.error)
                try:
                    await self._connection()
                except Exception as exc:
                    error = translate(exc, self.relay_url)
                    if error is None:
                        raise
                    ended = self.session.disconnected(
                        trio.current_time(), self._rng.random(), close_code(exc)
                    )
                    await self._carry_out(ended, None)
                else:  # pragma: no cover - a connection only ends by an exception
                    error = RelayUnreachable("disconnected", "The connection ended.")
                if self.session.phase is A.Phase.CLOSED:
                    self._set_state(ConnectionState.CLOSED, error)
                    return
                self._set_state(ConnectionState.WAITING, error)
                await trio.sleep_until(self._reconnect_at)

    async def _connection(self) -> None:
        async with open_socket(
            self._ws_url,
            connect_timeout=self.options.connect_timeout_s,
            max_message_size=MAX_SERVER_FRAME_BYTES,
        ) as ws:
            await self._carry_out(self.session.connected(trio.current_time()), ws)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._timers, ws)
                while True:
                    frame = await ws.get_message()
                    now = trio.current_time()
                    await self._carry_out(self.session.frame_received(frame, now, self._wall()), ws)

    async def _timers(self, ws: Any) -> None:
        """Call the machine's ``timer_fired`` whenever the time it asked for has come."""
        while True:
            self._timer_moved = trio.Event()
            if trio.current_time() < self._timer_at:
                with trio.move_on_at(self._timer_at):
                    await self._timer_moved.wait()
                continue
            fired = self.session.timer_fired(trio.current_time(), self._wall())
            await self._carry_out(fired, ws)
            await trio.lowlevel.checkpoint()  # a timer due again at once never starves the rest

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
        if bound.cancelled_caught:
            # A frame may be half written: the connection cannot be used again.
            raise RelayUnreachable(
                "send_timeout", "The relay stopped reading this connection; reconnecting."
            )

    # -- carrying out what the machine decided -------------------------------------------

    async def _carry_out(self, actions: list[A.Action], ws: Any) -> None:
        """Do what the machine said: save the outbox first if it changed (one save keeps
        the whole outbox), then tell the news (events, state, the timer), then send or
        close in the machine's order.

        The machine has already changed what the user reads, so waiters are not woken
        while a save is under way (:meth:`_notify`): when they look, the state is on disk
        and the news about it is in :attr:`events`.
        """
        if any(isinstance(action, A.SaveOutbox) for action in actions):
            await self._save()
        for action in actions:
            self._tell(action)
        for action in actions:
            match action:
                case A.Send(message=message):
                    await self._send(ws, message)
                case A.Close(code=code, message=text):
                    if code in _UNREACHABLE:
                        raise RelayUnreachable(code, text)
                    raise error_for_code(code, text)

    def _tell(self, action: A.Action) -> None:
        """Carry out one of the machine's actions that only tells (never blocks)."""
        match action:
            case A.Timer(at=at):
                self._timer_at = at
                self._timer_moved.set()
            case A.Reconnect(at=at):
                self._reconnect_at = at
                self._delays.append(max(0.0, at - trio.current_time()))
            case A.Welcomed():
                self._set_state(ConnectionState.CONNECTED, None)
            case A.Changed(archers=archers, source=source):
                self._emit(RegistersChanged(archers, source))
            case A.Acked(register=register):
                self._emit(WriteAcked(register))
            case A.Replaced(lost=lost, winner=winner, acknowledged=acknowledged):
                self._emit(WriteSuperseded(lost, winner, acknowledged))
            case A.Refused(register=register, code=code, message=text):
                self._emit(WriteRefused(register, error_for_code(code, text)))
            case A.NoticeArrived(notice=notice):
                self._emit(NoticeReceived(notice))
            case A.RelayError(code=code, message=text):
                self.error = error_for_code(code, text)

    async def _save(self) -> None:
        path = self._outbox.path
        if path is None:
            return
        self._saving += 1
        try:
            async with self._save_lock:
                # Serialised here, on Trio's thread: other tasks change the outbox while
                # the worker thread writes, so the worker must only ever see these bytes.
                payload = self._outbox.encode()
                await trio.to_thread.run_sync(write_atomically, path, payload)
        finally:
            self._saving -= 1
            if not self._saving and self._notify_deferred:
                self._notify_deferred = False
                self._notify()

    def _set_state(self, state: ConnectionState, error: ShootError | None) -> None:
        changed = state is not self.state
        self.state, self.error = state, error
        if changed:
            self._emit(ConnectionChanged(state, error))

    def _emit(self, event: Event) -> None:
        self.events.put(event)
        self._notify()

    def _notify(self) -> None:
        if self._saving:
            self._notify_deferred = True
            return
        self._changed.set()
        self._changed = trio.Event()
