"""Requests a follower relay forwarded to a shoot's owner: when each is sent again.

Theory of operation
-------------------
A relay that does not own a shoot forwards what its clients ask of the owner (a write,
admitting an archer) through Redis, and the owner answers through Redis
(:mod:`relay.forward` moves the entries). Either side may crash or be replaced on the way,
so a request is kept *pending* until its answer comes, and sent again:

* when it has gone unanswered for ``resend_after_s``, judged at a look every
  ``resend_after_s / 2`` (so between ``resend_after_s`` and 1.5 times that after it went
  out);
* at once when the shoot's lease changes hands (the new owner never saw it).

Sending one twice is harmless: writes carry the archer's whole state with its stamp, so a
repeat is a duplicate (acknowledged again) or superseded. An answer to a request that is
no longer pending (a repeat's second answer) is ignored. A request that needs no answer
(forgetting an archer) is never pending.

:class:`Forwarding` decides and does no I/O: the driver tells it what it sent
(:meth:`~Forwarding.sent`), what was answered (:meth:`~Forwarding.answered`) and when the
owner changed, fires its timer at :attr:`~Forwarding.next_timer`, and sends again what
comes back. ``R`` is whatever the driver keeps per request (the message and its entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Forwarding"]

R = TypeVar("R")


@dataclass(slots=True)
class _Pending(Generic[R]):
    request: R
    sent_at: float


class Forwarding(Generic[R]):
    """One follower's requests awaiting the owner's answer.

    Args:
        resend_after_s: A request unanswered this long is sent again.
        started: When the driver started (monotonic seconds); the first look is
            ``resend_after_s / 2`` later.
    """

    def __init__(self, resend_after_s: float, started: float) -> None:
        self.resend_after_s = resend_after_s
        self.next_timer = started + resend_after_s / 2
        """When :meth:`timer_fired` is due next."""
        self._pending: dict[str, _Pending[R]] = {}

    def __len__(self) -> int:
        """Requests waiting for their answer."""
        return len(self._pending)

    def sent(self, forward_id: str, request: R, now: float) -> None:
        """``request`` went out under ``forward_id`` and waits for its answer."""
        self._pending[forward_id] = _Pending(request, now)

    def answered(self, forward_id: str) -> R | None:
        """The request the owner answered, no longer pending; ``None`` for an answer to
        nothing pending (a repeat's), which is ignored."""
        pending = self._pending.pop(forward_id, None)
        return None if pending is None else pending.request

    def timer_fired(self, now: float) -> list[R]:
        """A look: the requests unanswered for ``resend_after_s``, to send again now."""
        if now < self.next_timer:
            return []
        self.next_timer = now + self.resend_after_s / 2
        due = [p for p in self._pending.values() if now - p.sent_at >= self.resend_after_s]
        for pending in due:
            pending.sent_at = now
        return [p.request for p in due]

    def owner_changed(self, now: float) -> list[R]:
        """The lease changed hands: every pending request, to send again now."""
        for pending in self._pending.values():
            pending.sent_at = now
        return [p.request for p in self._pending.values()]

    def take(self) -> list[R]:
        """Every pending request, no longer pending (handed to an actor taking over, or
        failed by a follower that stops)."""
        taken = [p.request for p in self._pending.values()]
        self._pending.clear()
        return taken
