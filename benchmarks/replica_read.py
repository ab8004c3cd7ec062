"""CPU per replica read: what reading the registers costs a replica after each update.

Every replica (the Python SDK, a follower relay's board) applies an update per write in
the shoot and then reads the registers. A shoot of 20 archers with 72 arrows each is
scored end by end, one write per arrow (the same writes as :mod:`benchmarks.write_cost`),
by a writer document; each update is applied to a :class:`sync.document.ShootDocument`
replica and to a bare pycrdt document, and then, timed with the thread's CPU clock:

- **read**: ``ShootDocument.registers()``, the replica's read (the archers map as Yrs's
  JSON in one call, registers rebuilt only for archers whose fields changed);
- **to_py** (the reference, same run, same document state): pycrdt's ``to_py`` of the
  archers map turned into registers, which is how replicas read before.

Applying the update is not timed: both pay it. The two reads are checked equal after
every update, so a fast wrong read fails the run instead of reporting a number.

``python -m benchmarks.replica_read`` prints a JSON object; :func:`run` returns it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from pycrdt import Doc, Map

from benchmarks.write_cost import shoot_writes
from sync.clock import Stamp
from sync.document import ShootDocument
from sync.models import ArcherState, Profile
from sync.register import Register

__all__ = ["run", "to_py_read"]


def to_py_read(archers: Map[Any]) -> dict[str, Register]:
    """The registers of an archers map read with pycrdt's ``to_py`` (the reference)."""
    registers = {}
    for archer_id, fields in (archers.to_py() or {}).items():
        wall_ms, counter, device_id = fields["stamp"]
        state = ArcherState(
            name=fields["name"],
            round=fields["round"],
            profile=Profile(fields["bowstyle"], fields["age_group"], fields["gender"]),
            arrows=tuple(_arrow_of(a) for a in fields["arrows"]),
            finished=bool(fields["finished"]),
            left=bool(fields["left"]),
        )
        stamp = Stamp(int(wall_ms), int(counter), str(device_id))
        registers[archer_id] = Register(archer_id, stamp, state)
    return registers


def _arrow_of(value: Any) -> Any:
    """An arrow as ``to_py`` gives it (Yjs numbers are doubles) as scored."""
    return value if isinstance(value, str) else int(value)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(archers: int = 20, arrows: int = 72) -> dict[str, Any]:
    """Measure and return the result as plain data (milliseconds of CPU per read).

    Raises:
        RuntimeError: the replica's read and the ``to_py`` read disagreed.
    """
    writer, replica = ShootDocument(client_id=1), ShootDocument()
    plain: Doc[Any] = Doc()
    plain_archers = plain.get("archers", type=Map)
    reads: list[float] = []
    references: list[float] = []
    for register in shoot_writes(archers, arrows):
        update = writer.write(register)[1]
        replica.apply_update(update)
        plain.apply_update(update)

        begin = time.thread_time_ns()
        read = replica.registers()
        reads.append((time.thread_time_ns() - begin) / 1e6)

        begin = time.thread_time_ns()
        reference = to_py_read(plain_archers)
        references.append((time.thread_time_ns() - begin) / 1e6)
        if read != reference:
            raise RuntimeError(f"the replica read differs from to_py after {register}")
    median, reference_median = statistics.median(reads), statistics.median(references)
    p99, reference_p99 = _percentile(reads, 0.99), _percentile(references, 0.99)
    return {
        "archers": archers,
        "arrows": arrows,
        "updates": len(reads),
        "read_median_ms": round(median, 4),
        "read_p99_ms": round(p99, 4),
        "to_py_median_ms": round(reference_median, 4),
        "to_py_p99_ms": round(reference_p99, 4),
        "median_ratio": round(median / reference_median, 4),
        "p99_ratio": round(p99 / reference_p99, 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--archers", type=int, default=20)
    parser.add_argument("--arrows", type=int, default=72)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.archers, args.arrows), indent=2))


if __name__ == "__main__":
    main()
