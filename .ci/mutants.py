"""Mutation check: each deliberate protocol bug below must make the property test fail.

A property test that passes with the bug it exists to catch is worse than none, and
this has happened (answers sent before the winner was durable, with every test green).
Each mutant is one exact text replacement in a scratch copy of the source; the script
runs the convergence property test against it and fails if any mutant survives, or if a
mutant's text is no longer found (the source moved: update the mutant, do not drop it).

Run from the repository root: ``python .ci/mutants.py`` (``.ci/run`` does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROPERTY_TESTS = ["tests/test_convergence.py"]
#: Histories per mutant: enough to kill every mutant below with the CI profile's
#: derandomized examples, far fewer than the full run's.
HISTORIES = os.environ.get("MUTANT_HISTORIES", "1500")


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str


MUTANTS = [
    Mutant(
        "superseded (and a duplicate's ack) answered before the winner is durable",
        "sync/relay_state.py",
        "return Written(outcome, None, self._setter.get(register.archer_id, 0))",
        "return Written(outcome, None, 0)",
    ),
    Mutant(
        "ack answered before the write is durable",
        "sync/relay_state.py",
        "return Written(outcome, update, needs)",
        "return Written(outcome, update, 0)",
    ),
    Mutant(
        "the reset rule dropped: a replica ahead of a crash gets a diff",
        "sync/relay_state.py",
        "if self.doc.knows(state_vector):",
        "if True:",
    ),
    Mutant(
        "stamps compared without the counter",
        "sync/register.py",
        "return 1 if a.stamp > b.stamp else -1",
        "return 1 if (a.stamp.wall_ms, a.stamp.device_id) > (b.stamp.wall_ms, b.stamp.device_id)"
        " else -1",
    ),
    Mutant(
        "the client drops the reset rule: a reset welcome is applied over the stale replica",
        "sync/client_session.py",
        "        if welcome.reset:\n            self.replica = ShootDocument()",
        "        if False:\n            self.replica = ShootDocument()",
    ),
    Mutant(
        "the client never sends an unanswered write again on the same connection",
        "sync/client_link.py",
        "return sent[1] + resend_after_s",
        "return math.inf",
    ),
    Mutant(
        "the client re-stamps after clock_skew without correcting its clock",
        "sync/client_session.py",
        "self.clock.correct(wall_ms, error.server_ms)",
        "pass",
    ),
    Mutant(
        "a new write silently replaces a pending one another device's state had beaten",
        "sync/client_session.py",
        "actions += replaced(pending, current)",
        "pass",
    ),
    Mutant(
        "an acknowledged write another device's state replaced is not reported",
        "sync/carried_edits.py",
        "return Replaced(carried, value, acknowledged=True)",
        "return None",
    ),
    Mutant(
        "an older edit of the device's own that won on a pre-correction stamp stands",
        "sync/carried_edits.py",
        "return Rewrite(carried) if self.stale_own(value, carried) else None",
        "return None",
    ),
    Mutant(
        "a local write is merged into the outbox instead of replacing the pending one",
        "sync/client_session.py",
        "self.outbox.replace(register)",
        "self.outbox.put(register)",
    ),
    Mutant(
        "correct() forgets the stamps it has seen",
        "sync/clock.py",
        "kept = [stamp for stamp in self._recent if stamp.wall_ms <= bound]",
        "kept = []",
    ),
]


def scratch_copy(into: Path) -> None:
    ignore = shutil.ignore_patterns(
        "__pycache__", ".mypy_cache", ".ruff_cache", "node_modules", ".test-build", "web", "e2e"
    )
    for name in ("sync", "relay", "clients", "tests"):
        shutil.copytree(ROOT / name, into / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")


def run(mutant: Mutant) -> bool:
    """Whether the property test killed ``mutant`` (failed, as opposed to passing or
    not running at all)."""
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        scratch = Path(tmp)
        scratch_copy(scratch)
        target = scratch / mutant.path
        source = target.read_text("utf-8")
        if source.count(mutant.old) != 1:
            sys.exit(f"mutant {mutant.name!r}: its text is not in {mutant.path} exactly once")
        target.write_text(source.replace(mutant.old, mutant.new), "utf-8")
        env = {**os.environ, "PYTHONPATH": str(scratch), "CI": "true"}
        env["FAST_SHOOT_HISTORIES"] = HISTORIES
        env["HYPOTHESIS_PROFILE"] = "mutants"  # the CI profile without shrinking
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *PROPERTY_TESTS],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        # Exit code 1 is "tests failed"; anything else (2: collection error) is no kill.
        return result.returncode == 1


def main() -> int:
    survivors = []
    for mutant in MUTANTS:
        started = time.monotonic()
        killed = run(mutant)
        took = time.monotonic() - started
        print(f"{'killed ' if killed else 'SURVIVED'} ({took:4.0f} s)  {mutant.name}", flush=True)
        if not killed:
            survivors.append(mutant.name)
    if survivors:
        print(f"{len(survivors)} mutant(s) survived the property test", file=sys.stderr)
        return 1
    print(f"all {len(MUTANTS)} mutants killed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
