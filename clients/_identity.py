"""Who a device writes as: the result of joining a shoot, safe to save and load."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sync.models import ArcherState, Profile

__all__ = ["Identity", "new_device_id"]


def new_device_id(prefix: str = "py") -> str:
    """A fresh device id: the tie-break in every stamp this device issues."""
    return f"{prefix}-{secrets.token_hex(6)}"


@dataclass(frozen=True, slots=True)
class Identity:
    """An archer's write access to one shoot from one device.

    Keep it secret: :attr:`token` lets anyone write this archer's scores.
    """

    relay_url: str
    """The relay's HTTP origin, e.g. ``"https://shoot.example"``."""
    code: str
    """The shoot's 4-digit code."""
    archer_id: str
    token: str
    """The secret write token issued when the archer joined."""
    device_id: str
    """This device's id; two devices of one archer have different ids."""
    initial: ArcherState | None = None
    """The state the archer joined with (name, round, profile), when this device joined
    them; lets the device score before it has ever reached the relay again."""

    def to_json(self) -> dict[str, Any]:
        initial = None
        if self.initial is not None:
            initial = {
                "name": self.initial.name,
                "round": self.initial.round,
                "bowstyle": self.initial.profile.bowstyle,
                "age_group": self.initial.profile.age_group,
                "gender": self.initial.profile.gender,
            }
        return {
            "relay_url": self.relay_url,
            "code": self.code,
            "archer_id": self.archer_id,
            "token": self.token,
            "device_id": self.device_id,
            "initial": initial,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Identity:
        """Raises ``KeyError``/``TypeError`` for a malformed mapping."""
        raw = data.get("initial")
        initial = None
        if isinstance(raw, dict):
            initial = ArcherState(
                name=str(raw["name"]),
                round=str(raw["round"]),
                profile=Profile(str(raw["bowstyle"]), str(raw["age_group"]), str(raw["gender"])),
            )
        return cls(
            relay_url=str(data["relay_url"]),
            code=str(data["code"]),
            archer_id=str(data["archer_id"]),
            token=str(data["token"]),
            device_id=str(data["device_id"]),
            initial=initial,
        )
