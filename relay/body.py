"""Reading a request's JSON body without trusting it.

Every byte from outside is bounded before it is parsed. A body announced larger than the
cap (``Content-Length``) is refused before any of it is read; a body that is not announced
(chunked) or lies about its length is counted while it streams in, and refused as soon as
it passes the cap, so a 50 MB upload costs the handler at most the cap plus one chunk,
and the process at most that plus hypercorn's receive queue (10 chunks of at most 64 KiB:
hypercorn stops reading the socket while the queue is full, and closes the connection
after the refusal).

Every way a body can fail to be a JSON object is one clear ``400``: bytes that are not
UTF-8, text that is not JSON, JSON nested so deep that the parser runs out of stack
(``RecursionError``), numbers too long to convert, strings holding lone surrogates (which
could not be stored), and JSON that is not an object.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any, Final

from starlette.requests import Request

__all__ = ["MAX_BODY_BYTES", "BodyRejected", "read_json_object"]

#: The largest request body the relay reads: its JSON bodies are a few hundred bytes.
MAX_BODY_BYTES: Final = 16 * 1024


class BodyRejected(Exception):
    """A request body the relay will not use, with the HTTP status that says why."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _too_large(limit: int) -> BodyRejected:
    return BodyRejected(413, "too_large", f"The request body is larger than {limit} bytes.")


def _malformed(message: str) -> BodyRejected:
    return BodyRejected(400, "malformed", message)


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body's bytes, never reading more than ``limit`` (+ one chunk) of them.

    Raises:
        BodyRejected: 413 when the body is (or is announced to be) larger than ``limit``;
            400 when ``Content-Length`` is not a number.
    """
    announced = request.headers.get("content-length")
    if announced is not None:
        try:
            length = int(announced)
        except ValueError:
            raise _malformed("The Content-Length header is not a number.") from None
        if length > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async with aclosing(request.stream()) as stream:  # closed now, not by the GC
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    return b"".join(chunks)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object; an empty body is an empty object.

    Raises:
        BodyRejected: 400 ``malformed`` for every way the bytes fail to be one.
    """
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("The request body is not valid UTF-8.") from None
    try:
        data = json.loads(text)
        # Lone surrogates ("\ud800") parse but cannot be encoded, so Redis would refuse them.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise _malformed("The request body is nested too deeply.") from None
    except UnicodeEncodeError:
        raise _malformed("The request body holds text that is not valid Unicode.") from None
    except ValueError:
        raise _malformed("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise _malformed("The request body must be a JSON object.")
    return data


async def read_json_object(request: Request, limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """Read and decode a request's JSON object body within ``limit`` bytes."""
    return parse_json_object(await read_body(request, limit))
