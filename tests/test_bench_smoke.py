"""``fast-shoot bench`` runs end to end with tiny sizes and writes its report.

Speed is never asserted here (the machine is shared and noisy): only that every scenario
runs, against the real relay and the floor reference, and that the report has its
sections and every goal with its target, measurement and verdict.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.goals import ACTOR_WRITE_GOAL, CPU_GOAL, P99_GOAL, RAMP_GOAL, WRITE_GOAL, goals

HEADINGS = (
    "## Goals",
    "## Fan-out latency",
    "## CPU per write",
    "## Write-rate ramp",
    "## Many shoots at once",
    "## Connections and memory",
    "## Sessions coming and going",
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
        "--churn-clients",
        "4",
        "--churn-rounds",
        "3",
        "--ramp-subscribers",
        "3",
        "--ramp-rates",
        "6,12",
        "--ramp-step",
        "0.5",
        "--ramp-refs",
        "floor",
        "--write-cost-rate",
        "10",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    report = (tmp_path / "quick.md").read_text()
    for heading in HEADINGS:
        assert heading in report
    assert "fast-shoot bench --quick" in report
    assert "- Waking: this machine charges a thread" in report
    report_json = json.loads((tmp_path / "quick.json").read_text())
    results = report_json["results"]
    # A probe that never slept would report the fraction of a microsecond a poll costs.
    assert report_json["info"]["machine"]["wake_us"] > 1
    names = {goal["name"] for goal in report_json["goals"]}
    assert names >= {CPU_GOAL, P99_GOAL, WRITE_GOAL, ACTOR_WRITE_GOAL, RAMP_GOAL}
    assert "Clients back in sync after a relay restart" in names
    assert "Memory per idle connection (RSS growth / connections)" in names
    assert "Bytes per subscriber for a one-arrow update" in names
    for goal in report_json["goals"]:
        assert set(goal) >= {"name", "target", "measured", "unit", "verdict"}
        assert goal["name"] in report
    by_name = {goal["name"]: goal for goal in report_json["goals"]}
    # Measured against the floor of the same run, at the only size run here.
    assert by_name[CPU_GOAL]["measured"] is not None
    assert "at 3 subscribers" in by_name[CPU_GOAL]["verdict"]
    assert by_name[WRITE_GOAL]["measured"] is not None
    assert results["fanout"][0]["relay"]["delivered"] > 0
    assert results["fanout"][0]["floor"]["delivered"] > 0
    assert results["write_cost"]["writes"] > 0
    assert results["write_cost"]["floor"]["writes"] > 0  # the same writer, on the floor
    assert "the floor, sending each write back" in by_name[WRITE_GOAL]["detail"]
    assert by_name[ACTOR_WRITE_GOAL]["measured"] > 0
    assert {"relay", "floor"} <= set(results["ramp"])
    assert results["ramp"]["relay"]["steps"][0]["writes"] > 0
    assert results["storm"]["synced"] == results["storm"]["clients"]
    rounds = results["churn"]["rounds"]
    assert [row["sessions"] for row in rounds] == [4, 8, 12]  # every round's sessions connected
    assert all(row["frozen_objects"] > 0 for row in rounds)  # the relay's collector, read
    assert set(results["durability"]["median_us"]) == {"always", "everysec"}
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "quick-latency.png").stat().st_size > 0
        assert (tmp_path / "quick-cpu.png").stat().st_size > 0


def test_goals_carry_target_measurement_and_verdict() -> None:
    """The JSON goals say met or missed by how much, from the numbers of the run."""
    results = {
        "fanout": [
            {
                "subscribers": 100,
                "relay": {"cpu_us_per_msg": 30.0, "p99_ms": 5.0, "p50_ms": 2.0},
                "floor": {"cpu_us_per_msg": 10.0, "p99_ms": 4.0, "p50_ms": 2.0},
            }
        ],
        "write_cost": {
            "cpu_ms_per_write": 0.25,
            "cpu_ms_per_write_raw": 0.3,
            "idle_cpu_per_s": 0.01,
            "writes": 500,
            "rate": 50.0,
            "archers": 20,
            "arrows_each": 72,
        },
        "ramp": {
            "subscribers": 50,
            "p99_limit_ms": 50.0,
            "rates": [500.0, 1000.0, 2000.0],
            "relay": {"held_writes_per_s": 0.0, "stopped": "at 500 writes/s: p99 80 ms"},
        },
        "wire": {"per_subscriber_ws_bytes": 150, "update_ws_bytes": 120, "notice_ws_bytes": 30},
        "many": {
            "relay": {"connections": 10_000},
            "target_connections": 10_000,
            "bytes_per_connection": 40 * 1024,
            "reference_bytes_per_connection": {"floor": 10 * 1024},
        },
    }
    by_name = {goal["name"]: goal for goal in goals(results)}
    cpu = by_name[CPU_GOAL]
    assert (cpu["measured"], cpu["unit"]) == (3.0, "x")
    assert cpu["verdict"] == "missed (1.50x the goal)"
    assert by_name[P99_GOAL]["measured"] == 1.25
    assert by_name[P99_GOAL]["verdict"] == "met"
    assert by_name[WRITE_GOAL]["verdict"] == "met"
    assert by_name[RAMP_GOAL]["verdict"] == "missed (nothing held)"
    wire = by_name["Bytes per subscriber for a one-arrow update"]
    assert (wire["measured"], wire["unit"], wire["verdict"]) == (150.0, "B", "met")
    memory = by_name["Memory per idle connection (RSS growth / connections)"]
    assert memory["measured"] == 40.0
    assert memory["verdict"] == "missed (1.33x the goal)"
    assert by_name["Concurrent connections in one relay process"]["verdict"] == "met"


def _scaling_row(processes: int, delivered_per_s: float, cpu_util: float, busy: float) -> dict:
    duration = 10.0
    return {
        "processes": processes,
        "shoots": 50,
        "rate": 1.0,
        "writes_per_s": 50.0 if processes == 1 else 20.0,
        "failed": 0,
        "delivered": delivered_per_s * duration,
        "delivered_per_s": delivered_per_s,
        "delivered_ratio": 0.6,
        "cpu_s": cpu_util * duration,
        "cpu_util": cpu_util,
        "load_cpu_util": 0.8,
        "machine_cpu_util": busy,
        "machine_cores": 2,
        "msgs_per_cpu_s": delivered_per_s / cpu_util,
    }


def test_scaling_goals_tell_the_machine_limit_from_the_relay() -> None:
    """Throughput that could not grow on a saturated machine is reported as that, beside
    the messages per relay CPU-second, which say what the second process cost."""
    from benchmarks.scaling import scaling_goals

    rows = [_scaling_row(1, 10_000, 1.0, 1.95), _scaling_row(2, 11_000, 1.2, 1.98)]
    results = {
        "scaling": {
            "rows": rows,
            "speedup": 1.1,
            "efficiency": (11_000 / 1.2) / 10_000,
            "clients_per_shoot": 10,
        }
    }
    throughput, per_cpu = scaling_goals(results)
    assert throughput["measured"] == 1.1
    assert throughput["verdict"].startswith("missed (1.64x the goal)")
    assert "at 50 shoots (goal is for 1,000)" in throughput["verdict"]
    assert "the machine's cores were busy" in throughput["verdict"]
    assert "generator 0.80" in throughput["detail"]
    assert "with 2 processes the generator sent 20 of 50 writes/s" in throughput["verdict"]
    assert "with 1 process the generator" not in throughput["verdict"]
    assert per_cpu["target"].startswith(">= 0.9x")
    assert per_cpu["verdict"].startswith("met")
    assert "cores were busy" not in per_cpu["verdict"]
