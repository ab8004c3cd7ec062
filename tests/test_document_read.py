"""Reading registers from a replica: the cheap read must always equal a full ``to_py`` read.

A replica (the SDK, a browser, a follower relay) reads the registers after every update it
applies, so :meth:`ShootDocument.registers` keeps the registers of archers whose fields did
not change instead of decoding the whole map with ``to_py``. A read that kept a register
too long would show a client a state the shoot no longer holds, or give a writer a wrong
"previous" register, from which it would write a wrong diff. These tests compare the read
with a reference decoded by ``to_py`` from a fresh document, after every step of random
histories: several writers (each its own Yjs client id, as successive owners of a shoot
are, and sometimes writing the same archer concurrently), a raw Yjs peer that deletes or
replaces an archer's whole map, updates delivered to replicas out of order, duplicated,
or before the updates they depend on (pycrdt holds those pending and integrates them when
the missing one arrives), and resets (a replica replaced by a writer's full state, as a
``welcome`` with ``reset`` does).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, TransactionEvent

from sync.clock import Stamp
from sync.document import ShootDocument
from sync.models import ArcherState, Profile
from sync.register import Register

ARCHERS = ("a1", "a2", 'ä "3"\\')
WRITERS = 3

_text = st.text(max_size=8)
_arrow = st.sampled_from([*range(11), "X", "M"])


def _arrow_of(value: Any) -> Any:
    """An arrow as ``to_py`` gives it (Yjs numbers are doubles) as scored."""
    return value if isinstance(value, str) else int(value)


def reference(document: ShootDocument) -> dict[str, Register]:
    """The registers as a full ``to_py`` of the archers map decodes them, in a fresh
    document built from everything ``document`` has integrated."""
    fresh: Doc[Any] = Doc()
    fresh.apply_update(document.diff())
    raw: dict[str, Any] = fresh.get("archers", type=Map).to_py() or {}
    registers = {}
    for archer_id, fields in raw.items():
        wall_ms, counter, device_id = fields["stamp"]
        state = ArcherState(
            name=fields["name"],
            round=fields["round"],
            profile=Profile(fields["bowstyle"], fields["age_group"], fields["gender"]),
            arrows=tuple(_arrow_of(a) for a in fields["arrows"]),
            finished=fields["finished"],
            left=fields["left"],
        )
        registers[archer_id] = Register(
            archer_id, Stamp(int(wall_ms), int(counter), device_id), state
        )
    return registers


def assert_reads_true(document: ShootDocument) -> None:
    expected = reference(document)
    assert document.registers() == expected
    for archer_id in ARCHERS:
        assert document.register(archer_id) == expected.get(archer_id)


class RawPeer:
    """A bare Yjs peer that does what the single writer never does: delete an archer's
    map, or put a whole new map in its place (a concurrent insert of one key)."""

    def __init__(self) -> None:
        self.doc: Doc[Any] = Doc(client_id=99)
        self.archers: Map[Any] = self.doc.get("archers", type=Map)
        self.updates: list[bytes] = []
        self.doc.observe(self._collect)

    def _collect(self, event: TransactionEvent) -> None:
        self.updates.append(event.update)

    def take(self) -> bytes | None:
        updates, self.updates = self.updates, []
        return updates[-1] if updates else None

    def delete(self, archer_id: str) -> bytes | None:
        if archer_id in self.archers:
            del self.archers[archer_id]
        return self.take()

    def replace(self, register: Register) -> bytes | None:
        state = register.state
        self.archers[register.archer_id] = Map(
            {
                "name": state.name,
                "round": state.round,
                "bowstyle": state.profile.bowstyle,
                "age_group": state.profile.age_group,
                "gender": state.profile.gender,
                "finished": state.finished,
                "left": state.left,
                "stamp": register.stamp.to_wire(),
                "arrows": Array(list(state.arrows)),
            }
        )
        return self.take()


_deliver = st.tuples(st.just("deliver"), st.integers(0, 1), st.integers(0, 10_000))

# One step of a history, drawn as plain data and played by ``_play``.
_step = st.one_of(
    st.tuples(
        st.just("write"),
        st.integers(0, WRITERS - 1),
        st.sampled_from(ARCHERS),
        st.sampled_from(["append", "undo", "change", "fresh", "rename", "finish"]),
        _arrow,
        _text,
        st.integers(-2, 3),  # the stamp: behind, equal to, or ahead of the writer's last
    ),
    st.tuples(st.just("sync"), st.integers(0, WRITERS), st.integers(0, WRITERS)),
    _deliver,
    _deliver,  # twice: replicas get most of the steps
    st.tuples(st.just("catch_up"), st.integers(0, 1), st.integers(0, WRITERS)),
    st.tuples(st.just("reset"), st.integers(0, 1), st.integers(0, WRITERS)),
    st.tuples(st.just("delete"), st.sampled_from(ARCHERS)),
    st.tuples(
        st.just("replace"),
        st.sampled_from(ARCHERS),
        _text,
        st.lists(_arrow, max_size=4),
        st.booleans(),  # keep the stamp the raw peer sees (a device that reused a stamp)
    ),
)


def _derive(state: ArcherState) -> Any:
    return [len(state.arrows), 1.5, state.name or None, {"golds": [state.finished]}]


class History:
    """Writers, a raw peer and two replicas, and every update any of them made."""

    def __init__(self) -> None:
        # The first writer also stores derived values beside each state, as the relay's
        # actor does: fields the read must skip, of every JSON kind.
        self.writers = [ShootDocument(client_id=1, derive=_derive)]
        self.writers += [ShootDocument(client_id=n + 1) for n in range(1, WRITERS)]
        self.raw = RawPeer()
        self.replicas = [ShootDocument(), ShootDocument()]
        self.log: list[bytes] = []
        self.ms = 1_000

    def source(self, n: int) -> ShootDocument | None:
        """Writer ``n``, or None for the raw peer (the last index)."""
        return self.writers[n] if n < WRITERS else None

    def full_state(self, n: int) -> bytes:
        writer = self.source(n)
        return writer.diff() if writer is not None else self.raw.doc.get_update()

    def record(self, update: bytes | None) -> None:
        if update:
            self.log.append(update)

    def write(self, n: int, archer_id: str, edit: str, arrow: Any, text: str, ahead: int) -> None:
        writer = self.writers[n]
        current = writer.register(archer_id)
        state = current.state if current is not None else ArcherState("Chris", "national")
        arrows = state.arrows
        if edit == "append":
            state = ArcherState(state.name, state.round, state.profile, (*arrows, arrow))
        elif edit == "undo":
            state = ArcherState(state.name, state.round, state.profile, arrows[:-1])
        elif edit == "change" and arrows:
            changed = (*arrows[: len(arrows) // 2], arrow, *arrows[len(arrows) // 2 + 1 :])
            state = ArcherState(state.name, state.round, state.profile, changed)
        elif edit == "fresh":
            state = ArcherState(text or "Sam", "york", Profile("barebow"), (arrow,) * 3)
        elif edit == "rename":
            state = ArcherState(text, state.round, state.profile, arrows, state.finished)
        else:
            state = ArcherState(state.name, state.round, state.profile, arrows, True, True)
        self.ms += 1
        ms = self.ms if ahead > 0 else max(1, self.ms - 1 + ahead)
        stamp = Stamp(ms, 0, f"dev{n}")
        self.record(writer.write(Register(archer_id, stamp, state))[1])

    def sync(self, source: int, target: int) -> None:
        """One peer takes another's whole state (a new owner loading what it can see)."""
        update = self.full_state(source)
        writer = self.source(target)
        if writer is not None:
            writer.apply_update(update)
        else:
            self.raw.doc.apply_update(update)
            self.raw.take()  # applied from elsewhere: not a new change of the raw peer's

    def play(self, step: tuple[Any, ...]) -> None:
        kind = step[0]
        if kind == "write":
            self.write(*step[1:])
        elif kind == "sync":
            self.sync(step[1], step[2])
        elif kind == "deliver" and self.log:
            # Any update made so far: late, early (its dependencies not yet there), or again.
            self.replicas[step[1]].apply_update(self.log[step[2] % len(self.log)])
        elif kind == "catch_up":
            replica = self.replicas[step[1]]
            writer = self.source(step[2])
            if writer is not None:
                replica.apply_update(writer.diff(replica.state_vector()))
            else:
                replica.apply_update(self.raw.doc.get_update(replica.state_vector()))
        elif kind == "reset":
            # The relay's full state replaces the replica (a welcome with reset).
            self.replicas[step[1]] = ShootDocument.load([self.full_state(step[2])])
        elif kind == "delete":
            self.record(self.raw.delete(step[1]))
        elif kind == "replace":
            self.ms += 1
            stamp = Stamp(self.ms, 0, "raw")
            seen = self.raw.archers.get(step[1])
            if step[4] and seen is not None:
                wall_ms, counter, device_id = seen["stamp"]
                stamp = Stamp(int(wall_ms), int(counter), device_id)
            state = ArcherState(step[2], "national", arrows=tuple(step[3]))
            self.record(self.raw.replace(Register(step[1], stamp, state)))

    def check(self) -> None:
        for document in (*self.writers, *self.replicas):
            assert_reads_true(document)


