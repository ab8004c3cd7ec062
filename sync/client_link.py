"""One connection's share of a client session: what lives only as long as the connection,
and the timing rules that read it.

:class:`~sync.client_session.ClientSession` keeps one :class:`Link` while it is connected
and drops it when the connection ends, so nothing here can leak from one connection into
the next: the requests in flight, what was sent when, the write bucket and the heartbeat.
The rules here only answer questions about time (is a ping due, is the relay dead, when
must a write go out again, when should the driver wake the session next); what to do about
the answers is the session's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from .client_actions import SessionTimings
from .clock import Stamp
from .limits import TokenBucket
from .register import Register

__all__ = ["Link"]


@dataclass(slots=True)
class Link:
    """What lives only as long as one connection."""

    opened: float
    last_sent: float
    last_received: float
    bucket: TokenBucket
    ping_at: float | None = None
    """When the unanswered ``ping`` went out, if one is out."""
    inflight: dict[int, Register] = field(default_factory=dict)
    """Writes sent and not answered yet, by request id."""
    sent: dict[str, tuple[Stamp, float]] = field(default_factory=dict)
    """Per archer: the stamp last sent on this connection, and when."""

    def heartbeat(self, now: float, timings: SessionTimings) -> Literal["ping", "dead"] | None:
        """Whether to send a ``ping`` now (``"ping"``, noted as sent), whether the relay is
        dead (``"dead"``: nothing arrived ``pong_timeout_s`` after the ping), or neither."""
        if self.ping_at is not None:
            if self.last_received >= self.ping_at:
                self.ping_at = None  # something came back: alive
            elif now >= self.ping_at + timings.pong_timeout_s:
                return "dead"
            else:
                return None
        # Quiet in either direction counts: a client that keeps resending writes into a
        # dead connection must still find out that nothing comes back.
        if now < min(self.last_sent, self.last_received) + timings.ping_interval_s:
            return None
        self.ping_at = self.last_sent = now
        return "ping"

    def due_at(self, register: Register, resend_after_s: float) -> float:
        """When ``register`` must go out on this connection: at once if it was never sent
        on it (or was re-stamped since), else ``resend_after_s`` after it was sent."""
        sent = self.sent.get(register.archer_id)
        if sent is None or sent[0] != register.stamp:
            return -math.inf
        return sent[1] + resend_after_s

    def deadline(
        self, timings: SessionTimings, pending: Iterable[Register], *, awaiting_welcome: bool
    ) -> float:
        """When the session must be woken next (its timer)."""
        if awaiting_welcome:
            return self.opened + timings.connect_timeout_s
        if self.ping_at is not None:
            # Anything received since the ping settles it at the next firing.
            at = self.ping_at + timings.pong_timeout_s
            if self.last_received >= self.ping_at:
                at = min(self.last_sent, self.last_received) + timings.ping_interval_s
        else:
            at = min(self.last_sent, self.last_received) + timings.ping_interval_s
        due = min((self.due_at(r, timings.resend_after_s) for r in pending), default=math.inf)
        if due < math.inf:
            # The next token; a hair later, so that the bucket surely has it then.
            bucket = self.bucket
            token_at = bucket.updated + bucket.retry_after(bucket.updated)
            due = max(due, token_at + (1e-6 if token_at > bucket.updated else 0.0))
        return min(at, due)
