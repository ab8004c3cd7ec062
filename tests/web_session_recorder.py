"""The recording machinery for the browser's session transcripts: a :class:`Recorder` runs
real :class:`sync.client_session.ClientSession` machines against the real relay-side
machine (:class:`tests.session_peers.MemoryRelay`) and records, for every device, each event
it was given (frames as the relay's codec encoded them, base64) with the actions it
returned, named as the TypeScript port names them, and its state afterwards.

The scenarios it records are :mod:`tests.web_session_scenarios`.
"""

from __future__ import annotations

import base64
import math
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sync import client_actions as A
from sync.client_session import ClientSession
from sync.codec import encode, register_to_wire, state_to_wire
from sync.models import ArcherState
from sync.protocol import (
    Hello,
    Ping,
    Pong,
    ServerMessage,
    Write,
)
from sync.register import Register
from tests.session_peers import MemoryRelay

__all__ = ["JOINED", "TIMINGS", "WALL", "Json", "Recorder", "action_json", "add"]

WALL = 1_780_000_000_000
TIMINGS = A.SessionTimings(ping_interval_s=15, pong_timeout_s=10, resend_after_s=10)
JOINED = ArcherState("Chris", "national")

Json = dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _time(at: float) -> float | str:
    return at if math.isfinite(at) else ("inf" if at > 0 else "-inf")


def action_json(action: A.Action) -> Json:
    """An action as the TypeScript port names it (``clientActions.ts``)."""
    match action:
        case A.Send(message=message):
            return {"kind": "send", "frame": _b64(encode(message))}
        case A.SaveOutbox():
            return {"kind": "saveOutbox"}
        case A.Changed(archers=archers, source=source):
            return {"kind": "changed", "archers": sorted(archers), "source": source}
        case A.Welcomed(shoot=shoot, reset=reset):
            info = {
                "code": shoot.code,
                "shootId": shoot.shoot_id,
                "title": shoot.title,
                "creator": shoot.creator,
                "createdMs": shoot.created_ms,
                "expiresMs": shoot.expires_ms,
                "timeZone": shoot.time_zone,
            }
            return {"kind": "welcomed", "shoot": info, "reset": reset}
        case A.Acked(register=register):
            return {"kind": "acked", "register": register_to_wire(register)}
        case A.Replaced(lost=lost, winner=winner, acknowledged=acknowledged):
            return {
                "kind": "replaced",
                "lost": register_to_wire(lost),
                "winner": register_to_wire(winner),
                "acknowledged": acknowledged,
            }
        case A.Refused(register=register, code=code, message=message):
            return {
                "kind": "refused",
                "register": register_to_wire(register),
                "code": code,
                "message": message,
            }
        case A.NoticeArrived(notice=n):
            notice = {"kind": n.kind, "round": n.round, "archer": n.archer}
            return {"kind": "notice", "notice": {**notice, "text": n.text, "ends": n.ends}}
        case A.RelayError(code=code, message=message):
            return {"kind": "relayError", "code": code, "message": message}
        case A.Close(code=code, message=message, fatal=fatal):
            return {"kind": "close", "code": code, "message": message, "fatal": fatal}
        case A.Timer(at=at):
            return {"kind": "timer", "at": _time(at)}
        case A.Reconnect(at=at):
            return {"kind": "reconnect", "at": _time(at)}
    raise AssertionError(f"no JSON for {action!r}")


def _state_json(session: ClientSession) -> Json:
    return {
        "phase": session.phase.value,
        "pending": [register_to_wire(r) for r in session.outbox.pending()],
        "visible": {a: register_to_wire(r) for a, r in sorted(session.registers().items())},
        "next_timer": _time(session.next_timer),
    }


def add(*arrows: Any) -> Callable[[ArcherState], ArcherState]:
    return lambda s: replace(s, arrows=(*s.arrows, *arrows))


