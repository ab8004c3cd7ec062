"""Transcripts of :class:`sync.client_session.ClientSession`, for the browser's port.

Each scenario runs real client machines against the real relay-side machine
(:class:`tests.session_peers.MemoryRelay`) and records, for every device, each event it
was given (frames as the relay's codec encoded them, base64) with the actions it returned
and its state afterwards. ``clients/web/test/session-fixtures.test.ts`` replays every
device's events through ``clientSession.ts`` and compares each action, so the browser's
machine cannot drift from the Python one; ``tests/test_web_session.py`` regenerates the
transcripts and fails if the committed fixture is stale.

Regenerate after a deliberate change of the machine: ``python -m tests.test_web_session``.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sync import client_actions as A
from sync.client_session import ClientSession
from sync.codec import encode, register_to_wire, state_to_wire
from sync.models import ArcherState
from sync.protocol import (
    Error,
    Hello,
    Notice,
    Ping,
    Pong,
    ServerMessage,
    Write,
)
from sync.register import Register
from tests.session_peers import MemoryRelay

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
        """Devices whose pings the relay does not answer."""
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
        actions = self.clients[name].disconnected(code)
        self._record(name, {"event": "disconnected", "code": code}, actions)

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


# -- scenarios ---------------------------------------------------------------------------


def hello_welcome_heartbeat() -> Recorder:
    r = Recorder("phone", viewer="screen")
    r.connect("screen")
    r.write("phone", 9, 9)  # offline: saved and shown, not sent
    r.connect("phone")
    r.fire("phone")  # the welcome made the write due
    r.now = 1.0
    r.flush()  # durable: the ack goes out
    r.now = 16.0
    r.fire("phone")  # quiet for 15 s: ping, answered
    r.fire("screen")
    r.silent = {"phone"}
    r.now = 31.0
    r.fire("phone")  # ping, never answered
    r.now = 41.0
    r.fire("phone")  # heartbeat timeout
    r.unanswered.add("phone")
    r.connect("phone")
    r.now = 46.0
    r.fire("phone")  # not yet
    r.now = 51.0
    r.fire("phone")  # no welcome in time
    return r


def refusals() -> Recorder:
    r = Recorder("phone", "tablet", "kiosk")
    r.connect("phone")
    r.write("phone", 9)
    r.intercept["phone"] = lambda w: Error("invalid_score", "No such arrow.", id=w.id)
    r.fire("phone")  # refused: it leaves the outbox
    r.deliver("phone", Error("busy", "The relay is busy."))  # about the session
    notice = Notice("lead", "national", "chris", "Chris leads.", 1, 4, None, 3)
    r.deliver("phone", notice)
    r.frame("phone", "text")  # not a binary frame
    r.connect("phone")
    r.unanswered.add("tablet")
    r.connect("tablet")
    r.deliver("tablet", Error("rate_limited", "Too many sessions."))  # not fatal
    r.connect("tablet")
    r.unanswered.add("tablet")
    r.connect("tablet")
    r.deliver("tablet", Error("unauthorized", "Join again."))  # fatal
    r.connect("tablet")
    r.connect("kiosk")
    r.disconnect("kiosk", 4404)
    r.connect("kiosk")
    return r


def rate_limited_and_clock_skew() -> Recorder:
    r = Recorder("phone")
    r.skew_ms["phone"] = 3_600_000  # an hour ahead: beyond the relay's bound
    r.connect("phone")
    r.write("phone", 7)
    r.intercept["phone"] = lambda w: Error("rate_limited", "Slow down.", id=w.id)
    r.fire("phone")  # the bucket empties: the resend waits for a token
    r.now = r.clients["phone"].next_timer
    r.fire("phone")  # sent again; the relay refuses the stamp: clock_skew
    r.fire("phone")  # re-stamped from the relay's time: due once the bucket allows
    r.now = r.clients["phone"].next_timer
    r.fire("phone")
    r.now += 0.5
    r.flush()
    r.write("phone", 9)
    r.fire("phone")
    r.flush()
    return r


def newer_write_after_a_correction() -> Recorder:
    """A write stamped before the correction is pending when the next one, stamped after it
    (the smaller stamp), is made on top of it: the newer write replaces it all the same."""
    r = Recorder("phone")
    r.skew_ms["phone"] = 3_600_000
    r.connect("phone")
    r.write("phone", 9)
    r.holding.add("phone")
    r.fire("phone")  # in flight
    r.now = 0.5
    r.write("phone", 7)  # replaces the one in flight, stamped an hour ahead
    r.release()  # clock_skew for the first: the clock is corrected, the second stays
    r.now = 1.0
    r.write("phone", 5)  # smaller stamp, newer state
    r.fire("phone")
    r.flush()
    return r


def held_by_the_winner_then_undone() -> Recorder:
    """The tablet's equal end wins over the phone's (it holds it: nothing lost yet); then the
    tablet's undo replaces it, and the phone's arrow is gone: reported then."""
    r = Recorder("phone", "tablet")
    r.write("phone", 9)
    r.now = 1.0
    r.write("tablet", 9)
    r.connect("tablet")
    r.fire("tablet")
    r.flush()
    r.connect("phone")
    r.fire("phone")
    r.flush()  # superseded by a winner that holds the phone's end
    r.now = 2.0
    r.undo("tablet")
    r.fire("tablet")
    r.flush()
    return r


def winner_undone_before_the_answer() -> Recorder:
    """The ``superseded`` answer names a winner that holds the phone's end, but the phone
    has already seen that winner undone: the loss is reported when the answer comes."""
    r = Recorder("phone", "tablet")
    r.write("phone", 9)
    r.now = 1.0
    r.write("tablet", 9)
    r.connect("tablet")
    r.fire("tablet")  # applied, not durable
    r.connect("phone")
    r.fire("phone")  # superseded, held until the winner is durable
    r.now = 2.0
    r.undo("tablet")
    r.fire("tablet")  # the undo reaches the phone at once
    r.flush()
    return r


def both_ahead_restamped() -> Recorder:
    """Both devices far ahead: every write is refused and re-stamped; the phone's longer
    state loses to the tablet's later, shorter one, judged by the re-stamped edit."""
    r = Recorder("phone", "tablet")
    r.skew_ms["phone"] = r.skew_ms["tablet"] = 3_600_000
    r.connect("phone")
    r.write("phone", 9, 9)
    r.fire("phone")  # clock_skew: re-stamped
    r.fire("phone")
    r.flush()
    r.now = 1.0
    r.write("tablet", 7)  # offline, never saw the phone's
    r.connect("tablet")
    r.fire("tablet")  # clock_skew
    r.fire("tablet")
    r.flush()
    return r


