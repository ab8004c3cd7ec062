"""The private directory of a ``--workers`` family's sockets, and sweeping the ones left
behind by families that are gone.

The problem: the supervisor (:mod:`relay.workers`) makes a 0700 directory in the temp
folder where its workers listen for each other's handoffs (:mod:`relay.siblings`), and
removes it when it stops. A supervisor that never reaches its ``finally`` (``kill -9``,
the OOM killer, a power cut) leaves the directory behind, one per crash, forever.

The design: a lock, not a pid. Each directory holds a lock file, ``family.lock``, that
the supervisor locks (``flock``, exclusive) before the first worker starts, and every
worker inherits that open file, so the lock is held for as long as *any* process of the
family runs: the kernel drops it when the last of them exits, however it exits. A
supervisor starting up sweeps its user's directories of this name whose lock it can take
(:func:`sweep_stale_sibling_dirs`): a lock that can be taken has no living holder, so the
directory is stale. This is immune to pid reuse (a pid written in the directory, or in
its name, could name an unrelated process started since, or a live supervisor's pid
could be mistaken for a dead one across a container's pid namespace), needs no ``/proc``
start times, and works wherever ``flock`` does. Counting the workers too means that
workers still stopping after their supervisor was killed (they get SIGTERM and take up
to the shutdown budget) keep their directory until they are gone; it is swept at the next
start after that.

No window in which a live family's directory looks stale: the lock file is created under
a temporary name, locked, and only then renamed to ``family.lock``, so a sweeper sees
either no lock file (left alone) or a locked one. A sweeper removes a directory while
holding its lock, so two supervisors sweeping at once never both act on one directory.

What is never touched: anything in the temp folder but a real directory (not a symlink,
never followed) named exactly ``fast-shoot-workers-`` plus :func:`tempfile.mkdtemp`'s
eight characters, owned by this user, holding a ``family.lock`` regular file. A directory
without a lock file (being created right now, or left by a version before this one) is
left alone: its absence proves nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import stat
import tempfile
from typing import Final

__all__ = ["LOCK_NAME", "PREFIX", "SiblingDir", "open_sibling_dir", "sweep_stale_sibling_dirs"]

log = logging.getLogger(__name__)

#: What every family's directory is named after (then :func:`tempfile.mkdtemp`'s suffix).
PREFIX: Final = "fast-shoot-workers-"
#: The file whose lock the family holds while any of its processes runs.
LOCK_NAME: Final = "family.lock"
_NEW_LOCK_NAME: Final = "family.lock.new"
#: Exactly the names :func:`tempfile.mkdtemp` gives with :data:`PREFIX`.
_NAME: Final = re.compile(re.escape(PREFIX) + r"[a-z0-9_]{8}")


class SiblingDir:
    """A family's directory, with the descriptor that holds its lock.

    Args:
        path: The directory.
        lock_fd: The open, locked ``family.lock``; the workers inherit it
            (``pass_fds``) so the lock lasts as long as the family does.
    """

    def __init__(self, path: str, lock_fd: int) -> None:
        self.path = path
        self.lock_fd = lock_fd

    def remove(self) -> None:
        """Remove the directory (still locked, so no sweeper acts on it meanwhile), then
        let go of the lock. The workers must have stopped."""
        try:
            shutil.rmtree(self.path, ignore_errors=True)
        finally:
            os.close(self.lock_fd)


def open_sibling_dir() -> SiblingDir:
    """Make a private (0700) directory in the temp folder, with its lock held.

    Raises:
        OSError: the temp folder cannot be written.
    """
    path = tempfile.mkdtemp(prefix=PREFIX)
    try:
        new = os.path.join(path, _NEW_LOCK_NAME)
        fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except BaseException:
        os.rmdir(path)
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else has it
        os.rename(new, os.path.join(path, LOCK_NAME))  # only now can a sweeper see it
    except BaseException:
        os.close(fd)
        shutil.rmtree(path, ignore_errors=True)
        raise
    return SiblingDir(path, fd)


def sweep_stale_sibling_dirs(temp_dir: str | None = None) -> list[str]:
    """Remove this user's family directories in ``temp_dir`` (the temp folder by default)
    whose lock nobody holds: their supervisor and workers are all gone.

    Best effort: a directory that cannot be examined or removed is left, with a warning,
    and never stops the caller. Returns the names removed.
    """
    temp_dir = temp_dir or tempfile.gettempdir()
    removed: list[str] = []
    try:
        parent = os.open(temp_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        log.warning("cannot look for stale worker directories in %s: %s", temp_dir, exc)
        return removed
    try:
        for name in sorted(os.listdir(parent)):
            if not _NAME.fullmatch(name):
                continue
            try:
                if _sweep_one(parent, name):
                    removed.append(name)
            except (OSError, NotImplementedError) as exc:  # rmtree needs dir_fd support
                log.warning("cannot sweep the stale worker directory %s: %s", name, exc)
    finally:
        os.close(parent)
    if removed:
        log.info(
            "removed %d socket directories of worker families that are gone: %s",
            len(removed),
            ", ".join(removed),
        )
    return removed


def _sweep_one(parent: int, name: str) -> bool:
    """Remove ``name`` (in the directory ``parent``) if it is one of this user's family
    directories and its lock can be taken; whether it was removed."""
    info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return False  # a symlink, a file, someone else's
    try:
        directory = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except FileNotFoundError:
        return False  # its supervisor stopped and removed it meanwhile
    try:
        opened = os.fstat(directory)
        if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            return False  # replaced since it was looked at
        try:
            lock = os.open(LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=directory)
        except OSError:  # none (being created now, or an older version's), or a symlink
            return False
    finally:
        os.close(directory)
    try:
        if not stat.S_ISREG(os.fstat(lock).st_mode):
            return False
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a process of that family still runs
        # Still the lock file of that directory (not one a sweeper that held it removed)?
        try:
            linked = os.stat(os.path.join(name, LOCK_NAME), dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return False  # that sweeper removed the directory
        locked = os.fstat(lock)
        if (linked.st_dev, linked.st_ino) != (locked.st_dev, locked.st_ino):
            return False
        # Removed while locked: a second sweeper cannot take it until it is gone.
        shutil.rmtree(name, dir_fd=parent)
        return True
    finally:
        with contextlib.suppress(OSError):
            os.close(lock)
