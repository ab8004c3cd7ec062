"""``fast-shoot bench`` runs end to end with tiny sizes and writes its report.

Speed is never asserted here (the machine is shared and noisy): only that every scenario
runs, against the real relay and the baseline, and that the report has its sections.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

HEADINGS = (
    "## Goals",
    "## Fan-out latency",
    "## Many shoots at once",
    "## Connections and memory",
    "## Reconnect storm",
    "## Bytes on the wire",
    "## What `appendfsync always` costs",
    "## Several relay processes on one port (`--workers`)",
)


@pytest.mark.slow
def test_quick_mode_runs_and_writes_its_report(tmp_path: Path) -> None:
    argv = [
        sys.executable,
        "-m",
        "benchmarks",
        "--quick",
        "--out",
        str(tmp_path),
        "--workers",
        "1",
        "--duration",
        "0.5",
        "--subscribers",
        "3",
        "--many-shoots",
        "2",
        "--many-clients",
        "3",
        "--storm-clients",
        "6",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    report = (tmp_path / "quick.md").read_text()
    for heading in HEADINGS:
        assert heading in report
    assert "fast-shoot bench --quick" in report
    report_json = json.loads((tmp_path / "quick.json").read_text())
    results = report_json["results"]
    names = {goal["name"] for goal in report_json["goals"]}
    assert "Clients back in sync after a relay restart" in names
    assert "Memory per idle connection (RSS growth / connections)" in names
    assert "Bytes per subscriber for a one-arrow update" in names
    for goal in report_json["goals"]:
        assert set(goal) >= {"name", "target", "measured", "unit", "verdict"}
    assert results["fanout"][0]["relay"]["delivered"] > 0
    assert results["fanout"][0]["baseline"]["delivered"] > 0
    assert results["storm"]["synced"] == results["storm"]["clients"]
    assert set(results["durability"]["median_us"]) == {"always", "everysec"}
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "quick-latency.png").stat().st_size > 0
        assert (tmp_path / "quick-cpu.png").stat().st_size > 0


def test_goals_carry_target_measurement_and_verdict() -> None:
    """The JSON goals say met or missed by how much, from the numbers of the run."""
    from benchmarks.report import goals

    results = {
        "wire": {"per_subscriber_ws_bytes": 150, "update_ws_bytes": 120, "notice_ws_bytes": 30},
        "many": {
            "relay": {"connections": 10_000},
            "target_connections": 10_000,
            "bytes_per_connection": 40 * 1024,
            "baseline_bytes_per_connection": 20 * 1024,
        },
    }
    by_name = {goal["name"]: goal for goal in goals(results)}
    wire = by_name["Bytes per subscriber for a one-arrow update"]
    assert (wire["measured"], wire["unit"], wire["verdict"]) == (150.0, "B", "met")
    memory = by_name["Memory per idle connection (RSS growth / connections)"]
    assert memory["measured"] == 40.0
    assert memory["verdict"] == "missed (1.33x the goal)"
    assert by_name["Concurrent connections in one relay process"]["verdict"] == "met"
