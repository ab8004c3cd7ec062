"""The client subcommands of ``fast-shoot`` (see :mod:`clients.cli`), one coroutine each.

Each takes the parsed arguments and the stream to print to, returns the exit status,
and raises :class:`~clients.ShootError` for anything the user can get wrong; the CLI
turns that into one line on stderr.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

import qrcode
import trio

from sync.models import summarize

from ._client import ClientOptions, ShootClient, connect
from ._errors import NotJoined, RelayUnreachable, ShootError
from ._events import ConnectionState, Event, NoticeReceived
from ._http import add_device, create_shoot, join_shoot
from ._identity import Identity
from ._outbox import write_atomically
from ._render import CLEAR_SCREEN, RecentNotices, render_leaderboard
from .cli import relay_url, state_home

__all__ = ["create", "join", "score", "sync", "watch"]

#: Most notice lines shown under the live leaderboard ("Chris has taken the lead!").
WATCH_NOTICES = 5

IDENTITY_FILE = "identity.json"


def outbox_path(home: Path, identity: Identity) -> Path:
    return home / f"outbox-{identity.code}-{identity.archer_id}.json"


def load_identity(home: Path) -> Identity:
    path = home / IDENTITY_FILE
    try:
        return Identity.from_json(json.loads(path.read_text("utf-8")))
    except FileNotFoundError:
        raise NotJoined(
            "not_joined", "This device has not joined a shoot; run `fast-shoot join CODE` first."
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NotJoined("not_joined", f"The identity file {path} cannot be read ({exc}).") from exc


def save_identity(home: Path, identity: Identity) -> Path:
    path = home / IDENTITY_FILE
    write_atomically(path, json.dumps(identity.to_json(), indent=2).encode("utf-8"))
    path.chmod(0o600)  # it holds the write token
    return path


async def create(args: argparse.Namespace, out: TextIO) -> int:
    shoot = await create_shoot(
        relay_url(args), creator=args.creator, title=args.title, time_zone=args.tz
    )
    print(f"Shoot code: {shoot.code}", file=out)
    print(f"Join: {shoot.join_url}", file=out)
    print(f"Watch: {shoot.viewer_url}", file=out)
    qr = qrcode.QRCode(border=2)
    qr.add_data(shoot.join_url)
    qr.make(fit=True)
    qr.print_ascii(out=out)
    return 0


async def join(args: argparse.Namespace, out: TextIO) -> int:
    url = relay_url(args)
    if args.archer_id or args.token:
        if not (args.archer_id and args.token):
            raise NotJoined("invalid_field", "--archer-id and --token go together.")
        identity = await add_device(url, args.code, archer_id=args.archer_id, token=args.token)
    else:
        if not args.name:
            raise NotJoined("invalid_field", "Give your name with --name.")
        identity = await join_shoot(
            url,
            args.code,
            name=args.name,
            round=args.round,
            bowstyle=args.bowstyle,
            age_group=args.age_group,
            gender=args.gender,
        )
    path = await trio.to_thread.run_sync(save_identity, state_home(), identity)
    print(f"Joined shoot {identity.code} as archer {identity.archer_id}.", file=out)
    print(f"Saved in {path}; score with `fast-shoot score 9 9 7 7 5 M`.", file=out)
    print(
        f"To score on another device: fast-shoot join {identity.code} "
        f"--archer-id {identity.archer_id} --token {identity.token}",
        file=out,
    )
    return 0


async def _open_archer() -> tuple[Identity, Path]:
    home = state_home()
    identity = await trio.to_thread.run_sync(load_identity, home)
    return identity, outbox_path(home, identity)


async def _wait_for(client: ShootClient, wait_s: float, synced: bool) -> bool:
    """Wait (bounded) for the relay; fatal refusals (unknown, expired...) raise."""
    with trio.move_on_after(wait_s):
        await (client.wait_synced() if synced else client.wait_connected())
        return True
    if client.state is ConnectionState.CLOSED and client.error is not None:
        raise client.error
    return False


def _pending_note(client: ShootClient) -> str:
    count = len(client.pending)
    reason = client.error.message if client.error else "The relay has not answered yet."
    return (
        f"Pending: {count} write{'s' if count != 1 else ''} saved on this device, "
        f"not yet on the relay. {reason} Run `fast-shoot sync` to send it later."
    )


async def score(args: argparse.Namespace, out: TextIO) -> int:
    identity, path = await _open_archer()
    options = ClientOptions(connect_timeout_s=max(0.5, args.wait))
    async with connect(
        identity.relay_url, identity.code, identity=identity, outbox_path=path, options=options
    ) as client:
        # Build on the relay's newest state when it is reachable; offline, on what this
        # device last saw.
        await _wait_for(client, args.wait, synced=False)
        register = await client.score_end(args.arrows)
        summary = summarize(register.state)
        end = ", ".join(str(a) for a in args.arrows)
        print(
            f"End {max(1, summary.ends_completed)} scored: {end}. "
            f"Total {summary.total} after {summary.arrows_shot} arrows.",
            file=out,
        )
        if await _wait_for(client, args.wait, synced=True):
            print("Synced with the relay.", file=out)
        else:
            print(_pending_note(client), file=out)
    return 0


async def sync(args: argparse.Namespace, out: TextIO) -> int:
    identity, path = await _open_archer()
    options = ClientOptions(connect_timeout_s=max(0.5, args.wait))
    async with connect(
        identity.relay_url, identity.code, identity=identity, outbox_path=path, options=options
    ) as client:
        if await _wait_for(client, args.wait, synced=True):
            print("Synced: nothing pending.", file=out)
            return 0
        count = len(client.pending)
        raise RelayUnreachable(
            "unreachable",
            f"Cannot reach the relay at {identity.relay_url}; "
            f"{count} write{'s' if count != 1 else ''} still pending on this device.",
        )


async def watch(args: argparse.Namespace, out: TextIO) -> int:
    """The live board. On a terminal it is redrawn in place with the notices still true
    under it; into a file or a pipe each board is appended with only the notices that
    arrived since the one before (a log repeating them under every board reads as if the
    relay had sent them again)."""
    url = relay_url(args)
    options = ClientOptions(connect_timeout_s=max(0.5, args.wait))
    notices = RecentNotices(WATCH_NOTICES)
    async with connect(url, args.code, options=options) as client:
        if not await _wait_for(client, args.wait, synced=False):
            raise client.error or RelayUnreachable(
                "unreachable", f"Cannot reach the relay at {url}."
            )
        in_place = out.isatty()
        arrived: list[str] = []
        while True:
            shoot = client.shoot
            title = f"{shoot.title or 'Shoot'} {shoot.code}" if shoot else args.code
            if client.state is not ConnectionState.CONNECTED:
                title += f"  [{client.state.value}]"
            leaderboard = client.leaderboard
            shown = notices.texts(leaderboard) if in_place else arrived
            board = render_leaderboard(leaderboard, title, shown)
            print((CLEAR_SCREEN if in_place else "") + board, file=out, end="", flush=True)
            arrived = []
            if args.once:
                return 0
            if client.state is ConnectionState.CLOSED:
                raise client.error or ShootError("closed", "The connection ended.")
            event: Event | None = await client.events.get()
            while event is not None:  # redraw once for a burst of changes
                if isinstance(event, NoticeReceived):
                    notices.add(event.notice)
                    arrived.append(event.notice.text)
                event = client.events.get_nowait()
