"""Transcripts of :class:`sync.client_session.ClientSession`, for the browser's port: the
scenarios, each a short story of devices, a relay and a network, recorded by
:class:`tests.web_session_recorder.Recorder`.

``clients/web/test/session-fixtures.test.ts`` replays every device's events through
``clientSession.ts`` and compares each action, so the browser's machine cannot drift from
the Python one; ``tests/test_web_session.py`` regenerates the transcripts and fails if the
committed fixture is stale.

Regenerate after a deliberate change of the machine: ``python -m tests.test_web_session``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sync.protocol import Error, Notice, Update, Welcome
from tests.session_peers import SHOOT, MemoryRelay
from tests.web_session_recorder import WALL, Json, Recorder

__all__ = ["SCENARIOS", "generate"]


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


def ack_after_own_newer_write() -> Recorder:
    """The archer scores again before the first end's ack: both writes are reported
    acknowledged, each once, in order."""
    r = Recorder("phone")
    r.connect("phone")
    r.write("phone", 9)
    r.fire("phone")  # applied, not durable: no answer yet
    r.write("phone", 7)  # replaces the pending write
    r.fire("phone")
    r.flush()  # the first write's ack names a write the outbox no longer holds
    return r


def unappliable_updates() -> Recorder:
    """The relay sends document updates the replica cannot apply, in a welcome and live:
    the connection ends (``invalid_update``) and the next one catches up."""
    garbage = b"\xff\xff\xff"
    r = Recorder("phone")
    r.write("phone", 9)
    r.unanswered.add("phone")
    r.connect("phone")
    r.deliver("phone", Welcome(SHOOT, True, garbage, WALL, "archer", "chris"))
    r.now = 1.0
    r.connect("phone")
    r.fire("phone")
    r.flush()
    r.deliver("phone", Update(garbage))
    r.now = 2.0
    r.connect("phone")
    return r


def reconnect_schedule() -> Recorder:
    """The reconnect rule: within ``base`` after a welcomed connection drops, then doubling
    ceilings up to the cap; a welcome and the network coming back start afresh; a session
    refused for good never dials again."""
    r = Recorder("phone")
    r.connect("phone")
    r.now = 1.0
    r.disconnect("phone")  # was welcomed: within 0.5 s
    r.now = 1.5
    r.unanswered.add("phone")
    r.connect("phone")
    r.now = 11.5
    r.fire("phone")  # no welcome in time: the second attempt, within 1 s
    for _ in range(8):  # dials that fail: 2, 4, 8, 16, then the 30 s cap
        r.now += 1.0
        r.disconnect("phone")
    r.online("phone")  # the network is back: dial now, the schedule afresh
    r.now += 0.1
    r.disconnect("phone")
    r.now += 1.0
    r.connect("phone")
    r.online("phone")  # live: nothing to do
    r.now += 1.0
    r.disconnect("phone")  # welcomed again: within 0.5 s
    r.now += 1.0
    r.connect("phone")
    r.disconnect("phone", 4404)  # the shoot is gone: no more dialling
    r.online("phone")
    return r


def shoot_code_reused() -> Recorder:
    """A device kept writes for a shoot whose code names another shoot the next day: the
    welcome naming the new shoot empties the outbox before anything is sent."""
    r = Recorder("phone")
    r.connect("phone")
    r.write("phone", 9)
    r.fire("phone")
    r.flush()
    r.disconnect("phone")
    r.now = 1.0
    r.write("phone", 7)  # offline: kept for the old shoot
    r.relay = MemoryRelay(replace(SHOOT, shoot_id="shoot-2"))
    r.now = 2.0
    r.connect("phone")
    r.fire("phone")  # nothing of the old shoot goes out
    r.write("phone", 5)  # a write for the new shoot is sent as usual
    r.fire("phone")
    r.flush()
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
    "ack_after_own_newer_write": ack_after_own_newer_write,
    "unappliable_updates": unappliable_updates,
    "reconnect_schedule": reconnect_schedule,
    "shoot_code_reused": shoot_code_reused,
}


def generate() -> Json:
    transcripts: list[Json] = []
    for name, scenario in SCENARIOS.items():
        transcripts += scenario().transcripts(name)
    return {"transcripts": transcripts}
