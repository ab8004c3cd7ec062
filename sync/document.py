"""A shoot's CRDT document: the archers' registers in a Yjs (pycrdt) document.

Theory of operation
-------------------
The document has three root maps. ``meta`` holds the shoot's metadata, written once.
``archers`` maps each archer id to a nested map of that archer's register: the fields of
:class:`~sync.models.ArcherState`, the stamp as ``[wall_ms, counter, device_id]``, and the
arrows as a Yjs array. ``notices`` holds the relay's memory of what it has announced, by
round (:class:`~sync.notifications.NotifierState` as plain data); replicas ignore it.
It lives here rather than in the relay's memory so that it is persisted, compacted,
expired and handed to a restarted actor exactly as the scores it is about are.

There is exactly **one writer**: the shoot's actor in the relay. It decides the
last-writer-wins merge itself (:func:`sync.register.decide`) and writes only winners, so
Yjs's own conflict rule (by client id) never has two concurrent sets of a key to settle.
Every other copy (phones, browsers, the Python client, a relay instance that is not the
owner) is a *replica* that only applies updates.

Yjs earns its place by what it gives replicas: a state vector of a few bytes says what a
replica has, and :meth:`ShootDocument.diff` answers with exactly what it lacks. A write
changes only the fields that changed, and adding an arrow appends to the array, so the
update for one arrow is a few dozen bytes however long the round is.

A replica can hold items the writer does not know: a relay that crashed after fanning an
update out but before Redis had it restarts without it (the write was never
acknowledged, so its device still holds it and will send it again). :meth:`knows` detects
that from the replica's state vector, and the relay then sends a full state for the replica
to start over from (see ``docs/protocol.md``).

Reading registers: a replica applies an update per write in the shoot and then reads the
registers (the SDK compares them before and after, to say who changed; a follower relay
rebuilds its board). pycrdt's ``to_py`` walks every arrow of every archer with a
transaction per element: 4.4 ms of CPU for 20 archers of 40 arrows, per update, so twenty
clients in one process fell tens of seconds behind a busy shoot. So
:meth:`ShootDocument.registers` reads the whole archers map as JSON, in one native call
(Yrs's own encoding), and builds :class:`~sync.register.Register` objects only for the
archers whose fields differ from the last read; the others keep their objects. Nothing
is inferred from which update touched what: every read is of the document as it is, so a
replaced archer map, an update that waited for a missing one, or two writers of one
archer cannot leave a stale register behind (``tests/test_document_read.py`` checks the
read against ``to_py`` over random histories of several writers).

Observers: pycrdt 0.14 leaks when an observer is unregistered, so the one observer that
collects updates is registered at construction and lives as long as the document.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from pycrdt import Array, Doc, Map, TransactionEvent, merge_updates

from .clock import Stamp
from .errors import ProtocolError
from .models import ArcherState, Need, Profile, Shoot
from .register import Applied, Outcome, Register, decide
from .rounds import Arrow

__all__ = ["EMPTY_STATE_VECTOR", "ShootDocument", "decode_state_vector", "merged"]

#: The state vector of an empty document: "send me everything".
EMPTY_STATE_VECTOR = b"\x00"
#: Diffs kept per document state (distinct state vectors among reconnecting replicas).
MAX_CACHED_DIFFS: Final = 16


def merged(updates: Sequence[bytes]) -> bytes:
    """Several Yjs updates as one that applies the same (empty for none): one frame for
    a run of writes, instead of one each."""
    if len(updates) == 1:
        return updates[0]
    return merge_updates(*updates) if updates else b""


_META_FIELDS = ("code", "shoot_id", "title", "creator", "created_ms", "expires_ms", "time_zone")


def _read_varuint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ProtocolError("invalid_state_vector", "The state vector is truncated.")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def decode_state_vector(data: bytes) -> dict[int, int]:
    """Decode a Yjs state vector (lib0 var-uints: count, then client/clock pairs).

    Raises:
        ProtocolError: ``invalid_state_vector`` for anything malformed.
    """
    count, pos = _read_varuint(data, 0)
    if count > len(data):
        raise ProtocolError("invalid_state_vector", "The state vector is malformed.")
    clocks: dict[int, int] = {}
    for _ in range(count):
        client, pos = _read_varuint(data, pos)
        clock, pos = _read_varuint(data, pos)
        clocks[client] = clock
    if pos != len(data):
        raise ProtocolError("invalid_state_vector", "The state vector has trailing bytes.")
    return clocks


def _arrow(value: Any) -> Arrow:
    # Yjs numbers are doubles: ints come back as floats.
    if value == "X" or value == "M":
        return value  # type: ignore[no-any-return]
    return int(value)


def _register_from_map(archer_id: str, fields: dict[str, Any]) -> Register:
    wall_ms, counter, device_id = fields["stamp"]
    state = ArcherState(
        name=fields["name"],
        round=fields["round"],
        profile=Profile(fields["bowstyle"], fields["age_group"], fields["gender"]),
        arrows=tuple(_arrow(a) for a in fields["arrows"]),
        finished=bool(fields["finished"]),
        left=bool(fields["left"]),
    )
    return Register(archer_id, Stamp(int(wall_ms), int(counter), str(device_id)), state)


def _scalar_fields(register: Register) -> dict[str, Any]:
    state = register.state
    return {
        "name": state.name,
        "round": state.round,
        "bowstyle": state.profile.bowstyle,
        "age_group": state.profile.age_group,
        "gender": state.profile.gender,
        "finished": state.finished,
        "left": state.left,
        "stamp": register.stamp.to_wire(),
    }


class ShootDocument:
    """One shoot's registers, as a Yjs document.

    Args:
        client_id: The Yjs client id this copy writes with. Each writer incarnation (an
            actor started on some relay) needs its own, never reused; replicas never
            write, so theirs does not matter. ``None`` lets pycrdt pick a random one.
        derive: For the writer: computes the ``derived`` field written beside each
            archer's state in the same transaction as the write (the relay passes
            :func:`sync.classification.peek_derived` through the cached summary).
            ``None`` writes no such field. It may answer with a
            :class:`~sync.classification.Need` instead of values: the field is then left
            as it was, the archer is listed in :attr:`underived`, and
            :meth:`rederive` writes the values once the need has been filled.
    """

    def __init__(
        self,
        *,
        client_id: int | None = None,
        derive: Callable[[ArcherState], Any] | None = None,
    ) -> None:
        self._derive = derive
        self._doc: Doc[Any] = Doc() if client_id is None else Doc(client_id=client_id)
        self._meta: Map[Any] = self._doc.get("meta", type=Map)
        self._archers: Map[Any] = self._doc.get("archers", type=Map)
        self._notices: Map[Any] = self._doc.get("notices", type=Map)
        self._registers: dict[str, Register] | None = {}
        self._read: dict[str, tuple[Any, Register]] = {}
        """Each archer's fields as last read (JSON-decoded), with the register built from
        them: the next read rebuilds only the archers whose fields differ."""
        self._derived: dict[str, Any] = {}
        """What the ``derived`` fields hold, by archer, as far as known without reading
        the Yjs maps (cleared when an update from elsewhere is applied)."""
        self._maps: dict[str, tuple[Map[Any], Array[Any]]] = {}
        """Each archer's map and arrows array, kept rather than looked up per write."""
        self.underived: dict[str, Need] = {}
        """Archers whose stored derived values lag their state, with what they wait for."""
        self._updates: list[bytes] = []
        self._diffs: dict[bytes, bytes] = {}
        """Diffs already computed for the document as it is (cleared by every change): a
        reconnect storm brings many replicas with the same state vector at once."""
        self._ours: dict[int, int] | None = None
        """The decoded state vector of the document as it is (cleared by every change)."""
        self._doc.observe(self._collect)  # never unobserved: see the module docstring

    def _collect(self, event: TransactionEvent) -> None:
        self._updates.append(event.update)
        self._changed()

    def _changed(self) -> None:
        if self._diffs:
            self._diffs.clear()
        self._ours = None

    def _take_update(self) -> bytes:
        updates, self._updates = self._updates, []
        return merged(updates)

    # -- loading and replicas ------------------------------------------------------------

    @classmethod
    def load(
        cls,
        updates: Iterable[bytes],
        *,
        client_id: int | None = None,
        derive: Callable[[ArcherState], Any] | None = None,
    ) -> ShootDocument:
        """Rebuild a document from a snapshot followed by the updates logged since."""
        document = cls(client_id=client_id, derive=derive)
        for update in updates:
            document.apply_update(update)
        return document

    def apply_update(self, update: bytes) -> None:
        """Merge an update from elsewhere (Redis, or the relay for a replica).

        Raises:
            ProtocolError: ``invalid_update`` when the bytes are not a Yjs update.
        """
        try:
            self._doc.apply_update(update)
        except Exception as exc:  # pycrdt raises bare exceptions from Rust
            raise ProtocolError("invalid_update", "The document update is malformed.") from exc
        finally:
            self._updates.clear()
            self._changed()
        self._registers = None
        self._derived.clear()
        self._maps.clear()

    # -- what replicas ask for -----------------------------------------------------------

    def state_vector(self) -> bytes:
        return self._doc.get_state()

    def diff(self, state_vector: bytes = EMPTY_STATE_VECTOR) -> bytes:
        """The update a replica with ``state_vector`` is missing (everything by default).

        Raises:
            ProtocolError: ``invalid_state_vector`` for malformed input.
        """
        cached = self._diffs.get(state_vector)
        if cached is not None:
            return cached
        decode_state_vector(state_vector)
        diff = self._doc.get_update(state_vector)
        if len(self._diffs) >= MAX_CACHED_DIFFS:
            self._diffs.clear()
        self._diffs[bytes(state_vector)] = diff
        return diff

    def knows(self, state_vector: bytes) -> bool:
        """Whether this document holds everything a replica with ``state_vector`` holds.

        A client id we have never seen, even at clock 0 (a replica lists one when it holds
        updates it could not integrate yet), means the replica has items from a writer
        incarnation whose work we lost, and must start over.
        """
        ours = self._ours
        if ours is None:
            ours = self._ours = decode_state_vector(self.state_vector())
        theirs = decode_state_vector(state_vector)
        return all(client in ours and ours[client] >= clock for client, clock in theirs.items())

    # -- reading -------------------------------------------------------------------------

    @property
    def meta(self) -> Shoot | None:
        fields = self._meta.to_py() or {}
        if not all(name in fields for name in _META_FIELDS):
            return None
        return Shoot(
            code=fields["code"],
            shoot_id=fields["shoot_id"],
            title=fields["title"],
            creator=fields["creator"],
            created_ms=int(fields["created_ms"]),
            expires_ms=int(fields["expires_ms"]),
            time_zone=fields["time_zone"],
        )

    def registers(self) -> dict[str, Register]:
        """Every archer's register, by archer id (a fresh dict; safe to keep)."""
        if self._registers is None:
            self._registers = self._read_registers()
        return dict(self._registers)

    def _read_registers(self) -> dict[str, Register]:
        """Decode the archers map, reusing the registers of archers whose fields are equal
        to the last read's.

        ``str()`` of a pycrdt map is Yrs's JSON encoding of it, made in one native call; it
        keeps strings exactly, and numbers as JSON numbers (a whole double prints as an
        integer, which is what :func:`_register_from_map` makes of it anyway).
        """
        raw: dict[str, Any] = json.loads(str(self._archers))
        before = self._read
        read: dict[str, tuple[Any, Register]] = {}
        for archer_id, fields in raw.items():
            kept = before.get(archer_id)
            if kept is not None and kept[0] == fields:
                read[archer_id] = kept
            else:
                read[archer_id] = (fields, _register_from_map(archer_id, fields))
        self._read = read
        return {archer_id: register for archer_id, (_, register) in read.items()}

    def notices_memory(self) -> dict[str, object]:
        """The relay's stored memory of its notices, by round (see :meth:`remember_notices`)."""
        memory: dict[str, object] = self._notices.to_py() or {}
        return memory

    def derived(self, archer_id: str) -> Any:
        """The ``derived`` values the writer stored for an archer (``None`` if none)."""
        fields = self._archers.get(archer_id)
        return None if fields is None else fields.get("derived")

    def register(self, archer_id: str) -> Register | None:
        if self._registers is None:
            self.registers()
        assert self._registers is not None
        return self._registers.get(archer_id)

    # -- writing (the single writer only) ------------------------------------------------

    def set_meta(self, shoot: Shoot) -> bytes:
        """Record the shoot's metadata; returns the update to fan out."""
        with self._doc.transaction():
            for name in _META_FIELDS:
                self._meta[name] = getattr(shoot, name)
        return self._take_update()

    def write(self, register: Register) -> tuple[Outcome, bytes]:
        """Merge a write into the document.

        Returns:
            The outcome, and the Yjs update to persist and fan out: empty unless the
            outcome is :class:`~sync.register.Applied`.
        """
        previous = self.register(register.archer_id)
        outcome = decide(previous, register)
        if not isinstance(outcome, Applied):
            return outcome, b""
        with self._doc.transaction():
            self._write_fields(register, previous)
        if self._registers is not None:
            self._registers[register.archer_id] = register
        self._read.pop(register.archer_id, None)  # its fields as last read are out of date
        return outcome, self._take_update()

    def rederive(self) -> bytes:
        """Write the derived values of the :attr:`underived` archers whose needs have
        been filled since (see ``derive``). Returns the update, empty if none was."""
        if self._derive is None or not self.underived:
            return b""
        with self._doc.transaction():
            for archer_id in list(self.underived):
                register = self.register(archer_id)
                fields = self._archers.get(archer_id)
                if register is None or fields is None:
                    del self.underived[archer_id]
                    continue
                self._store_derived(archer_id, fields, self._derive(register.state))
        return self._take_update()

    def _store_derived(self, archer_id: str, fields: Map[Any], values: Any) -> None:
        if isinstance(values, Need):
            self.underived[archer_id] = values
            return
        self.underived.pop(archer_id, None)
        if archer_id not in self._derived:
            self._derived[archer_id] = fields.get("derived")
        if self._derived[archer_id] != values:
            fields["derived"] = values
            self._derived[archer_id] = values

    def remember_notices(self, entries: Mapping[str, object]) -> bytes:
        """Store the relay's memory of its notices: plain data by round, ``None`` removing
        a round; a value equal to the stored one is not written again.

        Returns:
            The update to fan out and persist, empty when nothing changed.
        """
        with self._doc.transaction():
            for name, value in entries.items():
                if value is None:
                    if name in self._notices:
                        del self._notices[name]
                elif self._notices.get(name) != value:
                    self._notices[name] = value
        return self._take_update()

    def _write_fields(self, register: Register, previous: Register | None) -> None:
        """Set what changed since ``previous`` (the register the map holds: this is the
        only writer, so the comparison needs no read of the Yjs map)."""
        archer_id = register.archer_id
        fields = _scalar_fields(register)
        arrows = list(register.state.arrows)
        held = self._maps.get(archer_id)
        if held is None:
            existing = self._archers.get(archer_id)
            if existing is not None:
                held = self._maps[archer_id] = (existing, existing["arrows"])
        if held is None:
            existing = Map({**fields, "arrows": Array(arrows)})
            self._archers[archer_id] = existing
            self._derived.pop(archer_id, None)
        else:
            existing, array = held
            old_fields = _scalar_fields(previous) if previous is not None else {}
            for name, value in fields.items():
                if old_fields.get(name) != value:
                    existing[name] = value
            if previous is not None:
                old: list[Arrow] = list(previous.state.arrows)
            else:
                old = [_arrow(a) for a in array.to_py() or ()]
            shared = min(len(old), len(arrows))
            if old[:shared] == arrows[:shared]:
                keep = shared  # the usual write: arrows added after the stored ones
            else:
                keep = next(i for i in range(shared) if old[i] != arrows[i])
            if keep < len(old):
                del array[keep:]
            if keep < len(arrows):
                array.extend(arrows[keep:])
        if self._derive is not None:
            # Same transaction as the state: one update per write, the same for everyone.
            self._store_derived(archer_id, existing, self._derive(register.state))
