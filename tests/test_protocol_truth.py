"""The code and ``docs/protocol.md`` agree: every error and close code sent is documented,
and the HTTP side answers unknown addresses and methods in its JSON error format."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import httpx
import pytest
import trio
import trio_websocket

from relay.refusals import REFUSALS
from tests.wire import open_door

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")

#: Calls whose first argument is an error code that reaches clients.
_CODE_CALLS = frozenset(
    {"Error", "Refused", "Refusal", "ProtocolError", "InvalidState", "LimitExceeded", "SyncError"}
)
#: Calls whose second argument is an error code (the first is the HTTP status).
_STATUS_THEN_CODE_CALLS = frozenset({"BodyRejected"})
#: Codes that never reach a client: the client's own check of the relay's updates.
_NEVER_SENT = frozenset({"invalid_update"})


def _sources() -> list[Path]:
    return sorted([*(ROOT / "sync").glob("*.py"), *(ROOT / "relay").rglob("*.py")])


def _codes_in_source() -> dict[str, str]:
    """Every string literal given as an error code in ``sync/`` and ``relay/``, by file."""
    found: dict[str, str] = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name in _STATUS_THEN_CODE_CALLS:
                args = list(node.args[1:2])
            elif name in _CODE_CALLS:
                args = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "code")]
            else:
                continue
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.setdefault(arg.value, path.name)
    return found


def _close_constants() -> dict[str, int]:
    """Every module-level ``CLOSE_* = <int>`` in ``sync/`` and ``relay/``."""
    found: dict[str, int] = {}
    for path in _sources():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target = getattr(node, "target", None) or next(iter(getattr(node, "targets", [])), None)
            value = getattr(node, "value", None)
            if (
                isinstance(target, ast.Name)
                and target.id.startswith("CLOSE_")
                and isinstance(value, ast.Constant)
                and isinstance(value.value, int)
            ):
                found[target.id] = value.value
    return found


def _documented_close_codes() -> set[int]:
    section = DOCS[DOCS.index("## WebSocket close codes") :]
    return {int(code) for code in re.findall(r"^\| (\d{4}) \|", section, re.MULTILINE)}


def test_the_scan_finds_what_it_looks_for() -> None:
    # Guards the guard: if a refactor hid the codes from the scan, the tests below would
    # pass vacuously.
    codes = _codes_in_source()
    for code in ("malformed", "read_only", "not_your_register", "unexpected", "unknown_round"):
        assert code in codes
    assert codes["push_full"] == "routes.py"  # in a subpackage, given with a status
    assert _close_constants()["CLOSE_TOO_SLOW"] == 4408


def test_every_error_code_the_code_can_send_is_documented() -> None:
    codes = set(_codes_in_source()) | {r.code for r in REFUSALS.values()} | {"clock_skew"}
    undocumented = sorted(c for c in codes - _NEVER_SENT if f"`{c}`" not in DOCS)
    assert not undocumented, f"codes sent but not in docs/protocol.md: {undocumented}"


def test_every_close_code_the_code_can_send_is_documented() -> None:
    codes = set(_close_constants().values()) | {r.close_code for r in REFUSALS.values()}
    assert codes - _documented_close_codes() == set()


def test_the_error_table_gives_each_code_one_row() -> None:
    section = DOCS[DOCS.index("## Error codes") : DOCS.index("## WebSocket close codes")]
    rows = re.findall(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)*) \|", section, re.MULTILINE)
    codes = [code.strip("`") for row in rows for code in row.split(", ")]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/no/such/page", 404, "not_found"),
        ("POST", "/api/nothing", 404, "not_found"),
        ("GET", "/api/shoots", 405, "method_not_allowed"),
        ("DELETE", "/api/rounds", 405, "method_not_allowed"),
        ("PUT", "/health", 405, "method_not_allowed"),
    ],
)
async def test_unknown_addresses_and_methods_answer_json_errors(
    relay_url: str, method: str, path: str, status: int, code: str
) -> None:
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            response = await http.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"].endswith(".")
    if status == 405:
        assert response.headers["allow"]


async def test_a_websocket_handshake_elsewhere_than_the_endpoint_gets_a_json_404(
    relay_url: str,
) -> None:
    with trio.fail_after(10):
        url = relay_url.replace("http://", "ws://") + "/not-the-endpoint"
        with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
            async with trio_websocket.open_websocket_url(url):
                pass  # pragma: no cover - the handshake is refused
    assert rejected.value.status_code == 404
    assert b'"code": "not_found"' in rejected.value.body


async def test_a_websocket_handshake_while_the_relay_shuts_down_gets_a_json_503(
    redis_url: str,
) -> None:
    # The relay refuses new sessions from the moment shutdown starts until the door stops
    # listening; here the relay's own parts are held in that state.
    with trio.fail_after(10):
        async with open_door(redis_url, closing=True) as opened:
            url = opened.url.replace("http://", "ws://") + "/ws"
            with pytest.raises(trio_websocket.ConnectionRejected) as rejected:
                async with trio_websocket.open_websocket_url(url):
                    pass  # pragma: no cover - the handshake is refused
    assert rejected.value.status_code == 503
    assert b'"code": "unavailable"' in rejected.value.body
