"""Hostile bytes: the decoders return a message or raise ``ProtocolError``, nothing else.

Four sources of input, from blind to targeted: random bytes; random CBOR structures (tags,
floats, huge integers, odd keys included); valid frames damaged byte by byte (bit flips,
truncation, insertion, deletion); and valid frames with one field anywhere replaced by a
random value, which drives every field checker with every kind of wrong value. Whatever a
decoder accepts must also survive a round trip through ``encode``.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.clock import Stamp
from sync.codec import decode_client, decode_server, encode
from sync.errors import ProtocolError
from sync.models import ArcherState, Profile, Shoot
from sync.protocol import (
    MAX_REQUEST_ID,
    Ack,
    Error,
    Hello,
    Message,
    Notice,
    Ping,
    Pong,
    Superseded,
    Update,
    Welcome,
    Write,
)
from sync.register import Register

CODES = {
    "frame_too_large",
    "malformed",
    "unsupported_version",
    "unknown_type",
    "invalid_field",
    "invalid_state_vector",
}
TYPE_NAMES = [
    "hello",
    "write",
    "ping",
    "welcome",
    "update",
    "ack",
    "superseded",
    "error",
    "notice",
    "pong",
]
DECODERS = [decode_client, decode_server]

#: Examples per property, scaled to what each costs: the whole file runs in ~15 s.
FUZZ = settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- any CBOR ----------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.integers(-(2**70), 2**70)  # bignums (tags 2 and 3)
    | st.floats()  # NaN and infinities included
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.sampled_from([cbor2.undefined, cbor2.CBORSimpleValue(99), 0, 1, "X", "M", "1234"])
)
tag_numbers = st.sampled_from([0, 1, 2, 3, 4, 25, 28, 29, 64, 256, 258, 55799]) | st.integers(
    0, 2**64 - 1
)
cbor_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["v", "type", "id", "x"]) | st.text(max_size=8), children, max_size=5
        )
        | st.dictionaries(st.integers(0, 3) | st.binary(max_size=3), children, max_size=2)
        | st.builds(cbor2.CBORTag, tag_numbers, children)
    ),
    max_leaves=20,
)

# -- valid messages ----------------------------------------------------------------------

ids = st.text(string.ascii_letters + string.digits + string.punctuation, min_size=1, max_size=64)
codes = st.integers(1000, 9999).map(str)
naturals = st.integers(0, MAX_REQUEST_ID)
arrows = st.lists(st.integers(0, 20) | st.sampled_from(["X", "M"]), max_size=300).map(tuple)
text = st.text(max_size=32)
stamps = st.builds(Stamp, naturals, st.integers(0, 2**31 - 1), ids)
registers = st.builds(
    Register,
    archer_id=ids,
    stamp=stamps,
    state=st.builds(
        ArcherState,
        name=st.text(max_size=160),
        round=st.text(max_size=64),
        profile=st.builds(Profile, text, text, text),
        arrows=arrows,
        finished=st.booleans(),
        left=st.booleans(),
    ),
)
shoots = st.builds(
    Shoot, codes, ids, st.text(max_size=400), st.text(max_size=400), naturals, naturals, text
)
optional_naturals = st.none() | naturals


def _varuint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


#: Yjs state vectors: a count, then (client id, clock) pairs, all lib0 var-uints.
state_vectors = st.dictionaries(st.integers(0, 2**53), st.integers(0, 2**32), max_size=4).map(
    lambda clocks: (
        _varuint(len(clocks)) + b"".join(_varuint(c) + _varuint(k) for c, k in clocks.items())
    )
)

client_messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Hello, codes, st.just("viewer"), state_vectors),
    st.builds(Hello, codes, st.just("archer"), state_vectors, ids, ids),
    st.builds(Write, naturals, registers),
    st.builds(Ping, naturals),
)
server_messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Welcome, shoots, st.booleans(), st.binary(max_size=200), naturals, st.just("viewer")),
    st.builds(
        Welcome, shoots, st.booleans(), st.binary(max_size=200), naturals, st.just("archer"), ids
    ),
    st.builds(Update, st.binary(max_size=200)),
    st.builds(Ack, naturals, ids, stamps),
    st.builds(Superseded, naturals, registers),
    st.builds(
        Error,
        st.text(max_size=64),
        st.text(max_size=1000),
        optional_naturals,
        st.booleans(),
        optional_naturals,
    ),
    st.builds(
        Notice,
        st.sampled_from(["lead", "digest"]),
        st.text(max_size=64),
        ids,
        st.text(max_size=1000),
        optional_naturals,
        optional_naturals,
        st.none() | st.integers(-MAX_REQUEST_ID, MAX_REQUEST_ID),
        naturals,
    ),
    st.builds(Pong, naturals, naturals),
)
any_messages = client_messages | server_messages


def decodes_or_refuses(decode: Callable[[bytes], Message], data: bytes) -> None:
    """The property: a message that survives re-encoding, or a ``ProtocolError``."""
    try:
        message = decode(data)
    except ProtocolError as exc:
        refusal = exc
    else:
        assert decode(encode(message)) == message
        return
    assert refusal.code in CODES, refusal
    assert refusal.message


# -- properties --------------------------------------------------------------------------


@settings(FUZZ, max_examples=1000)
@given(client_messages)
def test_valid_client_messages_round_trip(message: Message) -> None:
    assert decode_client(encode(message)) == message


@settings(FUZZ, max_examples=1000)
@given(server_messages)
def test_valid_server_messages_round_trip(message: Message) -> None:
    assert decode_server(encode(message)) == message


@settings(FUZZ, max_examples=4000)
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    for decode in DECODERS:
        decodes_or_refuses(decode, data)


@settings(FUZZ, max_examples=1000)
@given(
    cbor_values
    | st.fixed_dictionaries(
        {"v": st.just(1) | cbor_values, "type": st.sampled_from(TYPE_NAMES) | cbor_values},
        optional={name: cbor_values for name in ("id", "nonce", "shoot", "register", "update")},
    )
)
def test_random_cbor_structures(value: Any) -> None:
    data = cbor2.dumps(value)
    for decode in DECODERS:
        decodes_or_refuses(decode, data)


mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 8)),
)


def mutate(data: bytes, mutation: tuple[Any, ...]) -> bytes:
    kind, position, *rest = mutation
    position %= len(data) + 1
    if kind == "flip" and position < len(data):
        return data[:position] + bytes([data[position] ^ (1 << rest[0])]) + data[position + 1 :]
    if kind == "truncate":
        return data[:position]
    if kind == "insert":
        inserted: bytes = rest[0]
        return data[:position] + inserted + data[position:]
    if kind == "delete":
        return data[:position] + data[position + rest[0] :]
    return data


@FUZZ
@given(any_messages, st.lists(mutations, min_size=1, max_size=4))
def test_damaged_valid_frames(message: Message, damage: list[tuple[Any, ...]]) -> None:
    data = encode(message)
    for mutation in damage:
        data = mutate(data, mutation)
    for decode in DECODERS:
        decodes_or_refuses(decode, data)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a map entry or list item inside a decoded frame."""
    found: list[tuple[Any, ...]] = []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


@settings(FUZZ, max_examples=1000)
@given(any_messages, st.data())
def test_one_field_replaced_anywhere(message: Message, data: st.DataObject) -> None:
    frame = cbor2.loads(encode(message))
    path = data.draw(st.sampled_from(paths(frame)))
    target = frame
    for key in path[:-1]:
        target = target[key]
    if isinstance(target, dict) and data.draw(st.booleans()):
        del target[path[-1]]
    else:
        target[path[-1]] = data.draw(cbor_values)
    encoded = cbor2.dumps(frame)
    for decode in DECODERS:
        decodes_or_refuses(decode, encoded)
