"""A live shoot's leaderboard and notices, kept per write for the shoot's actor.

The actor owns the document; this is the part of it that follows the scores. After each
applied write, :meth:`Standings.wrote` updates the board for the one register that
changed (:class:`sync.live_board.LiveBoard`), decides the notices from the rounds that
moved (:func:`sync.notifications.next_notices`), and returns the document update that
remembers them and their frames; the actor persists and fans out the update and holds the
frames until it is durable. Handicaps and classifications come from tables only: what
they lack goes to the :class:`~relay.projector.Projector` (a worker thread), and
:meth:`Standings.filled` is how its answer comes back: the derived values that were
waiting, as a document update, and the board lines redone.

Everything here runs on the actor's task, between messages (the projector's callback
too), so it needs no locking.
"""

from __future__ import annotations

from collections.abc import Callable

from sync.classification import is_warm
from sync.codec import encode
from sync.document import ShootDocument
from sync.leaderboard import Leaderboard
from sync.live_board import LiveBoard
from sync.notifications import Notice as Notification
from sync.notifications import NotifierState, assume_announced, next_notices
from sync.protocol import Notice
from sync.register import Register

from .projector import Projector

__all__ = ["Standings"]


class Standings:
    """One shoot's board, notifier memory and projection filler.

    Args:
        doc: The shoot's document as loaded (the actor's; this reads its registers and
            writes the notifier's memory and the derived values into it).
        on_filled: Called (between messages) once projections have been filled; the
            actor answers by calling :meth:`filled`.
    """

    def __init__(self, doc: ShootDocument, on_filled: Callable[[], None]) -> None:
        self._doc = doc
        self._live = LiveBoard(doc.registers().values())
        self.projector = Projector(on_filled)
        """Fills the projection tables off the event loop; runs beside the actor."""
        self._notifier = assume_announced(
            NotifierState.from_doc(doc.notices_memory()), self._live.board
        )
        self._ask()

    @property
    def board(self) -> Leaderboard:
        return self._live.board

    def wrote(self, register: Register) -> tuple[bytes, list[tuple[bytes, Notification]]]:
        """The document applied ``register`` (a write that won): update the board and
        decide the notices.

        Returns:
            The document update remembering the notices (empty if nothing changed), and
            each notice with its frame, which must wait until that update is durable.
        """
        before = self._live.board
        rounds = self._live.put(register)
        self._ask()
        if not is_warm(register.state):
            self.projector.warm(register.state)
        notifier, notices = next_notices(self._notifier, before, self._live.board, rounds)
        memory = b""
        if notifier != self._notifier:
            memory = self._doc.remember_notices(notifier.doc_changes(self._notifier))
        self._notifier = notifier
        frames = [
            (
                encode(
                    Notice(
                        kind=notice.kind,
                        round=notice.round,
                        archer=notice.archer_id,
                        text=notice.text,
                        position=notice.position,
                        of=notice.of,
                        change=notice.change,
                        ends=notice.ends,
                    )
                ),
                notice,
            )
            for notice in notices
        ]
        return memory, frames

    def filled(self) -> bytes:
        """The projector filled what was asked: write the derived values that were waiting
        and redo the board lines that lacked a projection (notices depend on positions
        and totals only, which a projection never moves). Asks again for whatever is
        still missing. Returns the document update, empty if none."""
        update = self._doc.rederive()
        self._live.refresh(list(self._live.needs))
        self._ask()
        return update

    def _ask(self) -> None:
        self.projector.request([*self._doc.underived.values(), *self._live.needs.values()])
