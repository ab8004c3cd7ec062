"""The ``fast-shoot`` command: one entry point, a subcommand per job.

``serve`` runs the relay; the others are a small client built on the SDK:

* ``create`` a shoot (prints the code, the links, the expiry and a QR code);
* ``join CODE`` as an archer (the identity and its secret token are saved in the state
  folder, ``~/.fast-shoot`` or ``$FAST_SHOOT_HOME``);
* ``score 9 9 7 7 5 M`` one end, online or not (it waits in the outbox until the relay
  has it); ``undo``, ``round``, ``finish``, ``leave`` the rest of an archer's sheet;
* ``sync`` the outbox (a write another device's newer one replaced is said in words;
  ``restore`` writes it again); ``watch CODE`` the live leaderboard; ``rounds`` the round
  names.

Everything a user can get wrong ends with one line on stderr: exit status 2 for a
command line argparse refuses, 1 for everything else.

Start-up time matters (every call of the command pays it): this module imports only the
standard library and the light :mod:`sync.models`; each command imports what it needs
when it runs, so ``--help`` never loads Trio, httpx, pycrdt or numpy.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import Final, NoReturn, TextIO
from urllib.parse import urlsplit, urlunsplit

from sync.models import AGE_GROUPS, BOWSTYLES, GENDERS

from ._localzone import local_time_zone

__all__ = ["CliError", "main"]

DEFAULT_RELAY: Final = "http://127.0.0.1:8080"
#: Seconds ``score`` and the other writing commands wait for the relay, in all.
DEFAULT_WAIT_S: Final = 5.0
#: Exit status after a broken pipe (128 + SIGPIPE), as a shell reports it.
EXIT_BROKEN_PIPE: Final = 141

#: Which module and coroutine runs each client command (imported only when it runs).
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "create": ("clients._cmd_shoot", "create"),
    "join": ("clients._cmd_shoot", "join"),
    "rounds": ("clients._cmd_shoot", "rounds"),
    "score": ("clients._cmd_archer", "score"),
    "undo": ("clients._cmd_archer", "undo"),
    "round": ("clients._cmd_archer", "change_round"),
    "finish": ("clients._cmd_archer", "finish"),
    "leave": ("clients._cmd_archer", "leave"),
    "sync": ("clients._cmd_archer", "sync"),
    "restore": ("clients._cmd_archer", "restore"),
    "watch": ("clients._cmd_watch", "watch"),
}


class CliError(Exception):
    """A mistake on the command line found before any command runs (one line, status 1)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors are one line on stderr like every other failure."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"fast-shoot: {message} (see `{self.prog} --help`)\n")


