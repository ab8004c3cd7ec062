"""The ``fast-shoot`` command: one entry point, a subcommand per job.

``serve`` runs the relay; the others are a small client built on the SDK:

* ``create`` a shoot (prints the code, the join link and a QR code);
* ``join CODE`` as an archer (the identity and its secret token are saved in the state
  folder, ``~/.fast-shoot`` or ``$FAST_SHOOT_HOME``);
* ``score 9 9 7 7 5 M`` one end, online or not (it waits in the outbox until the relay
  has it);
* ``sync`` the outbox; ``watch CODE`` the live leaderboard.

Everything a user can get wrong ends with one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final, TextIO

__all__ = ["main"]

DEFAULT_RELAY: Final = "http://127.0.0.1:8080"
#: Seconds ``score`` and ``sync`` wait for the relay before leaving writes pending.
DEFAULT_WAIT_S: Final = 5.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fast-shoot", description="Live leaderboards for archers."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "serve",
        help="run the relay (HOST, PORT, REDIS_URL... from the environment; see the README)",
    )
    commands.add_parser(
        "bench", add_help=False, help="run the benchmarks (see `fast-shoot bench --help`)"
    )
    relay_help = f"the relay's URL (default: $FAST_SHOOT_RELAY or {DEFAULT_RELAY})"

    create = commands.add_parser("create", help="create a shoot and show its join code")
    create.add_argument("--title", default="", help="the shoot's title")
    create.add_argument("--tz", default="UTC", help="your IANA time zone, e.g. Europe/London")
    create.add_argument("--creator", default="Organiser", help="your name")
    create.add_argument("--relay", help=relay_help)

    join = commands.add_parser("join", help="join a shoot as an archer on this device")
    join.add_argument("code", help="the shoot's 4-digit code")
    join.add_argument("--name", help="your name as the leaderboard shows it")
    join.add_argument("--round", default="national", help="round code name, e.g. national")
    join.add_argument("--bowstyle", default="recurve")
    join.add_argument("--age-group", default="adult")
    join.add_argument("--gender", default="open")
    join.add_argument("--archer-id", help="add this device to an archer who has joined")
    join.add_argument("--token", help="that archer's write token (with --archer-id)")
    join.add_argument("--relay", help=relay_help)

    score = commands.add_parser("score", help="score one end, e.g. `score 9 9 7 7 5 M`")
    score.add_argument("arrows", nargs="+", help="arrow values: numbers, X, M")
    score.add_argument("--wait", type=float, default=DEFAULT_WAIT_S, help="seconds to wait")

    sync = commands.add_parser("sync", help="send the writes still waiting in the outbox")
    sync.add_argument("--wait", type=float, default=DEFAULT_WAIT_S, help="seconds to wait")

    watch = commands.add_parser("watch", help="the live leaderboard in the terminal")
    watch.add_argument("code", help="the shoot's 4-digit code")
    watch.add_argument("--relay", help=relay_help)
    watch.add_argument("--once", action="store_true", help="print the board once and exit")
    watch.add_argument("--wait", type=float, default=10.0, help="seconds to wait to connect")
    return parser


def state_home() -> Path:
    """The folder keeping this device's identity and outbox."""
    return Path(os.environ.get("FAST_SHOOT_HOME") or Path.home() / ".fast-shoot")


def relay_url(args: argparse.Namespace) -> str:
    return str(args.relay or os.environ.get("FAST_SHOOT_RELAY") or DEFAULT_RELAY)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # its own options: handed over whole
        from benchmarks.cli import main as bench  # loaded only when benchmarking

        return bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "serve":
        from relay.server import run  # the relay's dependencies load only when serving

        run()
        return 0
    return _run_client_command(args)


def _run_client_command(args: argparse.Namespace) -> int:
    import trio

    from . import _commands
    from ._errors import ShootError

    commands: dict[str, Callable[[argparse.Namespace, TextIO], Awaitable[int]]] = {
        "create": _commands.create,
        "join": _commands.join,
        "score": _commands.score,
        "sync": _commands.sync,
        "watch": _commands.watch,
    }
    command = commands[args.command]
    try:
        return trio.run(command, args, sys.stdout)
    except ShootError as exc:
        print(f"fast-shoot: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
