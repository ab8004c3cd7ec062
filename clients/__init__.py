"""The Python SDK for fast-shoot: create and join shoots, score offline, watch live.

Example::

    from pathlib import Path

    import trio
    from clients import connect, create_shoot, join_shoot

    async def main() -> None:
        url = "http://127.0.0.1:8080"
        shoot = await create_shoot(url, creator="Sam", title="Club night")
        me = await join_shoot(url, shoot.code, name="Chris", round="national")
        async with connect(url, shoot.code, identity=me, outbox_path=Path("outbox.json")) as c:
            await c.score_end([9, 9, 7, 7, 5, "M"])   # on the leaderboard at once
            await c.wait_synced()                       # durable on the relay
            print(c.leaderboard.to_dict())

    trio.run(main)

Writes go to a durable outbox first and reach the relay whenever it is reachable; the
connection reconnects by itself with jittered backoff. Everything the SDK raises is a
:class:`ShootError`.
"""

from __future__ import annotations

from ._backoff import Backoff
from ._client import ClientOptions, ShootClient, connect, system_wall_ms
from ._errors import (
    InvalidScore,
    NotJoined,
    RelayUnreachable,
    ShootError,
    ShootExpired,
    Unauthorized,
    UnknownShoot,
)
from ._events import (
    ConnectionChanged,
    ConnectionState,
    Event,
    NoticeReceived,
    RegistersChanged,
    WriteAcked,
    WriteRefused,
    WriteSuperseded,
)
from ._http import ShootInfo, add_device, create_shoot, join_shoot, read_shoot
from ._identity import Identity
from ._scoring import parse_arrow

__all__ = [
    "Backoff",
    "ClientOptions",
    "ConnectionChanged",
    "ConnectionState",
    "Event",
    "Identity",
    "InvalidScore",
    "NotJoined",
    "NoticeReceived",
    "RegistersChanged",
    "RelayUnreachable",
    "ShootClient",
    "ShootError",
    "ShootExpired",
    "ShootInfo",
    "Unauthorized",
    "UnknownShoot",
    "WriteAcked",
    "WriteRefused",
    "WriteSuperseded",
    "add_device",
    "connect",
    "create_shoot",
    "join_shoot",
    "parse_arrow",
    "read_shoot",
    "system_wall_ms",
]
