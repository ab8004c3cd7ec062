"""Frames to messages and back: the one place where a peer's bytes become values.

Theory of operation
-------------------
A frame is one CBOR map ``{"v": 1, "type": "<name>", ...fields}`` in one WebSocket
binary message (``docs/protocol.md`` has the fields of every message). :func:`encode` is
for messages this process built itself, so it trusts them and only converts
(:class:`~sync.register.Register`, :class:`~sync.clock.Stamp`, :class:`~sync.models.Shoot`
become plain maps and arrays).

Decoding is for untrusted bytes and happens in four steps, each refusing with a
:class:`~sync.errors.ProtocolError` whose code says which step failed:

1. ``frame_too_large``: the size is checked first, so a peer cannot make us parse (and
   allocate for) more than the limit of its direction.
2. ``malformed``: :func:`sync.cbor_frame.load_frame` parses exactly one CBOR map, with
   text keys only, no tags, no duplicate keys and bounded nesting, or says which rule the
   frame broke.
3. ``unsupported_version`` then ``unknown_type``: the envelope.
4. ``invalid_field``: the message's own fields, by small checkers that test exact types
   (``True`` is not ``1``, ``1.0`` is not ``1``), lengths and ranges, and name the field in
   their sentence (``register.state.arrows[3]``). Unknown fields are ignored, so a newer
   peer may add optional fields without a version bump. A ``hello``'s state vector must
   also read as one (``invalid_state_vector``).

The checks are structural. Whether an arrow value exists in the round, whether the round
exists, whether a name is acceptable are rules of archery that
:func:`sync.models.validate_state` applies after decoding, with their own error codes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, Final, TypeAlias, TypeGuard, TypeVar, cast

import cbor2

from .canonical import state_to_wire
from .cbor_frame import Frame, load_frame
from .clock import Stamp
from .document import decode_state_vector
from .errors import ProtocolError
from .models import MAX_NAME_LENGTH, MAX_TITLE_LENGTH, ArcherState, Profile, Shoot
from .protocol import (
    MAX_ARROWS_PER_WRITE,
    MAX_CLIENT_FRAME_BYTES,
    MAX_ID_LENGTH,
    MAX_REQUEST_ID,
    MAX_SERVER_FRAME_BYTES,
    MAX_STATE_VECTOR_BYTES,
    PROTOCOL_VERSION,
    Ack,
    ClientMessage,
    Error,
    Hello,
    Message,
    Notice,
    NoticeKind,
    Ping,
    Pong,
    Role,
    ServerMessage,
    Superseded,
    Update,
    Welcome,
    Write,
)
from .register import Register
from .rounds import Arrow

__all__ = ["decode_client", "decode_server", "encode", "register_from_wire", "register_to_wire"]

_Map: TypeAlias = dict[str, Any]
_T = TypeVar("_T")

#: Structural text limits: four times what the models accept after trimming, so that
#: the models, not the codec, give the precise error for a name a few characters too long.
_MAX_NAME: Final = 4 * MAX_NAME_LENGTH
_MAX_TITLE: Final = 4 * MAX_TITLE_LENGTH
_MAX_ROUND: Final = 64
_MAX_PROFILE_VALUE: Final = 32
_MAX_TIME_ZONE: Final = 64
_MAX_CODE: Final = 64
#: Error messages and notice texts: sentences, not documents.
_MAX_TEXT: Final = 1000
_MAX_COUNTER: Final = 2**31 - 1
_MAX_ARROW: Final = 20
_ARROW_VALUES: Final = frozenset([*range(_MAX_ARROW + 1), "X", "M"])
_ARROW_TYPES: Final = frozenset({int, str})
_ROLES: Final = ("archer", "viewer")
_NOTICE_KINDS: Final = ("lead", "digest")


# -- the envelope ----------------------------------------------------------------------


def _show(value: object) -> str:
    """A peer's value for an error sentence, kept short: the peer chose its size."""
    if isinstance(value, str | bytes):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    if value is None or isinstance(value, int | float):
        return repr(value)
    return "a map" if isinstance(value, dict) else f"a {type(value).__name__}"


def _decode(
    data: Frame, limit: int, readers: Mapping[str, Callable[[_Map], _T]], sender: str
) -> _T:
    frame = load_frame(data, limit)
    version = frame.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(
            "unsupported_version",
            f"This peer speaks protocol version {PROTOCOL_VERSION}; the frame's version is "
            f"{_show(version)}.",
        )
    name = frame.get("type")
    reader = readers.get(name) if type(name) is str else None
    if reader is None:
        raise ProtocolError(
            "unknown_type", f"The message type {_show(name)} is not one a {sender} sends."
        )
    return reader(frame)


