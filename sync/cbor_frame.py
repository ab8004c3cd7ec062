"""The cbor2 boundary: a peer's bytes to one plain CBOR map, or a ``ProtocolError``.

This is the only module that lets cbor2 parse bytes from a peer, and it refuses, while
parsing, everything ``docs/protocol.md`` rules out for a whole frame, wherever in the
frame it sits:

- more bytes than the direction's limit (checked first, before any parsing);
- anything that is not exactly one data item, or that is followed by more bytes;
- **any CBOR tag**, including those cbor2 would decode on its own (dates, bignums,
  decimals, sets, shared and string references), so only maps, arrays, text, bytes,
  integers, floats, booleans and null come through;
- map keys that are not text strings (cbor2 itself would accept byte strings), and a key
  twice in one map (two decoders could pick different ones);
- more than :data:`MAX_DEPTH` containers deep (hostile nesting stays far from Python's
  recursion limit).

Whatever cbor2 raises is caught here, and only here, and chained. The frame's fields are
:mod:`sync.codec`'s business.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, NoReturn, TypeAlias

import cbor2

from .errors import ProtocolError

__all__ = ["MAX_DEPTH", "Frame", "load_frame"]

Frame: TypeAlias = bytes | bytearray | memoryview

#: Containers deep a frame may nest; a ``superseded`` frame needs 4 (frame, winner, state,
#: profile). The slack lets later optional fields nest a little; the cap keeps hostile
#: nesting far from Python's recursion limit.
MAX_DEPTH: Final = 16


class _TagRefused(ValueError):
    """Raised inside cbor2 for any tag, and recognised again as the cause of its error."""


class _KeyRefused(ValueError):
    """Raised inside cbor2 for a map key that is not text, and recognised the same way."""


def _refuse_tag(*_args: object) -> NoReturn:
    raise _TagRefused("CBOR tags are not part of this protocol")


def _text_keys_only(mapping: Mapping[Any, Any], _immutable: bool) -> Mapping[Any, Any]:
    """cbor2's ``object_hook``, called for every decoded map, however deep."""
    for key in mapping:
        if type(key) is not str:
            raise _KeyRefused("map keys must be text strings")
    return mapping


class _EveryTagRefused(Mapping[int, Callable[[Any, bool], Any]]):
    """cbor2's ``semantic_decoders`` override for every tag number.

    ``tag_hook`` alone is not enough: cbor2 calls it only for tags it has no decoder
    for, and would still turn tag 1 into a ``datetime`` or tag 28/29 into a list that
    contains itself.
    """

    def __getitem__(self, tag: int) -> Callable[[Any, bool], Any]:
        return _refuse_tag

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Iterator[int]:
        return iter(())


_EVERY_TAG_REFUSED: Final = _EveryTagRefused()


def load_frame(data: Frame, limit: int) -> dict[str, Any]:
    """Size check, then one CBOR map with text keys and nothing after it.

    Raises:
        ProtocolError: ``frame_too_large`` (over ``limit`` bytes, before parsing) or
            ``malformed``, with a sentence saying which rule the frame broke.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError("malformed", "A frame must be a binary WebSocket message.")
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > limit:
        raise ProtocolError(
            "frame_too_large", f"The frame is {size} bytes; the limit is {limit} bytes."
        )
    stream = io.BytesIO(data)
    try:
        decoder = cbor2.CBORDecoder(
            stream,
            tag_hook=_refuse_tag,
            object_hook=_text_keys_only,
            semantic_decoders=_EVERY_TAG_REFUSED,
            max_depth=MAX_DEPTH,
            allow_duplicate_keys=False,
            strict_hashable_types=True,
        )
        frame = decoder.decode()
        # The decoder reads exactly what the item holds (asking it for one more byte
        # costs an exception per frame); tests/test_codec.py holds it to that.
        trailing = stream.tell() < size
    except Exception as exc:  # the cbor2 boundary: anything it raises means "not CBOR"
        if isinstance(exc.__cause__, _TagRefused):
            raise ProtocolError(
                "malformed", "The frame holds a CBOR tag; none are allowed."
            ) from exc
        if isinstance(exc.__cause__, _KeyRefused):
            raise ProtocolError(
                "malformed", "The frame has a map key that is not a text string."
            ) from exc
        raise ProtocolError("malformed", "The frame is not well-formed CBOR.") from exc
    if trailing:
        raise ProtocolError("malformed", "The frame has bytes after its CBOR map.")
    if type(frame) is not dict:
        raise ProtocolError("malformed", "A frame must be a CBOR map.")
    return frame
