"""The relay's heartbeat driver: one task runs every open WebSocket's heartbeat machine.

When to ping a session and when its peer is dead is decided by
:class:`sync.heartbeat.Heartbeat`, one machine per session; this module fires their timers,
sends the pings they ask for, hands them the pongs (through
:attr:`~relay.wssocket.OwnedSocket.on_pong`) and whether the peer sent anything since the
last look (:attr:`~relay.wssocket.OwnedSocket.heard`), and evicts a session one finds
dead: its scope is cancelled, with no close frame (a peer that does not read would not get
one, and its device sees the drop and reconnects).

Why one task for all sessions: a sleeping task per connection costs, for every ping, a
deadline registered and expired, a cancel scope and a wake-up; 5,000 connections pinged
every 5 s (the interval then) were a thousand of those a second, which a relay restarted
under thousands of reconnecting clients paid while it was also taking their hellos. One
task ticking a few times per interval fires the same timers with one wake-up per tick. A
ping goes out up to a tick late, and an eviction comes up to a tick late; nothing else
changes.

Why in slices: connections that opened together stay in step, so one tick can find
thousands due at once (a quarter of 10,000 connections that came in a few seconds). Pinged
in one pass, they held the event loop for tens of milliseconds, and their pongs came back
in one burst: every update fanned out meanwhile waited (the many-shoots benchmark's p95
was 176 ms, against 2 ms for the floor). The tick now looks at :data:`LOOKS_PER_SLICE`
sessions at a time and lets the scheduler run between slices, so other sessions' frames,
the actors and the pongs already back go in between.
"""

from __future__ import annotations

import logging
from typing import Final

import trio

from sync.heartbeat import Evict, SendPing
from sync.heartbeat import Heartbeat as Machine

from .wsframes import ping_frame
from .wssocket import OwnedSocket

__all__ = ["TICKS_PER_INTERVAL", "Heartbeat"]

log = logging.getLogger(__name__)

#: Ticks per ping interval: how late a ping or an eviction may be, as a share of it.
TICKS_PER_INTERVAL: Final = 4
#: Sessions looked at between two passes through the scheduler (a slice's pings cost a
#: few milliseconds of the event loop).
LOOKS_PER_SLICE: Final = 128


class Heartbeat:
    """Runs the heartbeat machine of every session it watches (see the module).

    Args:
        interval_s: Between two looks at one session.
        timeout_s: How long a ping may stay unanswered.
        looks_per_slice: Sessions looked at between two passes through the scheduler.
    """

    def __init__(
        self, interval_s: float, timeout_s: float, looks_per_slice: int = LOOKS_PER_SLICE
    ) -> None:
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._looks_per_slice = looks_per_slice
        self._machines: dict[OwnedSocket, Machine] = {}
        self._first_watched = trio.Event()

    def watch(self, owned: OwnedSocket) -> Machine:
        """Run a heartbeat for ``owned`` from now on, until :meth:`forget`."""
        machine = Machine(trio.current_time(), self._interval_s, self._timeout_s)
        owned.on_pong = machine.pong_received
        self._machines[owned] = machine
        self._first_watched.set()
        return machine

    def forget(self, owned: OwnedSocket) -> None:
        self._machines.pop(owned, None)

    async def run(self) -> None:
        """Fire every watched session's due timer and carry out its actions, until
        cancelled. With no session to watch, the task sleeps until one comes: a relay
        nobody is connected to sets no timer for its heartbeat."""
        tick_s = min(self._interval_s, self._timeout_s) / TICKS_PER_INTERVAL
        while True:
            if not self._machines:
                await self._first_watched.wait()
                self._first_watched = trio.Event()
            await trio.sleep(tick_s)  # the heartbeat's tick, not synchronisation
            now = trio.current_time()
            due = [item for item in self._machines.items() if item[1].next_timer <= now]
            for start in range(0, len(due), self._looks_per_slice):
                if start:
                    await trio.lowlevel.checkpoint()  # let the rest of the relay run
                for owned, machine in due[start : start + self._looks_per_slice]:
                    # A session may have ended (or been evicted) since the tick began.
                    if self._machines.get(owned) is machine:
                        heard, owned.heard = owned.heard, False
                        self._carry_out(owned, machine.timer_fired(now, heard))

    def _carry_out(self, owned: OwnedSocket, actions: list[SendPing | Evict]) -> None:
        for action in actions:
            match action:
                case SendPing(payload=payload):
                    owned.control(ping_frame(payload))
                case Evict():
                    log.info(
                        "no pong from %s in %.1f s: closing", owned.client_address, self._timeout_s
                    )
                    self.forget(owned)
                    if owned.scope is not None:
                        owned.scope.cancel()
