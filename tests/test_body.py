"""Request bodies: bounded before they are parsed, and every bad one is a 400 JSON error."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx
import pytest
import trio

from relay.body import MAX_BODY_BYTES, BodyRejected, parse_json_object
from relay.redis_client import open_redis
from tests.wire import create_shoot

FIFTY_MB = 50 * 1024 * 1024


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        (b'{"creator": "\xff"}', "not valid UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[" * 15_000, "nested too deeply"),
        (b'{"creator": ' + b"1" * 5_000 + b"}", "not valid JSON"),  # int conversion limit
        (b'{"creator": "\\ud800"}', "not valid Unicode"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"Sam"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
    ],
)
def test_every_decode_failure_is_malformed(body: bytes, sentence: str) -> None:
    with pytest.raises(BodyRejected) as caught:
        parse_json_object(body)
    assert (caught.value.status, caught.value.code) == (400, "malformed")
    assert sentence in caught.value.message


def test_an_empty_body_is_an_empty_object_and_objects_pass() -> None:
    assert parse_json_object(b"") == {}
    assert parse_json_object(b' {"creator": "Sam"} ') == {"creator": "Sam"}


def _shoot_count(redis_url: str) -> int:
    client = open_redis(redis_url)
    try:
        return len(list(client.scan_iter("shoot:*:meta")))
    finally:
        client.close()


@pytest.mark.parametrize(
    "body",
    [
        b'{"creator": "\xff"}',
        b"[" * 15_000,
        b'{"creator": "\\ud800"}',
        b'["creator", "Sam"]',
        b"{not json",
    ],
)
async def test_bad_bodies_get_json_errors_and_change_nothing(
    relay_url: str, redis_url: str, body: bytes
) -> None:
    # Bodies over the cap are tested with raw sockets below: the relay closes the
    # connection after an early 413, which a client still sending may see as a reset.
    assert len(body) <= MAX_BODY_BYTES
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=relay_url) as http:
            response = await http.post("/api/shoots", content=body)
            assert response.status_code == 400
            assert response.headers["content-type"] == "application/json"
            error = response.json()["error"]
            assert error["code"] == "malformed"
            assert error["message"]
            code = (await create_shoot(http))["code"]
            joined = await http.post(f"/api/shoots/{code}/join", content=body)
            assert joined.status_code == 400
            assert joined.json()["error"]["code"] == "malformed"
            assert (await http.get(f"/api/shoots/{code}")).json()["archers"] == {}
            assert (await http.get("/health")).status_code == 200
        assert _shoot_count(redis_url) == 1


async def _read_response(stream: trio.SocketStream) -> tuple[int, dict[str, object]]:
    """Read one HTTP/1.1 response with a Content-Length (enough for the relay's errors)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        chunk = await stream.receive_some(65536)
        assert chunk
        body += chunk
    return int(lines[0].split()[1]), json.loads(body)


async def _connect(relay_url: str) -> trio.SocketStream:
    parts = urlsplit(relay_url)
    assert parts.hostname is not None
    assert parts.port is not None
    return await trio.open_tcp_stream(parts.hostname, parts.port)


async def test_an_announced_50_mb_body_is_refused_before_any_of_it_is_sent(
    relay_url: str,
) -> None:
    with trio.fail_after(10):
        stream = await _connect(relay_url)
        async with stream:
            await stream.send_all(
                b"POST /api/shoots HTTP/1.1\r\nHost: relay.test\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {FIFTY_MB}\r\n\r\n".encode()
            )
            # Not one byte of the body is sent: the answer cannot wait for it.
            status, body = await _read_response(stream)
        assert status == 413
        assert body["error"]["code"] == "too_large"  # type: ignore[index]


async def test_a_streamed_50_mb_body_is_cut_off_at_the_cap(relay_url: str) -> None:
    """Chunked, so no length up front: the relay counts while it reads and stops early."""
    sent = 0
    with trio.fail_after(20):
        stream = await _connect(relay_url)
        async with stream:
            await stream.send_all(
                b"POST /api/shoots HTTP/1.1\r\nHost: relay.test\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
            answer: list[tuple[int, dict[str, object]]] = []

            async def upload() -> None:
                nonlocal sent
                try:
                    while sent < FIFTY_MB:
                        await stream.send_all(chunk)
                        sent += 65536
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return  # the relay closed the connection: what we want

            async with trio.open_nursery() as nursery:
                nursery.start_soon(upload)
                answer.append(await _read_response(stream))
        status, body = answer[0]
        assert status == 413
        assert body["error"]["code"] == "too_large"  # type: ignore[index]
    # The relay stopped reading long before the end: what got out of this process at all
    # is bounded by the kernel's socket buffers and hypercorn's small receive queue.
    assert sent < FIFTY_MB // 2
