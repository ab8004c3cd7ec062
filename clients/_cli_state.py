"""Where the ``fast-shoot`` command keeps this device's identity and outbox.

``join`` saves the identity (mode 600: it holds the write token) in the state folder;
the archer's commands load it, and keep the outbox beside it, one file per shoot and
archer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from ._errors import NotJoined
from ._identity import Identity
from ._outbox import write_atomically

__all__ = ["IDENTITY_FILE", "load_identity", "outbox_path", "save_identity"]

IDENTITY_FILE: Final = "identity.json"


def outbox_path(home: Path, identity: Identity) -> Path:
    return home / f"outbox-{identity.code}-{identity.archer_id}.json"


def load_identity(home: Path) -> Identity:
    path = home / IDENTITY_FILE
    try:
        return Identity.from_json(json.loads(path.read_text("utf-8")))
    except FileNotFoundError:
        raise NotJoined(
            "not_joined", "This device has not joined a shoot; run `fast-shoot join CODE` first."
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NotJoined("not_joined", f"The identity file {path} cannot be read ({exc}).") from exc


def save_identity(home: Path, identity: Identity) -> Path:
    path = home / IDENTITY_FILE
    write_atomically(path, json.dumps(identity.to_json(), indent=2).encode("utf-8"))
    path.chmod(0o600)  # it holds the write token
    return path
