"""``fast-shoot watch CODE``: the live leaderboard in the terminal (see :mod:`clients.cli`).

On a terminal the board is redrawn in place on every change, fitted to the terminal's
width each time (a resized window redraws right). While the relay is unreachable the
board stays up with a status line saying so and how long ago the last update came; it
is redrawn every second so that age stays true. With ``--once`` it prints one board and
exits.

On a terminal the notices under the board are the ones still true (:class:`RecentNotices`);
into a file or a pipe each board is appended with only the notices that arrived since the
one before (a log repeating them under every board reads as if the relay had sent them
again).
"""

from __future__ import annotations

import argparse
import shutil
from typing import Final, TextIO

import trio

from ._client import ShootClient
from ._connect import connect
from ._errors import RelayUnreachable, ShootError
from ._events import ConnectionState, Event, NoticeReceived
from ._options import ClientOptions
from ._render import CLEAR_SCREEN, DEFAULT_WIDTH, RecentNotices, render_leaderboard
from .cli import relay_url

__all__ = ["watch"]

#: Most notice lines shown under the live leaderboard ("Chris has taken the lead!").
WATCH_NOTICES: Final = 5
#: How often the status line's "last update ... ago" is refreshed during an outage.
OUTAGE_REDRAW_S: Final = 1.0


def _ago(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def status_line(client: ShootClient, offline_s: float | None) -> str:
    """Empty while connected; otherwise what is wrong, and how old the board shown is.

    Args:
        offline_s: Seconds since the connection was lost: the board is current up to then.
    """
    if client.state is ConnectionState.CONNECTED or offline_s is None:
        return ""
    reason = client.error.message if client.error else ""
    return (
        f"Offline: last update {_ago(offline_s)} ago; reconnecting to {client.relay_url}. {reason}"
    ).rstrip()


def _state(client: ShootClient) -> ConnectionState:
    """The client's state, read afresh (a plain attribute read lets mypy narrow it for good)."""
    return client.state


def _width(out: TextIO) -> int:
    if out.isatty():
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    return DEFAULT_WIDTH


async def watch(args: argparse.Namespace, out: TextIO) -> int:
    url = relay_url(args)
    options = ClientOptions(connect_timeout_s=max(0.5, args.wait))
    notices = RecentNotices(WATCH_NOTICES)
    async with connect(url, args.code, options=options) as client:
        with trio.move_on_after(max(0.0, args.wait)):
            await client.wait_connected()
        if client.state is not ConnectionState.CONNECTED:
            raise client.error or RelayUnreachable(
                "unreachable", f"Cannot reach the relay at {url}."
            )
        in_place = out.isatty()
        offline_since: float | None = None  # when the connection was lost
        arrived: list[str] = []  # notices since the last board (for a file or pipe)
        while True:
            now = trio.current_time()
            if _state(client) is ConnectionState.CONNECTED:
                offline_since = None
            elif offline_since is None:
                offline_since = now
            shoot = client.shoot
            title = f"{shoot.title or 'Shoot'} · code {shoot.code}" if shoot else args.code
            leaderboard = client.leaderboard
            board = render_leaderboard(
                leaderboard,
                title,
                notices.texts(leaderboard) if in_place else arrived,
                status=status_line(client, None if offline_since is None else now - offline_since),
                term_width=_width(out),
            )
            print((CLEAR_SCREEN if in_place else "") + board, file=out, end="", flush=True)
            arrived = []
            if args.once:
                return 0
            if _state(client) is ConnectionState.CLOSED:
                raise client.error or ShootError("closed", "The connection ended.")
            event: Event | None = None
            if _state(client) is ConnectionState.CONNECTED:
                event = await client.events.get()
            else:
                with trio.move_on_after(OUTAGE_REDRAW_S):
                    event = await client.events.get()
            while event is not None:  # redraw once for a burst of changes
                if isinstance(event, NoticeReceived):
                    notices.add(event.notice)
                    arrived.append(event.notice.text)
                event = client.events.get_nowait()
