"""``fast-shoot create``, ``join`` and ``rounds``: setting a shoot up (see :mod:`clients.cli`).

Each takes the parsed arguments and the stream to print to, returns the exit status, and
raises :class:`~clients.ShootError` (or the CLI's own error) for anything the user can get
wrong; the CLI turns that into one line on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
from typing import TextIO
from zoneinfo import ZoneInfo

import trio

from sync.errors import InvalidState
from sync.rounds import RoundInfo, find_rounds, resolve_round, round_suggestions

from ._cells import pad, plural, width
from ._cli_state import save_identity
from ._errors import InvalidScore, NotJoined
from ._http import ShootInfo, add_device, create_shoot, join_shoot
from .cli import relay_url, state_home

__all__ = ["create", "describe_expiry", "join", "rounds"]


def describe_expiry(shoot: ShootInfo, now: dt.datetime | None = None) -> str:
    """``Open until 2026-11-28 00:00 Europe/London, in 5 h 12 min.``: when the relay ends it.

    Said in the creator's zone, since that is whose day the shoot lasts.
    """
    zone = ZoneInfo(shoot.time_zone)
    ends = dt.datetime.fromtimestamp(shoot.expires_ms / 1000, tz=zone)
    now = now or dt.datetime.now(tz=zone)
    minutes = max(0, int((ends - now).total_seconds() // 60))
    return (
        f"Open until {ends:%Y-%m-%d %H:%M} {shoot.time_zone}, "
        f"in {minutes // 60} h {minutes % 60:02d} min."
    )


async def create(args: argparse.Namespace, out: TextIO) -> int:
    shoot = await create_shoot(
        relay_url(args), creator=args.creator, title=args.title, time_zone=args.tz
    )
    if args.json:
        json.dump(shoot.to_json(), out, indent=2)
        print(file=out)
        return 0
    import qrcode  # only here: drawing the QR code is the one thing that needs it

    print(f"Shoot code: {shoot.code}", file=out)
    print(f"Join: {shoot.join_url}", file=out)
    print(f"Watch: {shoot.viewer_url}", file=out)
    print(describe_expiry(shoot), file=out)
    qr = qrcode.QRCode(border=2)
    qr.add_data(shoot.join_url)
    qr.make(fit=True)
    qr.print_ascii(out=out)
    return 0


def _round(text: str) -> RoundInfo:
    try:
        return resolve_round(text)
    except InvalidState as exc:
        raise InvalidScore(exc.code, exc.message) from exc


async def join(args: argparse.Namespace, out: TextIO) -> int:
    url = relay_url(args)
    if args.archer_id or args.token:
        if not (args.archer_id and args.token):
            raise NotJoined("invalid_field", "--archer-id and --token go together.")
        identity = await add_device(url, args.code, archer_id=args.archer_id, token=args.token)
        described = f"archer {identity.archer_id}"
    else:
        info = _round(args.round)
        identity = await join_shoot(
            url,
            args.code,
            name=args.name,
            round=info.codename,
            bowstyle=args.bowstyle,
            age_group=args.age_group,
            gender=args.gender,
        )
        described = (
            f"{args.name.strip()} (archer {identity.archer_id}), shooting a {info.name}: "
            f"{plural(info.total_arrows, 'arrow')} in {plural(info.total_ends, 'end')} "
            f"of {info.end_size}"
        )
    path = await trio.to_thread.run_sync(save_identity, state_home(), identity)
    print(f"Joined shoot {identity.code} as {described}.", file=out)
    print(f"Saved in {path}; score with `fast-shoot score 9 9 7 7 5 M`.", file=out)
    print(
        f"To score on another device: fast-shoot join {identity.code} "
        f"--archer-id {identity.archer_id} --token {identity.token}",
        file=out,
    )
    return 0


async def rounds(args: argparse.Namespace, out: TextIO) -> int:
    """List the rounds matching the search (all without one), in the catalogues' order."""
    found = await trio.to_thread.run_sync(find_rounds, args.search)
    if not found:
        suggestions = round_suggestions(args.search)
        hint = (
            " Did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
            if suggestions
            else " Run `fast-shoot rounds` for the whole list."
        )
        raise InvalidScore("unknown_round", f"No round matches {args.search!r}.{hint}")
    code_width = max(width("Code"), *(width(r.codename) for r in found))
    name_width = max(width("Round"), *(width(r.name) for r in found))
    if out.isatty():  # long names are cut rather than wrapped on a narrow terminal
        columns = shutil.get_terminal_size().columns
        name_width = max(12, min(name_width, columns - code_width - len("    Arrows  Ends")))
    print(f"{pad('Code', code_width)}  {pad('Round', name_width)}  Arrows  Ends", file=out)
    for info in found:
        print(
            f"{pad(info.codename, code_width)}  {pad(info.name, name_width)}  "
            f"{info.total_arrows:>6}  {info.total_ends:>4}",
            file=out,
        )
    return 0
