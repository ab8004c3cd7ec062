"""`fast-shoot serve` as a user runs it: embedded Redis, SIGTERM, and data kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from relay.redis_server import free_port
from tests.wire import wait_healthy


def _serve(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "FAST_SHOOT_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("REDIS_URL", None)
    with open(tmp_path / "relay.log", "ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "clients.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


async def test_serve_with_embedded_redis_shuts_down_on_sigterm_and_keeps_data(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    relay = _serve(tmp_path, port)
    try:
        with trio.fail_after(30):
            await wait_healthy(url)
            async with httpx.AsyncClient(base_url=url) as http:
                code = (await http.post("/api/shoots", json={"creator": "Sam"})).json()["code"]
                joined = await http.post(
                    f"/api/shoots/{code}/join", json={"name": "Chris", "round": "national"}
                )
                archer = joined.json()["archer_id"]
            relay.send_signal(signal.SIGTERM)
            assert await trio.to_thread.run_sync(relay.wait) == 0
        log = (tmp_path / "relay.log").read_text()
        assert "embedded redis-server" in log

        relay = _serve(tmp_path, port)
        with trio.fail_after(30):
            await wait_healthy(url)
            async with httpx.AsyncClient(base_url=url) as http:
                body = (await http.get(f"/api/shoots/{code}")).json()
        assert body["archers"][archer]["name"] == "Chris"
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=30)
