"""Who may do what: sessions' access, and the throttle that makes guessing codes slow.

Joining a shoot issues a random write token for the archer (:mod:`relay.credentials`). A
second device of the same archer presents the archer id and token it was given and gets
the same rights. The check is made by the shoot's actor, from memory, so the archers of a
loaded shoot can reconnect even while Redis is away.

Four-digit codes are easy to guess, so failed attempts (an unknown code, a wrong token)
are throttled per client address, over HTTP joins and WebSocket hellos alike. Only
failures count: a club's Wi-Fi puts thirty archers behind one address, and their
successful joins and reconnects must never lock each other out. When an address has used
up its failures, requests without credentials are refused at once (a correct code must not
answer differently from a wrong one), but an archer's own device presenting its archer id
and token is still let in if they match: a 24-byte random token cannot be guessed, so
this tells a guesser nothing, and one mistyped code at the club does not cut everyone's
live scores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sync.limits import JOIN_FAILURES_BURST, JOIN_FAILURES_PER_S
from sync.protocol import Hello

from .actor import CheckAccess
from .registry import ShootExpired, UnknownShoot
from .throttle import AddressThrottle, Throttled

if TYPE_CHECKING:
    from .context import RelayContext

__all__ = ["AccessDenied", "JoinThrottle", "Throttled", "authorize"]


class AccessDenied(Exception):
    """The archer id and token do not match."""


class JoinThrottle(AddressThrottle):
    """Failed guesses per client address (successes never count)."""

    def __init__(self) -> None:
        super().__init__(JOIN_FAILURES_BURST, JOIN_FAILURES_PER_S)

    def screen(self, address: str, *, credentialed: bool) -> bool:
        """Admit a request or raise :class:`Throttled`; return whether it is on probation.

        On probation (the address is out of failures, the request carries an archer id and
        token) the request may still succeed, but any failure must be reported through
        :meth:`failed` with ``probation=True``, which raises :class:`Throttled`: a guesser
        learns nothing about the code from the answer.
        """
        if self.allows(address):
            return False
        if not credentialed:
            raise self.error(address)
        return True

    def failed(self, address: str, *, probation: bool = False) -> None:
        """Count a failed attempt; on probation, raise :class:`Throttled` for it."""
        self.spend(address)
        if probation:
            raise self.error(address)


async def authorize(relay: RelayContext, hello: Hello, address: str) -> str | None:
    """Check a hello; return the archer id it may write for (``None`` for viewers).

    Raises:
        Throttled, UnknownShoot, ShootExpired, AccessDenied, StoreUnavailable.
    """
    archer = hello.archer if hello.role == "archer" else None
    credentialed = archer is not None and hello.token is not None
    probation = relay.throttle.screen(address, credentialed=credentialed)
    check = CheckAccess(archer, hello.token)
    try:
        await relay.registry.send(hello.shoot, check)
    except UnknownShoot:
        relay.throttle.failed(address, probation=probation)
        raise
    access = await check.reply.wait()
    if access == "denied":
        relay.throttle.failed(address, probation=probation)
        raise AccessDenied(archer)
    if access == "expired":
        if probation:
            raise relay.throttle.error(address)
        raise ShootExpired(hello.shoot)
    return archer
