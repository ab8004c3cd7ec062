"""The archer's commands: ``score``, ``undo``, ``round``, ``finish``, ``leave``, ``sync``,
``restore``.

Each one connects as the archer saved by ``join``, makes its change in the outbox (on disk)
and waits for the relay, all within ``--wait`` seconds: first to build on the relay's
newest state, then for the acknowledgement. It says what it is waiting for when the
relay does not answer at once, and a write it could not deliver stays in the outbox for
``sync`` (or the next command) to send; the change is made on this device either way.

Whenever one of them syncs, a write of this device's that a newer one from another device
replaced is said in words and kept (:mod:`clients._replaced`); ``restore`` writes it again.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Final, TextIO

import trio

from sync.errors import InvalidState
from sync.models import ArcherState, summarize
from sync.register import Register
from sync.rounds import get_round, resolve_round

from ._cells import plural
from ._cli_state import load_identity, outbox_path
from ._client import ShootClient
from ._connect import connect
from ._errors import InvalidScore, RelayUnreachable
from ._events import ConnectionState, WriteSuperseded
from ._identity import Identity
from ._options import ClientOptions
from ._replaced import describe_replaced, load_replaced, replaced_path, save_replaced
from .cli import normalize_relay_url, state_home

__all__ = ["change_round", "finish", "leave", "restore", "score", "sync", "undo"]

#: A relay that answers within this long is not worth a "waiting" line.
QUIET_WAIT_S: Final = 0.5


async def _open_archer() -> tuple[Identity, Path]:
    home = state_home()
    identity = await trio.to_thread.run_sync(load_identity, home)
    # Identities saved before relay URLs were normalized may lack the scheme.
    identity = replace(identity, relay_url=normalize_relay_url(identity.relay_url))
    return identity, outbox_path(home, identity)


async def _wait(client: ShootClient, deadline: float, *, synced: bool, out: TextIO) -> bool:
    """Wait until connected (or synced) or the deadline; fatal refusals raise.

    Says what it waits for once the relay has not answered within :data:`QUIET_WAIT_S`.
    """

    async def reached() -> None:
        await (client.wait_synced() if synced else client.wait_connected())

    with trio.move_on_at(min(deadline, trio.current_time() + QUIET_WAIT_S)):
        await reached()
        return True
    remaining = deadline - trio.current_time()
    if remaining > 0:
        what = (
            f"to take {plural(len(client.pending), 'write')}"
            if synced
            else "for this archer's newest state"
        )
        print(
            f"Waiting up to {remaining:.1f} s for the relay at {client.relay_url} {what}...",
            file=out,
            flush=True,
        )
        with trio.move_on_at(deadline):
            await reached()
            return True
    if client.state is ConnectionState.CLOSED and client.error is not None:
        raise client.error
    return False


async def _report_replaced(client: ShootClient, out: TextIO) -> None:
    """Say which of this device's writes another device's newer write replaced, and keep
    the newest replaced state for ``restore``. Reads the client's events (nothing else in
    the archer's commands does)."""
    home = state_home()
    while (event := client.events.get_nowait()) is not None:
        if not isinstance(event, WriteSuperseded) or client.identity is None:
            continue
        for line in describe_replaced(event.lost.state, event.winner.state):
            print(line, file=out)
        path = replaced_path(home, client.identity)
        await trio.to_thread.run_sync(save_replaced, path, event.lost)


def _pending_note(client: ShootClient) -> str:
    count = len(client.pending)
    reason = client.error.message if client.error else "The relay has not answered yet."
    return (
        f"Pending: {plural(count, 'write')} saved on this device, "
        f"not yet on the relay. {reason} Run `fast-shoot sync` to send it later."
    )


def _totals(state: ArcherState) -> str:
    summary = summarize(state)
    return f"Total {summary.total} after {plural(summary.arrows_shot, 'arrow')}."


async def _change(
    args: argparse.Namespace,
    out: TextIO,
    write: Callable[[ShootClient], Awaitable[tuple[Register, str]]],
) -> int:
    """Connect as this device's archer, make one change, wait for the relay: ``--wait`` in all."""
    identity, path = await _open_archer()
    deadline = trio.current_time() + max(0.0, args.wait)
    options = ClientOptions(connect_timeout_s=max(0.5, args.wait))
    async with connect(
        identity.relay_url, identity.code, identity=identity, outbox_path=path, options=options
    ) as client:
        # Build on the relay's newest state when it is reachable; offline, on what this
        # device last saw.
        await _wait(client, deadline, synced=False, out=out)
        _, described = await write(client)
        print(described, file=out)
        synced = await _wait(client, deadline, synced=True, out=out)
        await _report_replaced(client, out)
        print("Synced with the relay." if synced else _pending_note(client), file=out)
    return 0