def _count(text: str) -> int:
    """A whole number of at least 1 (``--workers``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def _choices(values: frozenset[str]) -> list[str]:
    return sorted(values)


def _add_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_S,
        metavar="SECONDS",
        help="how long to wait for the relay in all (default: %(default)s); "
        "what it has not received by then stays in this device's outbox",
    )


def _add_relay(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--relay",
        metavar="URL",
        help=f"the relay, e.g. http://127.0.0.1:8080 (default: $FAST_SHOOT_RELAY or {DEFAULT_RELAY})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fast-shoot", description="Live leaderboards for archers.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the relay (HOST, PORT, REDIS_URL... from the environment; see the README)",
        description="Run the relay. It is configured by environment variables: HOST, PORT, "
        "REDIS_URL, FAST_SHOOT_DATA_DIR, PUBLIC_URL... (see the README).",
    )
    serve.add_argument(
        "--workers",
        type=_count,
        metavar="N",
        help="relay processes sharing the port, one per core (default: $WEB_CONCURRENCY or 1)",
    )
    commands.add_parser(
        "bench", add_help=False, help="run the benchmarks (see `fast-shoot bench --help`)"
    )

    zone = local_time_zone()
    create = commands.add_parser("create", help="create a shoot and show its join code")
    create.add_argument("--creator", metavar="NAME", help="your name (asked for when not given)")
    create.add_argument("--title", default="", help="the shoot's title (default: none)")
    create.add_argument(
        "--json",
        action="store_true",
        help="print the shoot as JSON (code, links, expires_ms...) for scripts",
    )
    create.add_argument(
        "--tz",
        metavar="ZONE",
        help="your IANA time zone, e.g. Europe/London; the shoot ends with your day there "
        f"(default: this machine's, {zone or 'unknown here, so --tz is needed'})",
    )
    _add_relay(create)

    join = commands.add_parser("join", help="join a shoot as an archer on this device")
    join.add_argument("code", help="the shoot's 4-digit code")
    join.add_argument(
        "--name", help="your name as the leaderboard shows it (asked for when not given)"
    )
    join.add_argument(
        "--round",
        help="the round you shoot: its code name or name, any case, e.g. national or "
        "'WA 1440 (70m)' (asked for when not given; `fast-shoot rounds` lists them)",
    )
    join.add_argument(
        "--bowstyle",
        choices=_choices(BOWSTYLES),
        default="recurve",
        metavar="BOWSTYLE",
        help="one of %(choices)s (default: %(default)s)",
    )
    join.add_argument(
        "--age-group",
        choices=_choices(AGE_GROUPS),
        default="adult",
        metavar="AGE_GROUP",
        help="Archery GB age group, one of %(choices)s (default: %(default)s)",
    )
    join.add_argument(
        "--gender",
        choices=_choices(GENDERS),
        default="open",
        metavar="GENDER",
        help="Archery GB 2023 class, one of %(choices)s (default: %(default)s)",
    )
    join.add_argument("--archer-id", help="add this device to an archer who has joined")
    join.add_argument("--token", help="that archer's write token (with --archer-id)")
    _add_relay(join)

    score = commands.add_parser("score", help="score one end, e.g. `score 9 9 7 7 5 M`")
    score.add_argument("arrows", nargs="+", metavar="ARROW", help="arrow values: numbers, X, M")
    _add_wait(score)

    undo = commands.add_parser("undo", help="take back the last arrow scored")
    _add_wait(undo)

    change = commands.add_parser("round", help="change the round you shoot")
    change.add_argument("round", help="the new round's code name or name (any case)")
    change.add_argument(
        "--fresh",
        action="store_true",
        help="start the new round with no arrows (default: keep the arrows shot)",
    )
    _add_wait(change)

    finish = commands.add_parser("finish", help="mark your score sheet final")
    finish.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _add_wait(finish)

    leave = commands.add_parser("leave", help="leave the shoot (you leave the leaderboard)")
    leave.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _add_wait(leave)

    sync = commands.add_parser("sync", help="send the writes still waiting in the outbox")
    _add_wait(sync)

    restore = commands.add_parser(
        "restore", help="write again this device's version that another device's replaced"
    )
    _add_wait(restore)

    rounds = commands.add_parser("rounds", help="list the rounds, or search their names")
    rounds.add_argument(
        "search", nargs="?", default="", help="part of a round's name or code name (any case)"
    )

    watch = commands.add_parser("watch", help="the live leaderboard in the terminal")
    watch.add_argument("code", help="the shoot's 4-digit code")
    _add_relay(watch)
    watch.add_argument("--once", action="store_true", help="print the board once and exit")
    watch.add_argument(
        "--wait",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait to connect (default: %(default)s)",
    )
    return parser


def state_home() -> Path:
    """The folder keeping this device's identity and outbox."""
    return Path(os.environ.get("FAST_SHOOT_HOME") or Path.home() / ".fast-shoot")


def normalize_relay_url(text: str) -> str:
    """The relay's origin from what a person typed: ``127.0.0.1:8080`` means http.

    Raises:
        CliError: a scheme other than http(s), or no host.
    """
    raw = text.strip()
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in ("http", "https"):
        raise CliError(
            f"The relay URL {text!r} must start with http:// or https:// "
            f"(or be host:port, e.g. 127.0.0.1:8080)."
        )
    try:
        parts.port  # noqa: B018 (checks the port is a number in range)
    except ValueError:
        raise CliError(f"The relay URL {text!r} has a bad port number.") from None
    if not parts.hostname:
        raise CliError(f"The relay URL {text!r} has no host, e.g. 127.0.0.1:8080.")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def relay_url(args: argparse.Namespace) -> str:
    return normalize_relay_url(
        str(args.relay or os.environ.get("FAST_SHOOT_RELAY") or DEFAULT_RELAY)
    )


