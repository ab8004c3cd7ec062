"""A follower's leaderboard: the owner's board, built from the replica without archeryutils
on the event loop.

A follower (:mod:`relay.follower`) holds a replica of the document, not the owner's
:class:`~relay.standings.Standings`, so it builds the board itself when an HTTP read asks
for it. It builds it the way the owner does, from the projection tables only
(:class:`sync.live_board.LiveBoard` with :func:`sync.classification.peek_projection`), so
both boards are the same; what the tables lack (a root find, a classification table:
milliseconds of numpy) is filled on a worker thread by a :class:`~relay.projector.Projector`
and the reads wait for it, so a read never gets a board that lacks a projection the owner
has, and archeryutils never runs on the event loop.

The board is built once per change of the replica and kept until the next one, so
spectators polling a follower cost a dictionary lookup between updates. Everything here
runs on the follower's task (the projector's callback too), so it needs no locking.
"""

from __future__ import annotations

from sync.document import ShootDocument
from sync.live_board import LiveBoard
from sync.models import Shoot

from .callbacks import weakly
from .messages import Read, ShootView
from .projector import Projector

__all__ = ["FollowerBoard"]


class FollowerBoard:
    """Answers :class:`~relay.messages.Read` for a follower's replica.

    Args:
        shoot: The shoot, for the views.
        doc: The follower's replica; :meth:`changed` must be called after it changed.
    """

    def __init__(self, shoot: Shoot, doc: ShootDocument) -> None:
        self._shoot = shoot
        self._doc = doc
        self._live: LiveBoard | None = None
        self.waiting: list[Read] = []
        """Reads waiting for the projector (handed to the new owner on a takeover)."""
        self.projector = Projector(weakly(self._filled))  # see relay.callbacks
        """Fills the projection tables off the event loop; runs beside the follower."""

    def changed(self) -> None:
        """The replica changed: the board is built again at the next read."""
        self._live = None

    def read(self, read: Read) -> None:
        """Answer now if the tables have every projection, else once they are filled."""
        self.waiting.append(read)
        self._answer()

    def take(self) -> list[Read]:
        """The reads still waiting (the follower stops or hands over)."""
        taken, self.waiting = self.waiting, []
        return taken

    def _filled(self) -> None:
        if self._live is not None:
            self._live.refresh(list(self._live.needs))
        self._answer()

    def _answer(self) -> None:
        if not self.waiting:
            return
        if self._live is None:
            self._live = LiveBoard(self._doc.registers().values())
        if self._live.needs:
            self.projector.request(self._live.needs.values())
            return
        view = ShootView(self._shoot, self._live.board, self._doc.registers())
        for read in self.take():
            read.reply.set(view)
