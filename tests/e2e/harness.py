"""The pieces the browser tests stand on: a relay process, the browser, phone contexts.

The relay runs as a child process exactly as ``fast-shoot serve`` runs it (embedded Redis
in a temporary data directory, the built web client served from ``relay/static/dist``),
so serving the client is tested too. It runs in its own process group, so "killing the
relay" kills its embedded Redis with it, as a crashed machine would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from relay.redis_server import free_port

#: How long a relay may take to start (archeryutils and numpy load first).
START_TIMEOUT_S = 60.0
_EMBEDDED = re.compile(r"started an embedded redis-server at (redis://\S+)")


@dataclass
class RelayProcess:
    """One ``fast-shoot serve`` child process on a fixed loopback port."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    """Settings for this relay beyond the defaults (e.g. ``PUBLIC_URL``)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "relay.log"

    def start(self) -> None:
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "FAST_SHOOT_DATA_DIR": str(self.data_dir / "data"),
            # Every test's shoots come from this one loopback address.
            "SHOOT_CREATES_BURST": "100000",
        }
        env.pop("REDIS_URL", None)
        env.pop("PUBLIC_URL", None)
        env.update(self.extra_env)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "clients.cli", "serve"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(base_url=self.url, timeout=2) as http:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"the relay exited at start:\n{self._log_tail()}")
                try:
                    if http.get("/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                time.sleep(0.1)  # polling a child process that is starting up
        raise RuntimeError(f"the relay did not become healthy:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM: the relay closes its sessions, flushes and stops its Redis."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def kill(self) -> None:
        """SIGKILL the relay and its embedded Redis at once: nothing gets to flush."""
        process, self.process = self.process, None
        if process is None:
            return
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    @property
    def redis_url(self) -> str:
        """The embedded Redis of the current run, as the relay logged it."""
        found = _EMBEDDED.findall(self.log_path.read_text(errors="replace"))
        if not found:
            raise RuntimeError("the relay did not log an embedded redis-server")
        return str(found[-1])


class Api:
    """The relay's HTTP API, for setting up what a test is not about."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)

    def close(self) -> None:
        self.http.close()

    def create_shoot(self, creator: str = "Sam", title: str = "") -> dict[str, Any]:
        response = self.http.post("/api/shoots", json={"creator": creator, "title": title})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def join(self, code: str, name: str, round: str = "national", **profile: str) -> dict[str, Any]:
        body = {"name": name, "round": round, **profile}
        response = self.http.post(f"/api/shoots/{code}/join", json=body)
        response.raise_for_status()
        joined: dict[str, Any] = response.json()
        return joined

    def read(self, code: str) -> dict[str, Any]:
        response = self.http.get(f"/api/shoots/{code}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def unused_code(self) -> str:
        """A shoot code nobody holds (each miss counts towards the relay's throttle)."""
        for candidate in range(1000, 1010):
            if self.http.get(f"/api/shoots/{candidate}").status_code == 404:
                return str(candidate)
        raise AssertionError("ten codes in a row are taken")


def end_the_day(relay: RelayProcess, code: str, in_s: float = 0.0) -> None:
    """Move a shoot's end of day to ``in_s`` seconds from now (the past by default).

    The relay reads it when it loads the shoot (at the first join or connection), so call
    this before anything touches the shoot.
    """
    client = redis.Redis.from_url(relay.redis_url)
    try:
        key = f"shoot:{{{code}}}:meta"
        meta = json.loads(client.get(key))  # type: ignore[arg-type]
        meta["expires_ms"] = int((time.time() + in_s) * 1000) - 1
        client.set(key, json.dumps(meta))
    finally:
        client.close()
