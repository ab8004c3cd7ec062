"""The committed deployment files say what the relay needs, and hold no secret.

Docker cannot run here, so the image itself is not built by the tests; what it runs is:
``deploy/install.sh`` is checked end to end by ``.ci/deploy_check.py`` (install into a
fresh virtualenv, start against a real redis-server). These tests read the files.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from relay.config import Settings
from relay.server import shutdown_budget_s

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_FILES = ("Dockerfile", ".dockerignore", "docker-compose.yml", "fly.toml")

#: What a credential looks like in a committed file.
SECRETS = {
    "a URL with a password": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.I),
    "a password or key set to a value": re.compile(
        r"\b(password|passwd|requirepass|masterauth|secret|api[_-]?key|access[_-]?key|token)"
        r"\s*[:=]\s*['\"]?[^\s'\"$]{4,}",
        re.I,
    ),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "an AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
}


def _deploy_files() -> list[Path]:
    return [ROOT / name for name in DEPLOY_FILES] + sorted((ROOT / "deploy").iterdir())


@pytest.mark.parametrize("path", _deploy_files(), ids=lambda p: p.name)
def test_no_credentials_in_committed_deployment_files(path: Path) -> None:
    text = path.read_text()
    for what, pattern in SECRETS.items():
        match = pattern.search(text)
        assert match is None, f"{path.name} holds {what}: {match.group(0)!r}"


def test_the_credential_check_catches_credentials() -> None:
    """Which bug makes the check above pass wrongly: a pattern that matches nothing."""
    leaks = [
        # Made-up credentials, joined at run time so the repository itself holds none.
        "REDIS_URL: redis://" + "default:hunter22" + "@redis:6379/0",
        'command: ["redis-server", "--requirepass", "x"]\nrequirepass = hunter22',
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "aws = AKIAIOSFODNN7EXAMPLE",
    ]
    for leak in leaks:
        assert any(p.search(leak) for p in SECRETS.values()), leak


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)s", text)
    assert match is not None, text
    return float(match.group(1))


def test_fly_stops_gracefully_within_its_kill_timeout_and_checks_health() -> None:
    fly = tomllib.loads((ROOT / "fly.toml").read_text())
    assert fly["kill_signal"] == "SIGTERM"
    assert _seconds(fly["kill_timeout"]) > shutdown_budget_s(Settings())
    assert fly["build"]["dockerfile"] == "Dockerfile"
    service = fly["http_service"]
    assert service["internal_port"] == 8080
    assert service["min_machines_running"] >= 2  # several machines, one Redis
    assert [check["path"] for check in service["checks"]] == ["/health"]
    assert "REDIS_URL" not in fly["env"]  # a secret: `fly secrets set`
    assert Settings.from_env(fly["env"] | {"REDIS_URL": "redis://r:6379/0"}).workers >= 1


def test_compose_runs_two_relays_behind_one_proxy_on_one_redis() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    services_block = compose.split("\nservices:\n", 1)[1].split("\nvolumes:\n", 1)[0]
    services = re.findall(r"^  ([a-z0-9]+):", services_block, re.M)
    assert services == ["redis", "relay1", "relay2", "proxy"]
    assert compose.count("REDIS_URL: redis://redis:6379/0") == 1  # shared by both relays
    assert re.search(r"^  relay1: \*relay$", compose, re.M)
    assert re.search(r"^  relay2: \*relay$", compose, re.M)
    grace = re.search(r"stop_grace_period: (\d+s)", compose)
    assert grace is not None
    assert _seconds(grace.group(1)) > shutdown_budget_s(Settings())
    haproxy = (ROOT / "deploy" / "haproxy.cfg").read_text()
    assert re.findall(r"^\s+server (relay\d) \1:8080$", haproxy, re.M) == ["relay1", "relay2"]
    assert "option httpchk GET /health" in haproxy
    assert "X-Real-IP" in haproxy
    assert "PROXY_CLIENT_HEADER: X-Real-IP" in compose


def test_the_image_builds_with_the_install_script_and_needs_redis_url() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)$", dockerfile, re.M)
    assert stages == ["build", "runtime"]
    assert "RUN deploy/install.sh build /wheels" in dockerfile
    assert "RUN fast-shoot-install runtime /wheels /venv" in dockerfile
    assert "FAST_SHOOT_EMBEDDED_REDIS=0" in dockerfile
    assert "redis-server" not in dockerfile.split("AS runtime", 1)[1].split("STOPSIGNAL")[0]
    assert "STOPSIGNAL SIGTERM" in dockerfile
    script = ROOT / "deploy" / "install.sh"
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr  # the script parses
    usage = subprocess.run(["sh", str(script)], capture_output=True, text=True)
    assert usage.returncode == 2
    assert "usage" in usage.stderr
