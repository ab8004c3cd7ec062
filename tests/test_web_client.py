"""The web client's own checks, run by the suite: TypeScript's type check, and the protocol
module's unit tests under Node's test runner (the session tests against a real relay)."""

from __future__ import annotations

from pathlib import Path

import trio

from .web_tools import run_node


async def test_typescript_check_passes(web_dist: Path) -> None:
    with trio.fail_after(120):
        await run_node("node_modules/typescript/bin/tsc", "--noEmit", "-p", ".")


async def test_protocol_module_unit_tests(web_tests_built: Path, relay_url: str) -> None:
    """codec, clock, replica (reset rule), outbox (IndexedDB, reload), and the session
    against this real relay: writes and acks, heartbeat drop and reconnect, superseded."""
    with trio.fail_after(120):
        output = await run_node(
            "--test",
            ".test-build/*.test.mjs",
            env={"FAST_SHOOT_RELAY_URL": relay_url},
        )
    assert "# skipped 0" in output or "ℹ skipped 0" in output, output
    assert "fail 0" in output, output
