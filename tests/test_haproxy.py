"""docker-compose.yml's proxy, run for real: the committed ``deploy/haproxy.cfg`` in front
of two relays on one Redis (Docker cannot run here; haproxy and the relays can).

The config is the committed one with only the addresses changed: the relays' service names
become their loopback ports, the port it listens on a free one, and Docker's DNS resolver
goes. Skipped where haproxy is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import trio

from relay.config import Settings
from relay.redis_server import free_port
from relay.server import serve_relay
from sync.protocol import Welcome
from tests.wire import create_shoot, peer

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
)

pytestmark = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")


def _local_config(port: int, relays: dict[str, int]) -> str:
    """The committed config, aimed at loopback ports instead of compose's services."""
    text = CONFIG.read_text()
    text = re.sub(r"\nresolvers docker\n(?:[ \t]+.*\n)+", "\n", text)
    text = text.replace(" resolvers docker init-addr last,libc,none", "")
    text = text.replace("bind :8080", f"bind 127.0.0.1:{port}")
    for name, relay_port in relays.items():
        text = text.replace(f"server {name} {name}:8080", f"server {name} 127.0.0.1:{relay_port}")
    return text


def test_the_committed_config_is_valid() -> None:
    assert HAPROXY is not None
    checked = subprocess.run([HAPROXY, "-c", "-f", str(CONFIG)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "Configuration file is valid" in checked.stdout + checked.stderr


async def test_one_port_reaches_both_relays_on_one_redis(
    redis_url: str, nursery: trio.Nursery, tmp_path: Path
) -> None:
    assert HAPROXY is not None
    settings = Settings(
        host="127.0.0.1", port=0, redis_url=redis_url, proxy_client_header="X-Real-IP"
    )
    urls = [await nursery.start(serve_relay, settings) for _ in range(2)]
    relays = {f"relay{i + 1}": int(url.rsplit(":", 1)[1]) for i, url in enumerate(urls)}
    port = free_port()
    haproxy_config = tmp_path / "haproxy.cfg"
    haproxy_config.write_text(_local_config(port, relays))
    proxy = subprocess.Popen(
        [HAPROXY, "-f", str(haproxy_config), "-db"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        instances: set[str] = set()
        with trio.fail_after(30):
            while len(instances) < 2:  # leastconn over both, once their checks pass
                try:
                    async with httpx.AsyncClient(base_url=url) as http:  # a new connection
                        health = await http.get("/health")
                except httpx.TransportError:
                    health = None  # the proxy is starting
                if health is not None and health.status_code == 200:
                    instances.add(health.json()["instance"])
                await trio.sleep(0.02)  # pace the polls under the deadline
            async with httpx.AsyncClient(base_url=url) as http:
                code = (await create_shoot(http, title="Behind the proxy"))["code"]
                for _ in range(4):  # a read is answered by whichever relay gets it
                    body = (await http.get(f"/api/shoots/{code}")).json()
                    assert body["shoot"]["title"] == "Behind the proxy"
            # The WebSocket upgrade goes through too (the first session loads the shoot, so
            # the relay it lands on owns it).
            async with peer(url, code) as viewer:
                welcome = await viewer.expect(Welcome)
            assert welcome.update
    finally:
        proxy.terminate()
        _, errors = proxy.communicate(timeout=10)
    assert b"ALERT" not in errors, errors.decode(errors="replace")
