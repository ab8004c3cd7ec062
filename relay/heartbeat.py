"""The relay's heartbeat: one task pings every open WebSocket and evicts the silent ones.

Every session is pinged once per ``interval_s``; a session whose ping is still unanswered
``timeout_s`` after it went out is evicted: its scope is cancelled, with no close frame (a
peer that does not read would not get one, and its device sees the drop and reconnects).
Browsers answer pings by themselves, so this catches a phone that lost its network and a
client that stopped reading, whose pings wait behind everything queued for it.

Why one task for all sessions: a sleeping task per connection costs, for every ping, a
deadline registered and expired, a cancel scope and a wake-up; 5,000 connections pinged
every 5 s are a thousand of those a second, which a relay restarted under thousands of
reconnecting clients paid while it was also taking their hellos. One task ticking a few
times per interval does the same pings with one wake-up per tick. A ping goes out up to a
tick late, and an eviction comes up to a tick late; nothing else changes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import trio

from .wsframes import ping_frame
from .wssocket import OwnedSocket

__all__ = ["Beat", "Heartbeat"]

log = logging.getLogger(__name__)

#: Ticks per ping interval: how late a ping or an eviction may be, as a share of it.
TICKS_PER_INTERVAL: Final = 4


@dataclass(slots=True)
class Beat:
    """One session's heartbeat."""

    owned: OwnedSocket
    due: float
    """When the next ping (or the check of the last one) is due, on trio's clock."""
    sent: int = 0
    """The last ping's number (its payload, 8 bytes big-endian)."""
    sent_at: float = 0.0
    answered: bool = True
    evicted: bool = False
    """Set when the session was ended for an unanswered ping."""


class Heartbeat:
    """Pings the sessions it watches (see the module).

    Args:
        interval_s: Between two pings of one session.
        timeout_s: How long a ping may stay unanswered.
    """

    def __init__(self, interval_s: float, timeout_s: float) -> None:
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._beats: dict[OwnedSocket, Beat] = {}

    def watch(self, owned: OwnedSocket) -> Beat:
        """Ping ``owned`` from one interval from now on, until :meth:`forget`."""
        beat = Beat(owned, trio.current_time() + self._interval_s)
        self._beats[owned] = beat
        return beat

    def forget(self, owned: OwnedSocket) -> None:
        self._beats.pop(owned, None)

    async def run(self) -> None:
        """Ping and check every watched session, until cancelled."""
        tick_s = min(self._interval_s, self._timeout_s) / TICKS_PER_INTERVAL
        while True:
            await trio.sleep(tick_s)  # the heartbeat's tick, not synchronisation
            now = trio.current_time()
            for beat in list(self._beats.values()):
                if beat.due <= now:
                    self._beat(beat, now)

    def _beat(self, beat: Beat, now: float) -> None:
        owned = beat.owned
        if not beat.answered:
            if owned.last_pong == beat.sent.to_bytes(8, "big"):
                beat.answered = True
            elif now - beat.sent_at > self._timeout_s:
                log.info(
                    "no pong from %s in %.1f s: closing", owned.client_address, self._timeout_s
                )
                beat.evicted = True
                self.forget(owned)
                if owned.scope is not None:
                    owned.scope.cancel()
                return
        beat.due = now + self._interval_s
        if beat.answered:
            beat.sent += 1
            beat.sent_at, beat.answered = now, False
            owned.control(ping_frame(beat.sent.to_bytes(8, "big")))
