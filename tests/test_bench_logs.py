"""A benchmark run that went wrong keeps its servers' logs beside its report."""

from __future__ import annotations

from pathlib import Path

from benchmarks.logs import failed_servers, keep_logs


def test_a_server_that_held_no_connection_is_found_wherever_it_was_measured() -> None:
    results = {
        "fanout": [{"subscribers": 10, "relay": {"server": "relay", "connections": 11}}],
        "many": {
            "relay": {"server": "relay", "connections": 10_000},
            "floor": {"server": "floor", "connections": 0, "failed": 10_000},
        },
        "storm": {"clients": 0},  # not a server's measurement
    }
    assert failed_servers(results) == {"floor"}
    assert failed_servers({"many": {"relay": {"server": "relay", "connections": 5}}}) == set()


def test_the_logs_are_kept_only_when_something_went_wrong(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    (work / "floor.log").write_text("floor: accept failed\n")
    (work / "relay.log").write_text("relay listening\n")
    assert keep_logs(work, out, [], set()) is None
    assert not (out / "logs").exists()

    kept = keep_logs(work, out, [], {"floor"})
    assert kept == out / "logs"
    assert (kept / "floor.log").read_text() == "floor: accept failed\n"
    assert (kept / "relay.log").exists()
    assert keep_logs(work, tmp_path / "other", ["relay exited at start"], set()) is not None