def reset_after_crash() -> Recorder:
    r = Recorder("phone")
    r.connect("phone")
    r.write("phone", 5)
    r.fire("phone")
    r.flush()
    r.write("phone", 7)
    r.fire("phone")  # applied and fanned out, never durable
    r.disconnect("phone")
    r.relay.crash()
    r.now = 5.0
    r.connect("phone")  # the replica knows items the relay lost: reset, resend
    r.fire("phone")
    r.flush()
    return r


def superseded_pending() -> Recorder:
    """Both offline; the tablet's newer end reaches the relay first: the phone's is lost."""
    r = Recorder("phone", "tablet")
    r.write("phone", 9, 9, 9)
    r.now = 1.0
    r.write("tablet", 5, 5, 5)
    r.connect("tablet")
    r.fire("tablet")
    r.flush()
    r.connect("phone")  # the welcome shows the tablet's; the phone's own is pending
    r.fire("phone")
    r.flush()  # superseded, once the winner is durable
    return r


def pending_beaten_then_written_over() -> Recorder:
    r = Recorder("phone", "tablet")
    r.connect("tablet")
    r.write("phone", 9)  # pending, offline
    r.now = 1.0
    r.write("tablet", 1, 3, 5)
    r.fire("tablet")
    r.flush()
    r.connect("phone")
    r.now = 2.0
    r.write("phone", 7)  # built on the tablet's state: the pending end is replaced
    r.fire("phone")
    r.flush()
    return r


def acknowledged_then_replaced() -> Recorder:
    r = Recorder("phone", "tablet")
    r.write("tablet", 5, 5)  # offline, a later stamp than nothing
    r.connect("phone")
    r.write("phone", 9, 9)
    r.fire("phone")
    r.flush()  # acknowledged
    r.now = 3.0
    r.write("tablet", 5)  # newer, without the phone's arrows
    r.connect("tablet")
    r.fire("tablet")
    r.flush()
    return r


def ack_after_newer_state() -> Recorder:
    r = Recorder("phone", "tablet")
    r.write("tablet", 3)
    r.connect("phone")
    r.connect("tablet")
    r.write("phone", 9)
    r.fire("phone")  # applied, not durable: no answer yet
    r.now = 1.0
    r.write("tablet", 3)  # the tablet never saw the phone's end
    r.fire("tablet")
    r.flush()  # the phone's ack arrives after the tablet's newer state
    return r


SCENARIOS: dict[str, Callable[[], Recorder]] = {
    "hello_welcome_heartbeat": hello_welcome_heartbeat,
    "refusals": refusals,
    "rate_limited_and_clock_skew": rate_limited_and_clock_skew,
    "newer_write_after_a_correction": newer_write_after_a_correction,
    "reset_after_crash": reset_after_crash,
    "held_by_the_winner_then_undone": held_by_the_winner_then_undone,
    "winner_undone_before_the_answer": winner_undone_before_the_answer,
    "both_ahead_restamped": both_ahead_restamped,
    "superseded_pending": superseded_pending,
    "pending_beaten_then_written_over": pending_beaten_then_written_over,
    "acknowledged_then_replaced": acknowledged_then_replaced,
    "ack_after_newer_state": ack_after_newer_state,
}


def generate() -> Json:
    transcripts: list[Json] = []
    for name, scenario in SCENARIOS.items():
        transcripts += scenario().transcripts(name)
    return {"transcripts": transcripts}