class Recorder:
    """Runs devices against a :class:`MemoryRelay`, recording each device's events."""

    def __init__(self, *devices: str, viewer: str | None = None) -> None:
        self.relay = MemoryRelay()
        self.now = 0.0
        self.rng = random.Random(11)
        """The reconnect jitter (seeded: the transcripts record what it drew)."""
        self.skew_ms: dict[str, int] = {}
        self.intercept: dict[str, Callable[[Write], ServerMessage | None]] = {}
        self.clients: dict[str, ClientSession] = {}
        self.config: dict[str, Json] = {}
        self.events: dict[str, list[Json]] = {}
        self.silent: set[str] = set()
        """Devices whose pings the relay does not answer."""
        self.held: list[tuple[str, Write]] = []
        """Writes the relay has not read yet (see :meth:`hold` and :meth:`release`)."""
        self.holding: set[str] = set()
        self.unanswered: set[str] = set()
        """Devices whose next ``hello`` the relay does not answer (the test does)."""
        for name in (*devices, *([viewer] if viewer else [])):
            archer = None if name == viewer else "chris"
            self.clients[name] = ClientSession(
                "1234",
                name,
                archer_id=archer,
                token="t" if archer else None,
                initial=JOINED if archer else None,
                timings=TIMINGS,
            )
            self.config[name] = {
                "device": name,
                "archer": archer,
                "token": "t" if archer else None,
                "initial": state_to_wire(JOINED) if archer else None,
                "timings": {
                    "pingIntervalS": TIMINGS.ping_interval_s,
                    "pongTimeoutS": TIMINGS.pong_timeout_s,
                    "resendAfterS": TIMINGS.resend_after_s,
                    "connectTimeoutS": TIMINGS.connect_timeout_s,
                    "backoffBaseS": TIMINGS.backoff_base_s,
                    "backoffCapS": TIMINGS.backoff_cap_s,
                },
            }
            self.events[name] = []

    def wall(self, name: str) -> int:
        return WALL + int(self.now * 1000) + self.skew_ms.get(name, 0)

    def _record(self, name: str, event: Json, actions: list[A.Action]) -> list[A.Action]:
        event["actions"] = [action_json(a) for a in actions]
        event["after"] = _state_json(self.clients[name])
        self.events[name].append(event)
        return actions

    # -- the device's events ----------------------------------------------------------------

    def connect(self, name: str) -> None:
        actions = self.clients[name].connected(self.now)
        self._carry(name, self._record(name, {"event": "connected", "now": self.now}, actions))

    def disconnect(self, name: str, code: int | None = None) -> None:
        """The connection, or a dial, ended."""
        jitter = round(self.rng.random(), 6)
        actions = self.clients[name].disconnected(self.now, jitter, code)
        event = {"event": "disconnected", "now": self.now, "jitter": jitter, "code": code}
        self._record(name, event, actions)

    def online(self, name: str) -> None:
        """The device's network came back."""
        actions = self.clients[name].online(self.now)
        self._record(name, {"event": "online", "now": self.now}, actions)

    def fire(self, name: str) -> None:
        wall = self.wall(name)
        actions = self.clients[name].timer_fired(self.now, wall)
        event = {"event": "timer", "now": self.now, "wall": wall}
        self._carry(name, self._record(name, event, actions))

    def write(self, name: str, *arrows: Any) -> Register:
        """The device adds ``arrows`` to its archer's state."""
        return self._write(name, add(*arrows), {"add": list(arrows)})

    def undo(self, name: str) -> Register:
        """The device takes back its archer's last arrow."""
        return self._write(name, lambda s: replace(s, arrows=s.arrows[:-1]), {"undo": 1})

    def _write(
        self, name: str, change: Callable[[ArcherState], ArcherState], what: Json
    ) -> Register:
        wall = self.wall(name)
        register, actions = self.clients[name].write(change, self.now, wall)
        event = {"event": "write", "now": self.now, "wall": wall, **what}
        event["register"] = register_to_wire(register)
        self._carry(name, self._record(name, event, actions))
        return register

    def deliver(self, name: str, message: ServerMessage) -> None:
        self.frame(name, encode(message))

    def frame(self, name: str, data: bytes | str) -> None:
        wall = self.wall(name)
        actions = self.clients[name].frame_received(data, self.now, wall)
        encoded = {"text": data} if isinstance(data, str) else {"frame": _b64(data)}
        event = {"event": "frame", "now": self.now, "wall": wall, **encoded}
        self._carry(name, self._record(name, event, actions))

    # -- the relay's side -----------------------------------------------------------------

    def _live(self) -> list[str]:
        return [n for n, c in self.clients.items() if c.phase is A.Phase.LIVE]

    def _carry(self, name: str, actions: list[A.Action]) -> None:
        for action in actions:
            if isinstance(action, A.Close):
                self.disconnect(name)
            if not isinstance(action, A.Send):
                continue
            message = action.message
            relay_ms = WALL + int(self.now * 1000)
            if isinstance(message, Hello) and name in self.unanswered:
                self.unanswered.discard(name)
            elif isinstance(message, Hello):
                self.deliver(name, self.relay.hello(name, message, relay_ms).message)
            elif isinstance(message, Write) and name in self.holding:
                self.held.append((name, message))
            elif isinstance(message, Write):
                hook = self.intercept.pop(name, None)
                answer = hook(message) if hook else None
                if answer is not None:
                    self.deliver(name, answer)
                    continue
                for sent in self.relay.write(name, message, relay_ms, self._live()):
                    self.deliver(sent.to, sent.message)
            elif isinstance(message, Ping) and name not in self.silent:
                self.deliver(name, Pong(message.nonce, relay_ms))

    def release(self) -> None:
        """The relay reads the writes it held, in order."""
        self.holding.clear()
        held, self.held = self.held, []
        for name, write in held:
            relay_ms = WALL + int(self.now * 1000)
            for sent in self.relay.write(name, write, relay_ms, self._live()):
                self.deliver(sent.to, sent.message)

    def flush(self) -> None:
        for answer in self.relay.flush():
            self.deliver(answer.to, answer.message)

    def transcripts(self, scenario: str) -> list[Json]:
        return [
            {"scenario": scenario, **self.config[n], "events": self.events[n]}
            for n in self.clients
            if self.events[n]
        ]
