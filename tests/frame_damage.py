"""Valid frames damaged the ways a buggy or hostile client would damage them (hypothesis).

Bytes-level damage (bit flips, truncation, inserted and deleted bytes, trailing bytes,
random bytes, text messages) mostly stops at the first step of decoding, so structural
damage comes more often: a field replaced by a wrong type, a huge integer, deep nesting,
a tag, a byte-string key, or a value of the right shape that reaches the relay's own
rules; a field removed or added; a key twice; sizes around both frame limits.
"""

from __future__ import annotations

from typing import Any

import cbor2
from hypothesis import strategies as st

from sync.protocol import MAX_CLIENT_FRAME_BYTES

__all__ = ["damaged", "hostile_values", "plausible_values"]


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


#: Values of the right shape for some field: they get past the decoder more often and
#: reach the relay's own rules (unknown shoots, wrong tokens, arrows the round lacks,
#: clocks far ahead, state vectors Yjs cannot read).
plausible_values = st.one_of(
    st.sampled_from(
        [
            "1000",
            "9999",
            "viewer",
            "archer",
            "X",
            "M",
            0,
            10,
            11,
            20,
            21,
            2**31,
            2**53 - 1,
            b"\x00",
            b"\x01\x05\x03",
            b"\x01\x80",
            b"\x02\x01\x01",
            "portsmouth",
            "no-such-round",
            "compound",
            "",
        ]
    ),
    st.integers(0, 2**53 - 1),
    st.text("abcdefXYZ0123456789-_", min_size=1, max_size=64),
    st.lists(st.sampled_from([0, 1, 5, 9, 10, 11, "X", "M"]), max_size=80),
)

hostile_values = st.one_of(
    plausible_values,
    st.sampled_from(
        [
            2**53,
            -(2**53),
            2**63,
            2**64 - 1,
            -(2**64),
            2**80,  # a bignum: tag 2
            1.0,
            1.5,
            float("nan"),
            float("inf"),
            True,
            False,
            None,
            b"",
            b"\x01\x80",  # a truncated state vector
            b"\xff" * 40,
            "",
            "x" * 65,
            "\x00",
            " padded ",
            [],
            {},
            {b"key": 1},
            [9] * 301,
            cbor2.undefined,
            cbor2.CBORSimpleValue(99),
        ]
    ),
    st.integers(),
    st.text(max_size=70),
    st.binary(max_size=70),
    st.integers(8, 40).map(_nested),
    st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 2, 28, 29, 55799, 9999]), st.integers(0, 5)),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a decoded frame where a value sits."""
    found = []
    children = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in children:
        found.append((*prefix, key))
        if isinstance(child, dict | list):
            found += _paths(child, (*prefix, key))
    return found


def _at(frame: Any, path: tuple[Any, ...]) -> tuple[Any, Any]:
    target = frame
    for key in path[:-1]:
        target = target[key]
    return target, path[-1]


@st.composite
def damaged(draw: st.DrawFn, valid: list[bytes]) -> bytes | str:
    """A valid frame, damaged one way (or left alone, now and then)."""
    frame = draw(st.sampled_from(valid))
    kind = draw(
        st.sampled_from(
            [
                # Damage that keeps a frame CBOR comes more often: the bytes-level kinds
                # mostly stop at the first step of decoding.
                *["replace"] * 6,
                *["remove_field", "add_field", "valid"] * 2,
                "flip",
                "truncate",
                "insert",
                "delete_bytes",
                "remove_field",
                "add_field",
                "duplicate_key",
                "trailing",
                "size",
                "text",
                "random",
                "valid",
            ]
        )
    )
    if kind == "valid":
        return frame
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return draw(st.sampled_from([frame.hex(), "hello", ""]) | st.text(max_size=40))
    if kind == "flip":
        data = bytearray(frame)
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if kind == "truncate":
        return frame[: draw(st.integers(0, len(frame) - 1))]
    if kind == "insert":
        at = draw(st.integers(0, len(frame)))
        return frame[:at] + draw(st.binary(min_size=1, max_size=8)) + frame[at:]
    if kind == "delete_bytes":
        at = draw(st.integers(0, len(frame) - 1))
        return frame[:at] + frame[at + draw(st.integers(1, 8)) :]
    if kind == "trailing":
        return frame + draw(st.binary(min_size=1, max_size=8))
    decoded = cbor2.loads(frame)
    if kind == "duplicate_key":
        first = next(iter(decoded.items()))
        body = cbor2.dumps(decoded)[1:]  # the frames' maps have fewer than 23 keys
        return bytes([0xA0 + len(decoded) + 1]) + body + cbor2.dumps(dict([first]))[1:]
    if kind == "size":
        size = draw(
            st.sampled_from(
                [
                    MAX_CLIENT_FRAME_BYTES,
                    MAX_CLIENT_FRAME_BYTES + 1,
                    # Far over: the relay stops collecting it at the limit.
                    2 * MAX_CLIENT_FRAME_BYTES + 1,
                ]
            )
        )
        decoded["pad"] = b""
        # The pad's header grows from 1 to 5 bytes once it holds more than 65,535 bytes.
        overhead = len(cbor2.dumps(decoded)) + (4 if size > 65_535 + 64 else 2)
        decoded["pad"] = b"\x00" * (size - overhead)
        return cbor2.dumps(decoded)
    if kind == "add_field":
        decoded[draw(st.text(min_size=1, max_size=8))] = draw(hostile_values)
        return cbor2.dumps(decoded)
    path = draw(st.sampled_from(_paths(decoded)))
    parent, key = _at(decoded, path)
    if kind == "remove_field":
        del parent[key]
    else:
        parent[key] = draw(hostile_values)
    return cbor2.dumps(decoded)
