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

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._backoff import Backoff
    from ._client import ShootClient, system_wall_ms
    from ._connect import connect
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
    from ._options import ClientOptions
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

#: Where each public name lives. They load on first use (PEP 562), so ``import clients``
#: (and the ``fast-shoot`` command's ``--help``) does not pay for Trio, httpx, pycrdt and
#: numpy before anything needs them.
_LOCATIONS: dict[str, str] = {
    "Backoff": "._backoff",
    "ClientOptions": "._options",
    "ConnectionChanged": "._events",
    "ConnectionState": "._events",
    "Event": "._events",
    "Identity": "._identity",
    "InvalidScore": "._errors",
    "NotJoined": "._errors",
    "NoticeReceived": "._events",
    "RegistersChanged": "._events",
    "RelayUnreachable": "._errors",
    "ShootClient": "._client",
    "ShootError": "._errors",
    "ShootExpired": "._errors",
    "ShootInfo": "._http",
    "Unauthorized": "._errors",
    "UnknownShoot": "._errors",
    "WriteAcked": "._events",
    "WriteRefused": "._events",
    "WriteSuperseded": "._events",
    "add_device": "._http",
    "connect": "._connect",
    "create_shoot": "._http",
    "join_shoot": "._http",
    "parse_arrow": "._scoring",
    "read_shoot": "._http",
    "system_wall_ms": "._client",
}


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'clients' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
