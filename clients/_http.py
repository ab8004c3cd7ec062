"""The relay's HTTP API: create a shoot, join it, read it.

Each helper opens a short-lived ``httpx.AsyncClient`` (it runs on Trio); errors come back
as :class:`~clients.ShootError` subclasses, translated in :mod:`clients._errors`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

import httpx

from sync.models import ArcherState, Profile

from ._errors import ShootError, error_for_code, translate
from ._identity import Identity, new_device_id

__all__ = ["ShootInfo", "create_shoot", "join_shoot", "read_shoot"]

#: Seconds an HTTP request may take before the relay counts as unreachable.
HTTP_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class ShootInfo:
    """A shoot as the relay's API describes it."""

    code: str
    title: str
    creator: str
    time_zone: str
    expires_ms: int
    join_url: str
    viewer_url: str
    qr_svg_url: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShootInfo:
        return cls(
            code=str(data["code"]),
            title=str(data["title"]),
            creator=str(data["creator"]),
            time_zone=str(data["time_zone"]),
            expires_ms=int(data["expires_ms"]),
            join_url=str(data["join_url"]),
            viewer_url=str(data["viewer_url"]),
            qr_svg_url=str(data["qr_svg_url"]),
        )

    def to_json(self) -> dict[str, Any]:
        """The fields as plain JSON (``fast-shoot create --json`` prints it)."""
        return asdict(self)


async def _request(
    relay_url: str, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    url = relay_url.rstrip("/") + path
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            response = await client.request(method, url, json=body)
    except (httpx.HTTPError, OSError) as exc:
        error = translate(exc, relay_url)
        assert error is not None
        raise error from exc
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.is_success and isinstance(data, dict):
        return data
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        err = data["error"]
        raise error_for_code(str(err.get("code")), str(err.get("message")))
    raise ShootError(
        "bad_response", f"The relay at {relay_url} answered {response.status_code} unexpectedly."
    )


async def create_shoot(
    relay_url: str, *, creator: str, title: str = "", time_zone: str = "UTC"
) -> ShootInfo:
    """Create a shoot; it lives until the end of the day in ``time_zone``.

    Raises:
        ShootError: ``invalid_name``, ``invalid_title``, ``invalid_time_zone``,
            ``no_code_available``; :class:`~clients.RelayUnreachable`.
    """
    data = await _request(
        relay_url,
        "POST",
        "/api/shoots",
        {"creator": creator, "title": title, "time_zone": time_zone},
    )
    return ShootInfo.from_json(data)


async def join_shoot(
    relay_url: str,
    code: str,
    *,
    name: str,
    round: str,
    bowstyle: str = "recurve",
    age_group: str = "adult",
    gender: str = "open",
    device_id: str | None = None,
) -> Identity:
    """Join a shoot as a new archer; the identity holds the secret write token.

    Example::

        me = await join_shoot(url, "4821", name="Chris", round="national")
        async with connect(url, me.code, identity=me, outbox_path=path) as client:
            await client.score_end([9, 9, 7, 7, 5, "M"])

    Raises:
        UnknownShoot, ShootExpired, InvalidScore (``invalid_name``, ``unknown_round``,
        ``invalid_profile``), RelayUnreachable.
    """
    device_id = device_id or new_device_id()
    body = {
        "name": name,
        "round": round,
        "bowstyle": bowstyle,
        "age_group": age_group,
        "gender": gender,
        "device_id": device_id,
    }
    data = await _request(relay_url, "POST", f"/api/shoots/{code}/join", body)
    initial = ArcherState(name.strip(), round, Profile(bowstyle, age_group, gender))
    return Identity(relay_url, code, str(data["archer_id"]), str(data["token"]), device_id, initial)


async def add_device(
    relay_url: str, code: str, *, archer_id: str, token: str, device_id: str | None = None
) -> Identity:
    """Another device for an archer who has joined (phone and tablet, say).

    Raises:
        Unauthorized: the archer id and token do not match. And as :func:`join_shoot`.
    """
    device_id = device_id or new_device_id()
    body = {"archer_id": archer_id, "token": token, "device_id": device_id}
    data = await _request(relay_url, "POST", f"/api/shoots/{code}/join", body)
    return Identity(relay_url, code, str(data["archer_id"]), str(data["token"]), device_id)


async def read_shoot(relay_url: str, code: str) -> dict[str, Any]:
    """The shoot, its leaderboard and archers as the relay's JSON (``GET /api/shoots/{code}``)."""
    return await _request(relay_url, "GET", f"/api/shoots/{code}")
