"""The browser's client session machine is the SDK's: ``clients/web/src/protocol/
clientSession.ts`` replays the transcripts of ``clients/web/test/fixtures/session.json``
(its node test compares every action and the state after each event), and this module
regenerates them with :class:`sync.client_session.ClientSession` against the real
relay-side machine and compares, so the fixture cannot drift from the Python machine.

Regenerate after a deliberate change of the machine: ``python -m tests.test_web_session``.
"""

from __future__ import annotations

import json
import sys

from .web_session_scenarios import generate
from .web_tools import WEB

FIXTURES = WEB / "test" / "fixtures" / "session.json"


def _render() -> str:
    return json.dumps(generate(), indent=1, sort_keys=True) + "\n"


def test_the_shared_session_transcripts_are_the_python_machines() -> None:
    assert FIXTURES.read_text("utf-8") == _render(), (
        "clients/web/test/fixtures/session.json is stale: run `python -m tests.test_web_session`"
    )


def test_the_transcripts_cover_every_rule_the_port_must_follow() -> None:
    actions = [
        action
        for transcript in generate()["transcripts"]
        for event in transcript["events"]
        for action in event["actions"]
    ]
    kinds = {a["kind"] for a in actions}
    assert kinds >= {
        "send",
        "saveOutbox",
        "changed",
        "welcomed",
        "acked",
        "replaced",
        "refused",
        "notice",
        "relayError",
        "close",
        "timer",
    }
    closes = {a["code"] for a in actions if a["kind"] == "close"}
    assert closes >= {"timeout", "heartbeat_timeout", "unauthorized", "closed", "malformed"}
    replaced = [a for a in actions if a["kind"] == "replaced"]
    assert {a["acknowledged"] for a in replaced} == {True, False}
    welcomes = [a for a in actions if a["kind"] == "welcomed"]
    assert any(w["reset"] for w in welcomes)


if __name__ == "__main__":
    FIXTURES.write_text(_render(), "utf-8")
    sys.stdout.write(f"wrote {FIXTURES}\n")
