"""The ``fast-shoot`` command: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fast-shoot", description="Live leaderboards for archers."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "serve",
        help="run the relay (HOST, PORT, REDIS_URL... from the environment; see the README)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "serve":
        from relay.server import run  # the relay's dependencies load only when serving

        run()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
