"""The relay's WebSocket-level heartbeat as a state machine: when to ping, when a peer is dead.

Theory of operation
-------------------
A phone that loses its network mid-session sends nothing more, not even a close; a client
that stops reading lets the relay's frames pile up and never sees them. Neither is noticed
by waiting for its next message, so the relay pings every connection at the WebSocket
level (browsers answer those by themselves, with no code of the client's) and drops one
whose ping stays unanswered: a client that stops reading stops answering too, since the
ping waits behind everything queued for it.

Like :class:`sync.relay_session.RelaySession`, :class:`Heartbeat` decides and does no I/O:
no socket, no clock. Its driver (:mod:`relay.websocket`) sleeps until :attr:`next_timer`,
calls :meth:`timer_fired` with the time, and carries out what comes back; it hands every
pong the peer sends to :meth:`pong_received`.

The rule, as ``docs/protocol.md`` states it:

* the relay looks at the connection every ``interval_s``, counting from when it opened
  (the next look is ``interval_s`` after the previous one fired);
* at a look, when no ping is outstanding (none sent yet, or the last one was answered by
  a pong carrying its payload) and the peer has sent nothing since the previous look, it
  sends a new ping (:class:`SendPing`), whose payload numbers it; a peer heard from needs
  none (the driver says whether it was, ``heard``);
* at a look, when the outstanding ping has waited more than ``timeout_s``, the peer is
  dead (:class:`Evict`): the driver ends the session without a close frame (a peer that
  does not read would never get one; its device sees the drop and reconnects). Nothing
  more is decided after that.

So with the defaults (15 s, 15 s) a peer that goes silent is pinged at the second look
after (the first still finds what it sent last) and dropped at the first look more than
15 s after that ping: at most 63.75 s after it went silent (a look can come a tick,
3.75 s, after its time, and one exactly 15 s after the ping is not yet more than 15 s).

Why a peer heard from is not pinged: the web client sends its own ``ping`` whenever it
has sent nothing for 15 s, so every browser is heard from between two looks, and the
relay's ping and its pong would double the heartbeat's frames for nothing. What it gives
up: only a pong shows that a peer *reads*, and a peer that sends but never reads is no
longer found by the heartbeat. It is found by what is sent to it instead: what it leaves
unread fills its bounded queue, and the relay resyncs, then closes it
(:mod:`relay.subscriber`); until then it costs its memory, as any idle connection does.

Why 15 s: every ping costs the relay a frame out and a pong in, for every connection,
whether its shoot is busy or not; with 10,000 connections a look every 5 s was 2,000 pings
and 2,000 pongs a second, as many frames as the shoots' own updates in the benchmark's
many-shoots run, and their bursts were most of that run's p95 latency
(``benchmarks/README.md``, "The heartbeat's interval"). A dead peer costs the relay only
its memory until it is dropped, and the clients find a dead relay with their own pings, so
the slower look costs nobody a reconnection.

Events and actions:

=====================================  ==================================================
event                                  actions
=====================================  ==================================================
``timer_fired(now, heard)``            ``SendPing``, ``Evict``, or nothing (too early, a
                                       ping still within its time, or the peer heard
                                       from since the previous look)
``pong_received(payload)``             nothing: a pong with the outstanding ping's
                                       payload answers it; any other is ignored
=====================================  ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeAlias

__all__ = [
    "PING_INTERVAL_S",
    "PONG_TIMEOUT_S",
    "Action",
    "Evict",
    "Heartbeat",
    "SendPing",
]

#: How often the relay looks at a connection (and pings it when no ping is outstanding).
PING_INTERVAL_S: Final = 15.0
#: How long a ping may stay unanswered before the connection is dropped.
PONG_TIMEOUT_S: Final = 15.0
_PAYLOAD_BYTES: Final = 8


@dataclass(frozen=True, slots=True)
class SendPing:
    """Send a WebSocket ping carrying ``payload``."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Evict:
    """The peer is dead: end its session without a close frame."""


Action: TypeAlias = SendPing | Evict


class Heartbeat:
    """One connection's heartbeat, as the relay keeps it.

    Args:
        opened: When the connection was accepted (monotonic seconds); the first look is
            ``interval_s`` later.
        interval_s: The time between two looks.
        timeout_s: How long a ping may wait for its pong.
    """

    def __init__(
        self,
        opened: float,
        interval_s: float = PING_INTERVAL_S,
        timeout_s: float = PONG_TIMEOUT_S,
    ) -> None:
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.next_timer = opened + interval_s
        """When :meth:`timer_fired` is due next (``inf`` once the peer is evicted)."""
        self.evicted = False
        self._sent = 0
        """How many pings were sent (the last one's payload is this number)."""
        self._sent_at = 0.0
        self._answered = True

    def timer_fired(self, now: float, heard: bool = False) -> list[Action]:
        """The time :attr:`next_timer` named (or a later one) has come; ``heard`` says
        whether the peer sent anything since the previous look (a frame of any kind)."""
        if self.evicted or now < self.next_timer:
            return []
        self.next_timer = now + self.interval_s
        if not self._answered:
            if now - self._sent_at <= self.timeout_s:
                return []
            self.evicted = True
            self.next_timer = float("inf")
            return [Evict()]
        if heard:
            return []  # it is there: a ping would only ask what its frames already said
        self._sent += 1
        self._sent_at, self._answered = now, False
        return [SendPing(self._payload(self._sent))]

    def pong_received(self, payload: bytes) -> None:
        """The peer sent a pong: it answers the outstanding ping if it carries its payload
        (an unsolicited pong, which RFC 6455 allows, answers nothing)."""
        if not self._answered and payload == self._payload(self._sent):
            self._answered = True

    @staticmethod
    def _payload(number: int) -> bytes:
        return number.to_bytes(_PAYLOAD_BYTES, "big")