def _ask(question: str, missing: str) -> str:
    """Ask on an interactive terminal; elsewhere (scripts, pipes) say which option is missing."""
    if not sys.stdin.isatty():
        raise CliError(missing)
    answer = input(question).strip()
    if not answer:
        raise CliError(missing)
    return answer


def confirm(question: str, flag: str) -> None:
    """Ask yes/no on a terminal; elsewhere require ``flag`` (irreversible actions)."""
    if not sys.stdin.isatty():
        raise CliError(f"This cannot be undone; add {flag} to confirm.")
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise CliError("Nothing changed.")


def _complete(args: argparse.Namespace) -> None:
    """Fill in what has no sensible default, asking for it on a terminal."""
    if args.command == "create":
        if not args.creator:
            args.creator = _ask(
                "Your name (the shoot's creator): ", "Give your name with --creator."
            )
        if not args.tz:
            args.tz = local_time_zone()
            if args.tz is None:
                raise CliError(
                    "This machine's time zone is unknown; give yours with --tz, "
                    "e.g. --tz Europe/London."
                )
    elif args.command == "join" and not (args.archer_id or args.token):
        if not args.name:
            args.name = _ask("Your name on the leaderboard: ", "Give your name with --name.")
        if not args.round:
            args.round = _ask(
                "Your round (e.g. national; `fast-shoot rounds` lists them): ",
                "Give your round with --round, e.g. --round national "
                "(`fast-shoot rounds` lists them).",
            )
    elif args.command in ("finish", "leave") and not args.yes:
        what = {"finish": "Mark your score sheet final", "leave": "Leave the shoot"}
        confirm(f"{what[args.command]}? It cannot be undone.", "--yes")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; the exit status is returned, every failure is one line on stderr."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:
        # The reader went away (`fast-shoot rounds | head`): stop quietly, as Unix tools
        # do. Point stdout at /dev/null so the interpreter's final flush cannot fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return 130
    except SystemExit as exc:  # argparse: --help (0) or a command line it refuses (2)
        return exc.code if isinstance(exc.code, int) else 1
    except (CliError, EOFError) as exc:
        message = str(exc) or "No answer given."
        print(f"fast-shoot: {message}", file=sys.stderr)
        return 1


def _main(argv: list[str]) -> int:
    if argv[:1] == ["bench"]:  # its own options: handed over whole
        from benchmarks.cli import main as bench  # loaded only when benchmarking

        return bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "serve":
        return _serve(args.workers)
    _complete(args)
    return _run_client_command(args)


def _serve(workers: int | None) -> int:
    # The relay's dependencies load only when serving.
    import dataclasses

    from relay.config import ConfigError, Settings
    from relay.startup import StartupError, listen_early

    try:
        settings = Settings.from_env()
        if workers is not None:
            settings = dataclasses.replace(settings, workers=workers)
        # Listening before the relay's code loads: clients coming back to a restarted
        # relay wait in the kernel's queue meanwhile instead of being refused.
        listener = listen_early(settings)
        from relay.server import run

        run(settings, listener=listener)
    except (ConfigError, StartupError) as exc:
        print(f"fast-shoot: {exc}", file=sys.stderr)
        return 1
    return 0


def _run_client_command(args: argparse.Namespace) -> int:
    import trio

    from ._errors import ShootError

    module, name = COMMANDS[args.command]
    command: Callable[[argparse.Namespace, TextIO], Awaitable[int]] = getattr(
        import_module(module), name
    )
    try:
        return trio.run(command, args, sys.stdout)
    except ShootError as exc:
        print(f"fast-shoot: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