# -- field checkers: (map, key, path prefix) -> checked value ----------------------------


def _invalid(where: str, key: str, rule: str) -> ProtocolError:
    return ProtocolError("invalid_field", f"Field '{where}{key}' {rule}.")


def _get(m: _Map, key: str, where: str) -> Any:
    try:
        return m[key]
    except KeyError:
        raise _invalid(where, key, "is missing") from None


def _is_int(value: object, low: int, high: int) -> TypeGuard[int]:
    return type(value) is int and low <= value <= high


def _is_id(value: object) -> TypeGuard[str]:
    return (
        type(value) is str
        and 0 < len(value) <= MAX_ID_LENGTH
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


def _is_arrow(value: object) -> bool:
    return value == "X" or value == "M" or _is_int(value, 0, _MAX_ARROW)


def _int(m: _Map, key: str, where: str, low: int = 0, high: int = MAX_REQUEST_ID) -> int:
    value = _get(m, key, where)
    if not _is_int(value, low, high):
        raise _invalid(where, key, f"must be an integer from {low} to {high}")
    return value


def _opt_int(m: _Map, key: str, where: str, low: int = 0, high: int = MAX_REQUEST_ID) -> int | None:
    return None if m.get(key) is None else _int(m, key, where, low, high)


def _bool(m: _Map, key: str, where: str) -> bool:
    value = _get(m, key, where)
    if type(value) is not bool:
        raise _invalid(where, key, "must be true or false")
    return value


def _str(m: _Map, key: str, where: str, max_length: int) -> str:
    value = _get(m, key, where)
    if type(value) is not str or len(value) > max_length:
        raise _invalid(where, key, f"must be a text string of at most {max_length} characters")
    return value


def _choice(m: _Map, key: str, where: str, choices: tuple[str, ...]) -> str:
    value = _get(m, key, where)
    if type(value) is not str or value not in choices:
        raise _invalid(where, key, "must be one of " + ", ".join(f'"{c}"' for c in choices))
    return value


def _id(m: _Map, key: str, where: str) -> str:
    value = _get(m, key, where)
    if not _is_id(value):
        raise _invalid(
            where, key, f"must be 1 to {MAX_ID_LENGTH} printable ASCII characters without spaces"
        )
    return value


def _opt_id(m: _Map, key: str, where: str) -> str | None:
    return None if m.get(key) is None else _id(m, key, where)


def _code(m: _Map, key: str, where: str) -> str:
    value = _get(m, key, where)
    if not (
        type(value) is str
        and len(value) == 4
        and value.isascii()
        and value.isdigit()
        and value[0] != "0"
    ):
        raise _invalid(where, key, 'must be a shoot code, "1000" to "9999"')
    return value


def _bytes(m: _Map, key: str, where: str, max_length: int) -> bytes:
    value = _get(m, key, where)
    if type(value) is not bytes or len(value) > max_length:
        raise _invalid(where, key, f"must be a byte string of at most {max_length} bytes")
    return value


def _map(m: _Map, key: str, where: str) -> _Map:
    value = _get(m, key, where)
    if type(value) is not dict:
        raise _invalid(where, key, "must be a map")
    return value


def _stamp(m: _Map, key: str, where: str) -> Stamp:
    value = _get(m, key, where)
    if type(value) is list and len(value) == 3:
        wall_ms, counter, device_id = value
        if (
            _is_int(wall_ms, 0, MAX_REQUEST_ID)
            and _is_int(counter, 0, _MAX_COUNTER)
            and _is_id(device_id)
        ):
            return Stamp(wall_ms, counter, device_id)
    raise _invalid(
        where,
        key,
        f"must be [wall_ms, counter, device_id] with wall_ms 0 to {MAX_REQUEST_ID}, "
        f"counter 0 to {_MAX_COUNTER} and a device id",
    )


def _arrows(m: _Map, key: str, where: str) -> tuple[Arrow, ...]:
    value = _get(m, key, where)
    if type(value) is not list or len(value) > MAX_ARROWS_PER_WRITE:
        raise _invalid(where, key, f"must be a list of at most {MAX_ARROWS_PER_WRITE} arrows")
    # Exact types first (True == 1 and 1.0 == 1 would pass the membership test); both
    # loops run in C, several times faster than checking arrow by arrow.
    if not (set(map(type, value)) <= _ARROW_TYPES and all(map(_ARROW_VALUES.__contains__, value))):
        index = next(i for i, arrow in enumerate(value) if not _is_arrow(arrow))
        raise _invalid(
            where, f"{key}[{index}]", f'must be an integer 0 to {_MAX_ARROW}, "X" or "M"'
        )
    return tuple(value)


def _role_and_archer(m: _Map) -> tuple[Role, str | None]:
    """``role`` and ``archer`` together: archers name themselves, viewers do not."""
    role = cast("Role", _choice(m, "role", "", _ROLES))
    archer = _opt_id(m, "archer", "")
    if (role == "archer") != (archer is not None):
        raise _invalid("", "archer", "is required for archers and must be absent for viewers")
    return role, archer


def _register(m: _Map, key: str, where: str) -> Register:
    register = _map(m, key, where)
    where = f"{where}{key}."
    state = _map(register, "state", where)
    state_where = where + "state."
    profile = _map(state, "profile", state_where)
    profile_where = state_where + "profile."
    return Register(
        archer_id=_id(register, "archer", where),
        stamp=_stamp(register, "stamp", where),
        state=ArcherState(
            name=_str(state, "name", state_where, _MAX_NAME),
            round=_str(state, "round", state_where, _MAX_ROUND),
            profile=Profile(
                bowstyle=_str(profile, "bowstyle", profile_where, _MAX_PROFILE_VALUE),
                age_group=_str(profile, "age_group", profile_where, _MAX_PROFILE_VALUE),
                gender=_str(profile, "gender", profile_where, _MAX_PROFILE_VALUE),
            ),
            arrows=_arrows(state, "arrows", state_where),
            finished=_bool(state, "finished", state_where),
            left=_bool(state, "left", state_where),
        ),
    )


def _shoot(m: _Map, key: str, where: str) -> Shoot:
    shoot = _map(m, key, where)
    where = f"{where}{key}."
    return Shoot(
        code=_code(shoot, "code", where),
        shoot_id=_id(shoot, "shoot_id", where),
        title=_str(shoot, "title", where, _MAX_TITLE),
        creator=_str(shoot, "creator", where, _MAX_TITLE),
        created_ms=_int(shoot, "created_ms", where),
        expires_ms=_int(shoot, "expires_ms", where),
        time_zone=_str(shoot, "time_zone", where, _MAX_TIME_ZONE),
    )


# -- messages ----------------------------------------------------------------------------


def _hello(m: _Map) -> Hello:
    role, archer = _role_and_archer(m)
    token = _opt_id(m, "token", "")
    if (role == "archer") != (token is not None):
        raise _invalid("", "token", "is required for archers and must be absent for viewers")
    sv = _bytes(m, "sv", "", MAX_STATE_VECTOR_BYTES)
    # Read here, with the rest of the frame, so that no later step (the shoot's actor
    # comparing it with its document) can meet a state vector it cannot read.
    decode_state_vector(sv)
    return Hello(shoot=_code(m, "shoot", ""), role=role, sv=sv, archer=archer, token=token)


def _welcome(m: _Map) -> Welcome:
    role, archer = _role_and_archer(m)
    return Welcome(
        shoot=_shoot(m, "shoot", ""),
        reset=_bool(m, "reset", ""),
        update=_bytes(m, "update", "", MAX_SERVER_FRAME_BYTES),
        server_ms=_int(m, "server_ms", ""),
        role=role,
        archer=archer,
    )


def _error(m: _Map) -> Error:
    return Error(
        code=_str(m, "code", "", _MAX_CODE),
        message=_str(m, "message", "", _MAX_TEXT),
        id=_opt_int(m, "id", ""),
        fatal=_bool(m, "fatal", ""),
        server_ms=_opt_int(m, "server_ms", ""),
    )


def _notice(m: _Map) -> Notice:
    return Notice(
        kind=cast("NoticeKind", _choice(m, "kind", "", _NOTICE_KINDS)),
        round=_str(m, "round", "", _MAX_ROUND),
        archer=_id(m, "archer", ""),
        text=_str(m, "text", "", _MAX_TEXT),
        position=_opt_int(m, "position", ""),
        of=_opt_int(m, "of", ""),
        change=_opt_int(m, "change", "", -MAX_REQUEST_ID, MAX_REQUEST_ID),
        ends=_int(m, "ends", ""),
    )


_CLIENT_READERS: Final[Mapping[str, Callable[[_Map], ClientMessage]]] = {
    "hello": _hello,
    "write": lambda m: Write(id=_int(m, "id", ""), register=_register(m, "register", "")),
    "ping": lambda m: Ping(nonce=_int(m, "nonce", "")),
}

_SERVER_READERS: Final[Mapping[str, Callable[[_Map], ServerMessage]]] = {
    "welcome": _welcome,
    "update": lambda m: Update(update=_bytes(m, "update", "", MAX_SERVER_FRAME_BYTES)),
    "ack": lambda m: Ack(
        id=_int(m, "id", ""), archer=_id(m, "archer", ""), stamp=_stamp(m, "stamp", "")
    ),
    "superseded": lambda m: Superseded(id=_int(m, "id", ""), winner=_register(m, "winner", "")),
    "error": _error,
    "notice": _notice,
    "pong": lambda m: Pong(nonce=_int(m, "nonce", ""), server_ms=_int(m, "server_ms", "")),
}


def decode_client(data: bytes | bytearray | memoryview) -> ClientMessage:
    """Decode a frame a client sent: the relay's side of the socket.

    Raises:
        ProtocolError: ``frame_too_large`` (over :data:`~sync.protocol.MAX_CLIENT_FRAME_BYTES`,
            checked before parsing), ``malformed``, ``unsupported_version``,
            ``unknown_type`` (including relay-only messages), ``invalid_field`` or
            ``invalid_state_vector``. Nothing else escapes, whatever the bytes.
    """
    return _decode(data, MAX_CLIENT_FRAME_BYTES, _CLIENT_READERS, "client")


def decode_server(data: bytes | bytearray | memoryview) -> ServerMessage:
    """Decode a frame the relay sent: the client's side of the socket.

    Raises:
        ProtocolError: as :func:`decode_client`, with the limit
            :data:`~sync.protocol.MAX_SERVER_FRAME_BYTES`.
    """
    return _decode(data, MAX_SERVER_FRAME_BYTES, _SERVER_READERS, "relay")


# -- encoding ----------------------------------------------------------------------------


def register_to_wire(register: Register) -> dict[str, Any]:
    """A register as the plain map that ``write`` and ``superseded`` carry."""
    return {
        "archer": register.archer_id,
        "stamp": register.stamp.to_wire(),
        "state": state_to_wire(register.state),
    }


def register_from_wire(obj: object, *, field: str = "register") -> Register:
    """The register in a decoded map, checked for structure only.

    The rules of the round (known round, arrows allowed there, how many) are
    :func:`sync.models.validate_state`'s, which callers run next.

    Args:
        obj: The decoded value, e.g. from a frame or the relay's JSON API.
        field: The name error sentences give it.

    Raises:
        ProtocolError: ``invalid_field``, naming the field.
    """
    return _register({field: obj}, field, "")


def _shoot_to_wire(shoot: Shoot) -> dict[str, Any]:
    return {name: getattr(shoot, name) for name in _SHOOT_FIELDS}


_SHOOT_FIELDS: Final = tuple(f.name for f in fields(Shoot))
_TYPE_NAMES: Final[Mapping[type, str]] = {
    Hello: "hello",
    Write: "write",
    Ping: "ping",
    Welcome: "welcome",
    Update: "update",
    Ack: "ack",
    Superseded: "superseded",
    Error: "error",
    Notice: "notice",
    Pong: "pong",
}
_FIELD_NAMES: Final = {cls: tuple(f.name for f in fields(cls)) for cls in _TYPE_NAMES}
_CONVERTERS: Final[Mapping[type, Callable[[Any], object]]] = {
    Register: register_to_wire,
    Stamp: Stamp.to_wire,
    Shoot: _shoot_to_wire,
}


def encode(message: Message) -> bytes:
    """The frame for a message this process built (trusted: converted, not validated).

    ``None`` fields travel as CBOR null; decoders treat null and absent alike.
    """
    cls = type(message)
    try:
        frame: _Map = {"v": PROTOCOL_VERSION, "type": _TYPE_NAMES[cls]}
    except KeyError:
        raise TypeError(f"{cls.__name__} is not a message of the protocol") from None
    for name in _FIELD_NAMES[cls]:
        value = getattr(message, name)
        convert = _CONVERTERS.get(type(value))
        frame[name] = value if convert is None else convert(value)
    return cbor2.dumps(frame)