@settings(max_examples=300, deadline=None)
@given(st.lists(_step, min_size=1, max_size=40))
def test_a_read_always_equals_a_full_to_py_read(steps: list[tuple[Any, ...]]) -> None:
    """After every step of any history, every copy's registers (read the cheap way, with
    registers kept from earlier reads) are exactly what a full ``to_py`` read gives."""
    history = History()
    for step in steps:
        history.play(step)
        history.check()


def test_an_update_held_for_a_missing_one_shows_once_that_one_arrives() -> None:
    """pycrdt keeps an update whose dependencies are missing pending: nothing shows. When
    the missing update arrives both are integrated, and the read shows both."""
    writer, replica = ShootDocument(client_id=1), ShootDocument()
    first = writer.write(Register("a1", Stamp(1, 0, "p"), ArcherState("C", "york", arrows=(9,))))
    second = writer.write(Register("a1", Stamp(2, 0, "p"), ArcherState("C", "york", arrows=(9, 7))))
    replica.apply_update(second[1])
    assert replica.registers() == {}
    replica.apply_update(first[1])
    assert replica.register("a1") == writer.register("a1")
    assert_reads_true(replica)


def test_a_replaced_archer_map_is_read_again_though_its_stamp_is_older() -> None:
    """Another peer's map wins the archer's key (Yjs decides by client id, not by stamp):
    the read shows the winner's fields, not the fields kept from the last read."""
    ours, theirs, replica = ShootDocument(client_id=1), RawPeer(), ShootDocument()
    state = ArcherState("Chris", "york", arrows=(9, 9))
    replica.apply_update(ours.write(Register("a1", Stamp(5, 0, "p"), state))[1])
    assert_reads_true(replica)
    older = Register("a1", Stamp(1, 0, "q"), ArcherState("Chris", "york", arrows=(1,)))
    update = theirs.replace(older)
    assert update is not None
    replica.apply_update(update)
    assert_reads_true(replica)
    assert replica.register("a1") == older
    update = theirs.delete("a1")
    assert update is not None
    replica.apply_update(update)
    assert replica.registers() == {}