def _end_label(state: ArcherState, scored: int) -> str:
    """``End 2`` for arrows 7-12 of a 6-arrow end; ``End 2 (2 of 6 arrows)`` while partial."""
    end_size = get_round(state.round).end_size
    shot = len(state.arrows)
    number = (shot - scored) // end_size + 1
    in_end = (shot - 1) % end_size + 1
    label = f"End {number}"
    if in_end < end_size:
        label += f" ({in_end} of {plural(end_size, 'arrow')})"
    return label


async def score(args: argparse.Namespace, out: TextIO) -> int:
    async def write(client: ShootClient) -> tuple[Register, str]:
        register = await client.score_end(args.arrows)
        arrows = register.state.arrows[-len(args.arrows) :]
        end = ", ".join(str(a) for a in arrows)
        label = _end_label(register.state, len(args.arrows))
        return register, f"{label} scored: {end}. {_totals(register.state)}"

    return await _change(args, out, write)


async def undo(args: argparse.Namespace, out: TextIO) -> int:
    async def write(client: ShootClient) -> tuple[Register, str]:
        before = client.register()
        register = await client.undo()
        taken = before.state.arrows[-1] if before is not None else "?"
        number = len(register.state.arrows) + 1
        return register, f"Took back arrow {number} ({taken}). {_totals(register.state)}"

    return await _change(args, out, write)


async def change_round(args: argparse.Namespace, out: TextIO) -> int:
    try:
        info = resolve_round(args.round)
    except InvalidState as exc:
        raise InvalidScore(exc.code, exc.message) from exc

    async def write(client: ShootClient) -> tuple[Register, str]:
        register = await client.change_round(info.codename, keep_arrows=not args.fresh)
        kept = len(register.state.arrows)
        return register, (
            f"Now shooting a {info.name} ({plural(info.total_arrows, 'arrow')}); "
            f"{plural(kept, 'arrow')} kept. {_totals(register.state)}"
        )

    return await _change(args, out, write)


async def finish(args: argparse.Namespace, out: TextIO) -> int:
    async def write(client: ShootClient) -> tuple[Register, str]:
        register = await client.finish()
        return register, f"Score sheet final. {_totals(register.state)}"

    return await _change(args, out, write)


async def leave(args: argparse.Namespace, out: TextIO) -> int:
    async def write(client: ShootClient) -> tuple[Register, str]:
        register = await client.leave()
        return register, f"Left shoot {client.code}; you are off its leaderboard."

    return await _change(args, out, write)


async def sync(args: argparse.Namespace, out: TextIO) -> int:
    identity, path = await _open_archer()
    deadline = trio.current_time() + max(0.0, args.wait)
    options = ClientOptions(connect_timeout_s=max(0.5, args.wait))
    async with connect(
        identity.relay_url, identity.code, identity=identity, outbox_path=path, options=options
    ) as client:
        synced = await _wait(client, deadline, synced=True, out=out)
        await _report_replaced(client, out)
        if synced:
            print("Synced: nothing pending.", file=out)
            return 0
        raise RelayUnreachable(
            "unreachable",
            f"Cannot reach the relay at {identity.relay_url}; "
            f"{plural(len(client.pending), 'write')} still pending on this device.",
        )


async def restore(args: argparse.Namespace, out: TextIO) -> int:
    """Write the state another device's newer write replaced (kept by the commands that
    sync) again, as this archer's newest state."""
    identity, _ = await _open_archer()
    path = replaced_path(state_home(), identity)
    kept = await trio.to_thread.run_sync(load_replaced, path)
    if kept is None:
        print("Nothing to restore: no write from this device was replaced.", file=out)
        return 0

    async def write(client: ShootClient) -> tuple[Register, str]:
        register = await client.restore(kept.state)
        # The write is in the outbox on disk now: it reaches the relay with any sync.
        await trio.to_thread.run_sync(path.unlink)
        return register, f"Restored this device's version. {_totals(register.state)}"

    return await _change(args, out, write)
