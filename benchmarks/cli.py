"""``fast-shoot bench``: run the benchmarks and write the report.

Quick mode (the default) takes about a minute; ``--full`` runs the sizes the goals
are stated for (10 to 500 subscribers, the write-rate ramp to 2,000 writes/s, 1,000
shoots x 10 clients, 16,000 sessions coming and going, a 5,000-client reconnect storm,
every reference server) and takes several minutes. Every size can be overridden, which
is how the smoke test runs it in seconds. Everything runs on 127.0.0.1, bounded in count and time.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import trio

from .churn import churn
from .limits import raise_fd_limit
from .logs import KEPT_BECAUSE, failed_servers, keep_logs
from .progress import Progress
from .references import REFERENCES
from .report import machine, write_report
from .scaling import PROCESSES, measure_scaling
from .scenarios import Bench, Config

__all__ = ["build_parser", "main"]

SCENARIOS = (
    "fanout",
    "throughput",
    "writecost",
    "ramp",
    "many",
    "wire",
    "durability",
    "scaling",
    "churn",
    "storm",
)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(",") if part)


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part for part in text.split(",") if part)
    unknown = set(names) - set(REFERENCES)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown reference {', '.join(sorted(unknown))}; known: {', '.join(REFERENCES)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fast-shoot bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="the quick preset (default)")
    mode.add_argument("--full", action="store_true", help="the full preset")
    parser.add_argument(
        "--out",
        type=Path,
        help="where the report goes (default: a new temporary folder, so a run never changes"
        " the committed reference results in benchmarks/results/)",
    )
    parser.add_argument("--name", help="report file name prefix (default: the mode)")
    parser.add_argument(
        "--only", help=f"comma-separated scenarios to run, of: {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--workers", type=int, help="load worker processes (default 2)")
    parser.add_argument("--duration", type=float, help="seconds of writing per measurement")
    parser.add_argument("--subscribers", type=_ints, help="fan-out sizes, e.g. 10,50,100,200")
    parser.add_argument("--shoot-rate", type=float, help="writes/s in one shoot (default 20)")
    parser.add_argument("--throughput-rate", type=float, help="writes/s offered (0 skips)")
    parser.add_argument("--many-shoots", type=int, help="shoots in the many-shoots run")
    parser.add_argument("--many-clients", type=int, help="clients per shoot there")
    parser.add_argument("--many-rate", type=float, help="writes/s per shoot there")
    parser.add_argument(
        "--scaling-rate", type=float, help="writes/s per shoot in the scaling run (default 1)"
    )
    parser.add_argument("--churn-clients", type=int, help="sessions per round in the churn run")
    parser.add_argument(
        "--churn-rounds", type=int, help="rounds of sessions in the churn run (0 skips it)"
    )
    parser.add_argument("--storm-clients", type=int, help="clients in the reconnect storm")
    parser.add_argument(
        "--refs",
        type=_names,
        help=f"reference servers beside the relay, of: {', '.join(REFERENCES)} (quick: floor;"
        " full: all three; '' for none)",
    )
    parser.add_argument("--write-cost-rate", type=float, help="writes/s in the CPU-per-write run")
    parser.add_argument("--ramp-subscribers", type=int, help="connections in the ramp's shoot")
    parser.add_argument("--ramp-rates", type=_floats, help="the ramp's steps, writes/s")
    parser.add_argument("--ramp-step", type=float, help="seconds per ramp step")
    parser.add_argument(
        "--ramp-refs", type=_names, help="references that climb the ramp too (full: floor)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the servers with py-spy during each load window into this folder",
    )
    return parser


def config_from(args: argparse.Namespace) -> Config:
    config = Config.full() if args.full else Config.quick()
    overrides: dict[str, Any] = {
        "workers": args.workers,
        "duration_s": args.duration,
        "subscribers": args.subscribers,
        "shoot_rate": args.shoot_rate,
        "throughput_rate": args.throughput_rate,
        "many_shoots": args.many_shoots,
        "many_clients": args.many_clients,
        "many_rate": args.many_rate,
        "scaling_rate": args.scaling_rate,
        "churn_clients": args.churn_clients,
        "churn_rounds": args.churn_rounds,
        "storm_clients": args.storm_clients,
        "profile_dir": args.profile,
        "references": args.refs,
        "write_cost_rate": args.write_cost_rate,
        "ramp_subscribers": args.ramp_subscribers,
        "ramp_rates": args.ramp_rates,
        "ramp_step_s": args.ramp_step,
        "ramp_references": args.ramp_refs,
    }
    changes = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(config, **changes)


async def _run(bench: Bench, scenarios: Sequence[str]) -> None:
    steps: dict[str, Callable[[], Awaitable[None]]] = {
        "fanout": bench.fanout,
        "throughput": bench.throughput,
        "writecost": bench.write_cost,
        "ramp": bench.ramp,
        "many": bench.many_shoots,
        "wire": bench.wire_bytes,
        "durability": bench.durability,
        "scaling": partial(measure_scaling, bench),  # relays of its own, on the same Redis
        "churn": partial(churn, bench),
        "storm": bench.storm,  # last: it restarts the relay
    }
    for name in SCENARIOS:
        if name in scenarios:
            try:
                await steps[name]()
            except Exception as exc:  # one scenario's failure must not lose the others
                bench.errors.append(f"Scenario {name} failed: {exc!r}")


def _steps(config: Config, scenarios: Sequence[str]) -> int:
    per_load = 1 + len(config.references)
    count = 0
    if "fanout" in scenarios:
        count += per_load * len(config.subscribers)
    if "throughput" in scenarios and config.throughput_rate > 0:
        count += per_load
    if "many" in scenarios:
        count += 1 + len(set(config.many_references) & set(config.references))
    if "ramp" in scenarios:
        count += 1 + len(config.ramp_references)
    count += len(PROCESSES) * 2 if "scaling" in scenarios else 0  # a start and a load each
    return (
        count
        + ("writecost" in scenarios) * (1 + ("floor" in config.references))
        + ("wire" in scenarios)
        + ("durability" in scenarios)
        + ("storm" in scenarios)
        + ("churn" in scenarios and config.churn_rounds > 0) * (1 + config.churn_rounds)
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    config = config_from(args)
    scenarios = tuple(args.only.split(",")) if args.only else SCENARIOS
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        print(f"fast-shoot bench: unknown scenario {', '.join(sorted(unknown))}", file=sys.stderr)
        return 1
    _soft, hard = raise_fd_limit()
    mode = "full" if args.full else "quick"
    notes = []
    if hard < 2 * config.many_shoots * config.many_clients:
        notes.append(f"The open-file hard limit ({hard}) is below what the many-shoots run needs.")
    started = time.monotonic()
    progress = Progress(_steps(config, scenarios))
    out = args.out or Path(tempfile.mkdtemp(prefix=f"fast-shoot-bench-{mode}-"))
    with tempfile.TemporaryDirectory(prefix="fast-shoot-bench-") as tmp:
        bench = Bench(config, Path(tmp), progress)
        try:
            bench.start()
            trio.run(_run, bench, scenarios)
        finally:
            bench.stop()
            progress.close()
            kept = keep_logs(Path(tmp), out, bench.errors, failed_servers(bench.results))
            if kept:
                notes.append(f"The servers' logs are kept in {kept}: {KEPT_BECAUSE}.")
    info = {
        "mode": args.name or mode,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["fast-shoot", "bench", *argv]),
        "machine": machine(),
        "workers": config.workers,
        "config": dataclasses.asdict(config),
        "seconds": time.monotonic() - started,
        "notes": notes + bench.notes + bench.errors,
    }
    path = write_report(bench.results, info, out)
    print(f"report: {path}")
    for error in bench.errors:
        print(f"fast-shoot bench: {error}", file=sys.stderr)
    return 1 if bench.errors else 0
