"""The client's side of a shoot session as a state machine: events in, actions out.

Theory of operation
-------------------
Like h11's connection object, :class:`ClientSession` decides and does no I/O: no socket,
no clock, no file. Its driver (the Python SDK's :mod:`clients._client`, the browser's
protocol module) feeds it events, with the time passed in, and carries out the actions
that come back, **in order**. It owns every rule of the client's side of the protocol:

* the **session order**: ``hello`` first, nothing else until the ``welcome``; an
  ``error`` instead of a welcome ends the session (for good for the codes in
  :data:`FATAL_CODES`); no welcome within ``connect_timeout_s`` ends it too;
* the **replica** of the shoot's document and its state vector, and the **reset rule**: a
  welcome with ``reset`` replaces the replica by the relay's full state (the relay lost
  items this replica holds), and every pending write is sent again; a document update the
  replica cannot apply (in a welcome or an ``update``) ends the connection
  (``invalid_update``), and the next one catches up from the state vector;
* the **outbox** (:class:`~sync.outbox.OutboxState`): pending whole-state writes, newest
  per register, sent oldest first when due (never sent on this connection, re-stamped, or
  unanswered for ``resend_after_s``), paced by a token bucket that mirrors the relay's;
  answers paired with their write by request id (``ack`` drops it, ``superseded`` adopts
  the winner, ``error`` drops it, except ``rate_limited`` and ``clock_skew``);
* the **hybrid clock** (:class:`~sync.clock.HybridClock`) that stamps writes, observes
  every stamp seen, and is corrected from the relay's time after ``clock_skew`` (the
  refused state is re-stamped and sent again);
* the **heartbeat**: a ``ping`` once nothing was sent, or nothing received, for
  ``ping_interval_s``; the session is dead if nothing arrives ``pong_timeout_s`` after it;
* the **reconnect rule** (:class:`~sync.reconnect.ReconnectRule`): after a connection
  ends, ``Reconnect(at)`` with full-jitter exponential backoff, the attempts counted
  since the last welcome; ``online`` (the network is back) dials at once;
* the **shoot's identity**: a welcome that names another shoot than the one the outbox's
  writes belong to (codes are reused on later days) empties the outbox first, so an old
  day's scores never reach a new shoot;
* the **visible loser**: an edit of this device's that another device's newer state
  replaced without including it is reported, never dropped silently
  (:mod:`sync.carried_edits` keeps what that needs).

The events (its methods) and the actions each returns are tabled in
:mod:`sync.client_actions`, with how a driver carries them out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from . import client_actions as A
from .carried_edits import CarriedEdits, Rewrite, replaced
from .client_link import Link
from .clock import HybridClock, Stamp
from .codec import decode_server
from .document import ShootDocument
from .errors import ProtocolError
from .limits import WRITES_BURST, WRITES_PER_S, TokenBucket
from .models import ArcherState, Shoot
from .outbox import OutboxState
from .protocol import (
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
from .reconnect import ReconnectRule
from .register import Register, merge

__all__ = ["ClientSession"]

_UNAPPLIABLE_UPDATE = "The relay sent a document update this client cannot apply; reconnecting."


class ClientSession:
    """One device's protocol state for one shoot, across connections.

    Args:
        shoot_code: The shoot's code, for ``hello``.
        device_id: This device's id (the tie-break of its stamps).
        archer_id: The archer this device writes as; ``None`` for a viewer.
        token: The archer's write token.
        initial: The archer's state at join, the base of the first write before the relay
            has been seen.
        outbox: What the driver loaded from its durable store (a new one if ``None``).
        timings: The session's timers.
    """

    def __init__(
        self,
        shoot_code: str,
        device_id: str,
        *,
        archer_id: str | None = None,
        token: str | None = None,
        initial: ArcherState | None = None,
        outbox: OutboxState | None = None,
        timings: A.SessionTimings | None = None,
    ) -> None:
        self.shoot_code = shoot_code
        self.archer_id = archer_id
        self.token = token
        self.initial = initial
        self.timings = timings or A.SessionTimings()
        self.outbox = outbox if outbox is not None else OutboxState()
        self.replica = ShootDocument()
        self._known: dict[str, Register] = {}
        """The replica's registers, kept as of its last change (reading them decodes it)."""
        self.clock = HybridClock(device_id)
        for stamp in self._known_stamps():
            self.clock.observe(stamp)
        self._edits = CarriedEdits(device_id)
        self._wall_ms = 0
        """The wall clock of the message being handled (a rewrite stamps with it)."""
        if archer_id is not None:
            last = merge(self.outbox.seen(archer_id), self.outbox.get(archer_id))
            if last is not None and self._edits.mine(last):
                self._edits.remember(last)
        self.phase = A.Phase.OFFLINE
        self.shoot: Shoot | None = None
        self.connections = 0
        """Sessions that reached ``welcome``."""
        self.resets = 0
        """Welcomes that said ``reset``."""
        self._conn: Link | None = None
        self.reconnect = ReconnectRule(self.timings.backoff_base_s, self.timings.backoff_cap_s)
        """When to dial again (read ``reconnect.attempt``; do not feed it events)."""
        self._next_id = 0
        self._nonce = 0

    # -- what the user reads -------------------------------------------------------------

    def registers(self) -> dict[str, Register]:
        """Every archer's visible register: the replica overlaid with this device's newer
        writes (and its own register's newest value seen)."""
        registers: dict[str, Register | None] = dict(self._known)
        if self.archer_id is not None:
            own = self.outbox.seen(self.archer_id)
            registers[self.archer_id] = merge(registers.get(self.archer_id), own)
        for pending in self.outbox.pending():
            registers[pending.archer_id] = merge(registers.get(pending.archer_id), pending)
        return {k: v for k, v in registers.items() if v is not None}

    def visible(self, archer_id: str) -> Register | None:
        """One archer's visible register."""
        current = self.replica.register(archer_id)
        if archer_id == self.archer_id:
            current = merge(current, self.outbox.seen(archer_id))
        return merge(current, self.outbox.get(archer_id))

    @property
    def synced(self) -> bool:
        """Live, with every write acknowledged."""
        return self.phase is A.Phase.LIVE and not len(self.outbox)

    @property
    def next_timer(self) -> float:
        """When ``timer_fired`` is due next (``inf``: never)."""
        return self._deadline()

    # -- events --------------------------------------------------------------------------

    def connected(self, now: float) -> list[A.Action]:
        """A connection to the relay is open: say ``hello``."""
        if self.phase is A.Phase.CLOSED:
            return [A.Close("closed", "The session was refused for good.", fatal=True)]
        self.phase = A.Phase.HELLO_SENT
        bucket = TokenBucket(WRITES_BURST, WRITES_PER_S, updated=now)
        self._conn = Link(now, now, now, bucket)
        hello = Hello(
            shoot=self.shoot_code,
            role="archer" if self.archer_id else "viewer",
            sv=self.replica.state_vector(),
            archer=self.archer_id,
            token=self.token if self.archer_id else None,
        )
        return [A.Send(hello), *self._timer_action()]

    def disconnected(
        self, now: float, jitter: float, close_code: int | None = None
    ) -> list[A.Action]:
        """The connection, or an attempt at one, ended at ``now``, whoever ended it
        (``close_code``: the relay's WebSocket close code, if it closed; ``jitter``:
        uniform in ``[0, 1)``, drawn by the driver). Unanswered writes stay pending; after
        a code in :data:`~sync.client_actions.FATAL_CLOSE_CODES` the session is over for
        good, else the next dial is due at the returned ``Reconnect``."""
        self._conn = None
        if close_code in A.FATAL_CLOSE_CODES:
            self.phase = A.Phase.CLOSED
        if self.phase is A.Phase.CLOSED:
            return self._timer_action()
        self.phase = A.Phase.OFFLINE
        return [A.Reconnect(self.reconnect.dropped(now, jitter)), *self._timer_action()]

    def online(self, now: float) -> list[A.Action]:
        """The device's network is back (the browser's ``online`` event): while offline,
        the attempts start afresh and the next dial is now."""
        if self.phase is not A.Phase.OFFLINE:
            return self._timer_action()
        return [A.Reconnect(self.reconnect.online(now)), *self._timer_action()]

    def frame_received(self, data: bytes | str, now: float, wall_ms: int) -> list[A.Action]:
        """A frame from the relay, bounded by the driver to
        :data:`~sync.protocol.MAX_SERVER_FRAME_BYTES` before it gets here."""
        if isinstance(data, str):
            return self._close("malformed", "The relay sent a text frame.")
        try:
            message = decode_server(data)
        except ProtocolError as exc:
            return self._close(exc.code, exc.message)
        return self.received(message, now, wall_ms)

    def received(self, message: ServerMessage, now: float, wall_ms: int) -> list[A.Action]:
        """A decoded message from the relay."""
        conn = self._conn
        if conn is None:
            return []
        conn.last_received = now
        self._wall_ms = wall_ms
        if self.phase is A.Phase.HELLO_SENT:
            match message:
                case Welcome():
                    return self._on_welcome(message, now)
                case Error(code=code, message=text):
                    return self._close(code, text, fatal=code in A.FATAL_CODES)
                case _:
                    return self._close("unexpected", "The relay did not answer hello.")
        actions: list[A.Action] = []
        match message:
            case Update(update=update):
                try:
                    self.replica.apply_update(update)
                except ProtocolError:
                    return self._close("invalid_update", _UNAPPLIABLE_UPDATE)
                actions += self._after_replica_change()
            case Ack():
                actions += self._on_ack(message)
            case Superseded(id=request_id, winner=winner):
                conn.inflight.pop(request_id, None)
                actions += self._adopt(winner)
            case Error(id=None, code=code, message=text):
                actions.append(A.RelayError(code, text))
            case Error(id=int(request_id)):
                actions += self._on_write_error(request_id, message, now, wall_ms)
            case Notice():
                actions.append(A.NoticeArrived(message))
            case Pong() | Welcome():
                pass
        return [*actions, *self._timer_action()]

    def timer_fired(self, now: float, wall_ms: int) -> list[A.Action]:
        """The time asked for by the last :class:`~sync.client_actions.Timer` (or any later time) has come."""
        conn = self._conn
        if conn is None:
            return self._timer_action()
        if self.phase is A.Phase.HELLO_SENT:
            if now >= conn.opened + self.timings.connect_timeout_s:
                return self._close("timeout", "The relay did not answer hello in time.")
            return self._timer_action()
        actions = self._heartbeat(conn, now)
        if actions and isinstance(actions[0], A.Close):
            return actions
        actions += self._send_due(conn, now)
        return [*actions, *self._timer_action()]

    def write(
        self, change: Callable[[ArcherState], ArcherState], now: float, wall_ms: int
    ) -> tuple[Register, list[A.Action]]:
        """A local edit: ``change`` maps the archer's visible state to the new one.

        Raises:
            A.WriteUnavailable: a viewer, or no state to build on yet.
            Exception: whatever ``change`` raises (an invalid score); nothing changed.
        """
        archer_id = self.archer_id
        if archer_id is None:
            raise A.WriteUnavailable("read_only", "Viewers cannot score; join as an archer.")
        current = self.visible(archer_id)
        base = current.state if current is not None else self.initial
        if base is None:
            raise A.WriteUnavailable(
                "no_state",
                "This device has not seen the archer's scores yet; connect to the relay once.",
            )
        state = change(base)
        register = Register(archer_id, self.clock.now(wall_ms), state)
        actions: list[A.Action] = []
        pending = self.outbox.get(archer_id)
        if pending is not None and current is not None and current != pending:
            # The pending write had already lost to ``current`` (another device's state)
            # and is replaced now, unsent: say so unless ``current`` holds it.
            actions += replaced(pending, current)
        # Replaced, not merged: the new state was built on the pending one, and after a
        # clock_skew correction its stamp may be the smaller (the convergence test found
        # a merge here dropping the newest end).
        self.outbox.replace(register)
        self._edits.remember(register)
        actions = [self._save(), A.Changed(frozenset({archer_id}), "local"), *actions]
        return register, [*actions, *self._timer_action()]

    # -- what arrives --------------------------------------------------------------------

    def _on_welcome(self, welcome: Welcome, now: float) -> list[A.Action]:
        if welcome.reset:
            self.replica = ShootDocument()
            self.resets += 1
        try:
            self.replica.apply_update(welcome.update)
        except ProtocolError:
            return self._close("invalid_update", _UNAPPLIABLE_UPDATE)
        actions = self._same_shoot(welcome.shoot.shoot_id)
        self.shoot = welcome.shoot
        self.phase = A.Phase.LIVE
        self.connections += 1
        self.reconnect.welcomed()
        assert self._conn is not None
        self._conn.bucket = TokenBucket(WRITES_BURST, WRITES_PER_S, updated=now)
        actions.append(A.Welcomed(welcome.shoot, welcome.reset))
        if welcome.reset and self.archer_id is not None:
            self.outbox.reset_seen(self.archer_id, self.replica.register(self.archer_id))
            actions.append(self._save())
        actions += self._after_replica_change()
        return [*actions, *self._timer_action()]

    def _same_shoot(self, shoot_id: str) -> list[A.Action]:
        """Bind the outbox to the welcomed shoot; empty it first if it held another's."""
        if self.outbox.shoot_id == shoot_id:
            return []
        if self.outbox.shoot_id is not None:
            # The code names another shoot now (codes are reused on later days): the
            # writes kept were for the old one, and must never reach this one.
            self.outbox.clear()
            self._edits.clear()
        self.outbox.shoot_id = shoot_id
        return [self._save()]

    def _after_replica_change(self) -> list[A.Action]:
        before, after = self._known, self.replica.registers()
        self._known = after
        changed = frozenset(
            a for a in after.keys() | before.keys() if after.get(a) != before.get(a)
        )
        actions: list[A.Action] = []
        own = self.replica.register(self.archer_id) if self.archer_id else None
        if own is not None:
            self.clock.observe(own.stamp)
            actions += self._see(own)
        if changed:
            actions.append(A.Changed(changed, "relay"))
        return actions

    def _see(self, register: Register) -> list[A.Action]:
        """The relay holds ``register`` for this device's archer."""
        if not self.outbox.see(register):
            return []
        return [self._save(), *self._check_carried(register)]

    def _check_carried(self, value: Register) -> list[A.Action]:
        """``value`` is the archer's state at the relay now: report this device's last
        edit if ``value`` dropped it, or write it again if an older one of its won."""
        found = self._edits.seen(value, pending=self.outbox.get(value.archer_id) is not None)
        if isinstance(found, Rewrite):
            return self._rewrite(found.newest)
        return [] if found is None else [found]

    def _on_ack(self, ack: Ack) -> list[A.Action]:
        assert self._conn is not None
        sent = self._conn.inflight.pop(ack.id, None)
        self.clock.observe(ack.stamp)
        acked = self.outbox.acknowledge(ack.archer, ack.stamp)
        if acked is None:
            # A write a newer one replaced in the outbox before its ack came (an archer
            # scoring faster than acks return) is durable all the same: say so, once.
            if sent is None or sent.stamp != ack.stamp or not self._edits.first_ack(sent):
                return []
            return [A.Acked(sent)]
        self._edits.first_ack(acked)
        actions: list[A.Action] = [self._save(), A.Acked(acked)]
        seen = self.outbox.seen(ack.archer)
        if seen is not None:
            # Another device's newer state may have arrived while this write waited.
            actions += self._check_carried(seen)
        return actions

    def _adopt(self, winner: Register) -> list[A.Action]:
        """A newer state won over a write of this device's (a ``superseded`` answer)."""
        self.clock.observe(winner.stamp)
        # With nothing pending, an acknowledged write of this device's may be what lost.
        actions: list[A.Action] = self._see(winner) if self.archer_id == winner.archer_id else []
        dropped = self.outbox.adopt(winner)
        actions.append(self._save())
        if dropped is not None and self._edits.stale_own(winner, dropped):
            actions += self._rewrite(dropped)
        elif dropped is not None:
            lost = replaced(dropped, winner)
            if lost:
                self._edits.forget(winner.archer_id)
            actions += lost
        seen = self.outbox.seen(winner.archer_id)
        if seen is not None and self.archer_id == winner.archer_id:
            # The winner held this device's edit, but a newer state may not any more.
            actions += self._check_carried(seen)
        return [*actions, A.Changed(frozenset({winner.archer_id}), "relay")]

    def _on_write_error(
        self, request_id: int, error: Error, now: float, wall_ms: int
    ) -> list[A.Action]:
        conn = self._conn
        assert conn is not None
        sent = conn.inflight.pop(request_id, None)
        if sent is None:
            return []
        pending = self.outbox.get(sent.archer_id)
        still_pending = pending is not None and pending.stamp == sent.stamp
        if error.code == "rate_limited":
            # The relay's bucket is empty: empty ours too, and make the write due again.
            conn.bucket.tokens, conn.bucket.updated = 0.0, now
            if conn.sent.get(sent.archer_id, (None,))[0] == sent.stamp:
                del conn.sent[sent.archer_id]
            return []
        if error.code == "clock_skew" and error.server_ms is not None:
            self.clock.correct(wall_ms, error.server_ms)
            if not still_pending:
                return []
            restamped = Register(sent.archer_id, self.clock.now(wall_ms), sent.state)
            self.outbox.replace(restamped)  # a new stamp: due at once
            self._edits.remember(restamped)
            return [self._save()]
        if not still_pending:
            return []
        self.outbox.discard(sent.archer_id, sent.stamp)
        return [
            self._save(),
            A.Refused(sent, error.code, error.message),
            A.Changed(frozenset({sent.archer_id}), "relay"),
        ]

    # -- what goes out -------------------------------------------------------------------

    def _heartbeat(self, conn: Link, now: float) -> list[A.Action]:
        match conn.heartbeat(now, self.timings):
            case "dead":
                return self._close(
                    "heartbeat_timeout", "The relay stopped answering; reconnecting."
                )
            case "ping":
                self._nonce += 1
                return [A.Send(Ping(self._nonce))]
        return []

    def _send_due(self, conn: Link, now: float) -> list[A.Action]:
        """Every due write the bucket allows, oldest first."""
        actions: list[A.Action] = []
        for register in self.outbox.pending():
            if conn.due_at(register, self.timings.resend_after_s) > now:
                continue
            if not conn.bucket.try_take(now):
                break
            self._next_id += 1
            conn.inflight[self._next_id] = register
            conn.sent[register.archer_id] = (register.stamp, now)
            conn.last_sent = now
            actions.append(A.Send(Write(self._next_id, register)))
        return actions

    def _deadline(self) -> float:
        conn = self._conn
        if conn is None:
            return math.inf
        return conn.deadline(
            self.timings,
            self.outbox.pending(),
            awaiting_welcome=self.phase is A.Phase.HELLO_SENT,
        )

    def _timer_action(self) -> list[A.Action]:
        return [A.Timer(self._deadline())]

    # -- plumbing ------------------------------------------------------------------------

    def _close(self, code: str, message: str, *, fatal: bool = False) -> list[A.Action]:
        self._conn = None
        self.phase = A.Phase.CLOSED if fatal else A.Phase.OFFLINE
        return [A.Close(code, message, fatal), *self._timer_action()]

    def _rewrite(self, newest: Register) -> list[A.Action]:
        """Write this device's last edit again, stamped above every stamp seen (the stale
        winner's included): it replaces the older edit that won."""
        restamped = Register(newest.archer_id, self.clock.now(self._wall_ms), newest.state)
        self.outbox.replace(restamped)  # a new stamp: due at once
        self._edits.remember(restamped)
        return [self._save(), A.Changed(frozenset({newest.archer_id}), "local")]

    def _save(self) -> A.SaveOutbox:
        self.outbox.clock = self.clock.last
        return A.SaveOutbox()

    def _known_stamps(self) -> Iterable[Stamp]:
        yield from (r.stamp for r in self.outbox.pending())
        yield from (r.stamp for r in self.outbox.seen_all())
        if self.outbox.clock is not None:
            yield self.outbox.clock
