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

Where the directory goes: in the temp folder (``TMPDIR``), unless a socket in it would
not fit a Unix socket's path (:data:`MAX_SOCKET_PATH_BYTES`: 107 bytes on Linux, 103 on
macOS; a family's directory and a socket's name add 54 characters to the temp folder's).
A long ``TMPDIR`` (a test runner's, a sandbox's, a per-user one on macOS) then used to
crash every worker binding its socket, and the supervisor restarted them forever. The
directory then goes in the first short, shared temp folder of :data:`FALLBACK_BASES`
instead (``/tmp``): still made by :func:`tempfile.mkdtemp` (0700, a name nobody can
predict), and still locked and swept as above, so privacy and clean-up are the same as
in the temp folder; a supervisor says so once, at INFO. The choice depends on the temp
folder alone, so the next supervisor with the same ``TMPDIR`` looks in the same place
for a killed one's directory (and sweeps the temp folder too). Only when no such place
exists does the supervisor refuse to start, with one line naming ``TMPDIR`` and the
limit. Serving without the sockets is not an option: every connection would be served by
whichever worker the kernel picked, so every shoot would be handled twice, silently.

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
import sys
import tempfile
from collections.abc import Sequence
from typing import Final

from .siblings import socket_path
from .startup import StartupError

__all__ = [
    "FALLBACK_BASES",
    "LOCK_NAME",
    "MAX_SOCKET_PATH_BYTES",
    "PREFIX",
    "SiblingDir",
    "choose_base_dir",
    "longest_socket_path",
    "open_sibling_dir",
    "prepare_sibling_dir",
    "sweep_stale_sibling_dirs",
]

log = logging.getLogger(__name__)

#: What every family's directory is named after (then :func:`tempfile.mkdtemp`'s suffix).
PREFIX: Final = "fast-shoot-workers-"
#: The file whose lock the family holds while any of its processes runs.
LOCK_NAME: Final = "family.lock"
_NEW_LOCK_NAME: Final = "family.lock.new"
#: Exactly the names :func:`tempfile.mkdtemp` gives with :data:`PREFIX`.
_NAME: Final = re.compile(re.escape(PREFIX) + r"[a-z0-9_]{8}")
#: The longest path a Unix socket binds to: ``sun_path`` holds 108 bytes on Linux and
#: 104 on macOS and the BSDs, the terminating NUL included.
MAX_SOCKET_PATH_BYTES: Final = 107 if sys.platform.startswith("linux") else 103
#: Where a family's directory goes when the temp folder's path is too long, in order:
#: short temp folders every user may write in (sticky, so nobody else can move or
#: replace what is made there).
FALLBACK_BASES: Final = ("/tmp", "/var/tmp")


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


def longest_socket_path(base: str) -> int:
    """How many bytes the path of a worker's socket takes in a family's directory made
    in ``base`` (every socket's name has the same length)."""
    family = os.path.join(base, PREFIX + "_" * 8)
    return len(os.fsencode(socket_path(family, "any instance")))


def choose_base_dir(temp_dir: str | None = None, fallbacks: Sequence[str] | None = None) -> str:
    """Where a family's directory goes: ``temp_dir`` (the temp folder by default) if its
    sockets' paths fit, else the first of ``fallbacks`` (:data:`FALLBACK_BASES` by
    default) whose do and that is a private enough place (see :func:`_shared_safely`).

    Raises:
        StartupError: neither fits; the message names ``TMPDIR`` and the limit.
    """
    temp_dir = temp_dir or tempfile.gettempdir()
    if longest_socket_path(temp_dir) <= MAX_SOCKET_PATH_BYTES:
        return temp_dir
    fallbacks = FALLBACK_BASES if fallbacks is None else fallbacks
    for base in fallbacks:
        if longest_socket_path(base) <= MAX_SOCKET_PATH_BYTES and _shared_safely(base):
            return base
    room = MAX_SOCKET_PATH_BYTES - (longest_socket_path(temp_dir) - len(os.fsencode(temp_dir)))
    raise StartupError(
        f"TMPDIR {temp_dir} is too long for the workers' Unix sockets (a socket's path "
        f"would be {longest_socket_path(temp_dir)} bytes, the limit is "
        f"{MAX_SOCKET_PATH_BYTES}) and none of {', '.join(fallbacks)} can be used "
        f"instead: set TMPDIR to a directory of at most {room} bytes."
    )


def _shared_safely(base: str) -> bool:
    """Whether ``base`` is a directory this user may make directories in where nobody
    else can move or replace them: owned by root or this user, and sticky if others may
    write in it (as ``/tmp`` is). A symlink is followed, as the temp folder's would be."""
    try:
        info = os.stat(base)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (0, os.getuid()):
        return False
    shared = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if shared and not info.st_mode & stat.S_ISVTX:
        return False
    return os.access(base, os.W_OK | os.X_OK)


def prepare_sibling_dir(
    temp_dir: str | None = None, fallbacks: Sequence[str] | None = None
) -> SiblingDir:
    """What a supervisor does before its first worker starts: choose where its family's
    directory goes (:func:`choose_base_dir`), sweep the directories killed families left
    there and in the temp folder, and make its own (blocking: run it on a thread).

    Raises:
        StartupError: no place fits the sockets, or the chosen one cannot be written.
    """
    temp_dir = temp_dir or tempfile.gettempdir()
    base = choose_base_dir(temp_dir, fallbacks)
    sweep_stale_sibling_dirs(temp_dir)
    if base != temp_dir:
        sweep_stale_sibling_dirs(base)
    try:
        family = open_sibling_dir(base)
    except OSError as exc:
        raise StartupError(
            f"Cannot make the workers' socket directory in {base}: {exc.strerror}."
        ) from exc
    if base != temp_dir:
        log.info(
            "TMPDIR %s is too long for the workers' Unix sockets (%d bytes, at most %d): "
            "their private directory is %s instead",
            temp_dir,
            longest_socket_path(temp_dir),
            MAX_SOCKET_PATH_BYTES,
            family.path,
        )
    return family


def open_sibling_dir(base: str | None = None) -> SiblingDir:
    """Make a private (0700) directory in ``base`` (the temp folder by default), with
    its lock held.

    Raises:
        OSError: ``base`` cannot be written.
    """
    path = tempfile.mkdtemp(prefix=PREFIX, dir=base)
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
