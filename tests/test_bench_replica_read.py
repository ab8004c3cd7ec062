"""The replica-read benchmark runs on real documents and reports both reads.

Speed is never asserted (the machine is shared and noisy): only that every update of a
small shoot is read, both reads agreeing (the run refuses otherwise), with the numbers.
"""

from __future__ import annotations

from benchmarks.replica_read import run


def test_a_small_shoot_is_read_after_every_update_and_both_reads_are_reported() -> None:
    result = run(archers=3, arrows=12)
    assert result["updates"] == 36
    for key in ("read_median_ms", "read_p99_ms", "to_py_median_ms", "to_py_p99_ms"):
        assert result[key] > 0, key
    assert result["read_median_ms"] <= result["read_p99_ms"]
    assert result["median_ratio"] > 0
    assert result["p99_ratio"] > 0
