"""Running a :class:`~clients.ShootClient` for the length of an ``async with`` block."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from sync.wall import system_wall_ms

from ._client import ShootClient
from ._identity import Identity
from ._options import ClientOptions

__all__ = ["connect"]


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