def test_a_map_replaced_under_the_same_stamp_is_read_again() -> None:
    """A buggy device may reuse a stamp for another state: nothing kept from the last read
    may be trusted because the stamp did not change."""
    ours, theirs, replica = ShootDocument(client_id=1), RawPeer(), ShootDocument()
    stamp = Stamp(5, 0, "p")
    update = ours.write(Register("a1", stamp, ArcherState("Chris", "york", arrows=(9, 9))))[1]
    replica.apply_update(update)
    theirs.doc.apply_update(update)
    assert_reads_true(replica)
    same_stamp = Register("a1", stamp, ArcherState("Chris", "york", arrows=(9, 7)))
    replaced = theirs.replace(same_stamp)
    assert replaced is not None
    replica.apply_update(replaced)
    assert replica.register("a1") == same_stamp
    assert_reads_true(replica)


def test_a_read_rebuilds_only_the_registers_an_update_changed() -> None:
    """Reading after an update costs the archers it changed, not the whole shoot: the
    other archers keep their register objects."""
    writer, replica = ShootDocument(client_id=1), ShootDocument()
    for n in range(3):
        state = ArcherState("Chris", "york", arrows=(9,) * 12)
        replica.apply_update(writer.write(Register(f"a{n}", Stamp(1, 0, "p"), state))[1])
    before = replica.registers()
    state = ArcherState("Chris", "york", arrows=(9,) * 13)
    replica.apply_update(writer.write(Register("a1", Stamp(2, 0, "p"), state))[1])
    after = replica.registers()
    assert after == writer.registers() == reference(replica)
    assert after["a0"] is before["a0"]
    assert after["a2"] is before["a2"]
    assert after["a1"] is not before["a1"]


_any_text = st.text(max_size=12)


@given(
    st.lists(
        st.builds(
            Register,
            archer_id=st.sampled_from(["a1", "a2", 'ä "3"']),
            stamp=st.builds(
                Stamp,
                st.integers(0, 2**53 - 1),
                st.integers(0, 2**31 - 1),
                st.text(min_size=1, max_size=8),
            ),
            state=st.builds(
                ArcherState,
                name=_any_text,
                round=_any_text,
                profile=st.builds(Profile, _any_text, _any_text, _any_text),
                arrows=st.lists(_arrow, max_size=15).map(tuple),
                finished=st.booleans(),
                left=st.booleans(),
            ),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_a_replica_reads_exactly_what_the_writer_wrote(writes: list[Register]) -> None:
    """Any text (quotes, backslashes, control characters, emoji) and any stamp up to
    2^53 - 1 survives the JSON read exactly, after every update."""
    writer, replica = ShootDocument(client_id=1), ShootDocument()
    for write in writes:
        _, update = writer.write(write)
        if update:
            replica.apply_update(update)
        assert replica.registers() == writer.registers() == reference(replica)
    assert ShootDocument.load([writer.diff()]).registers() == writer.registers()
