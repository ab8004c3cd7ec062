"""Sweeping the socket directories of ``--workers`` families that are gone
(relay.sibling_dir), on a real temp folder of the test's own, with real locks held by
this process or by a real child process.

A directory is stale when its lock can be taken: the tests "kill" a family by closing
the lock's descriptor without removing the directory, as the kernel does for a process
that is killed.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import trio

from relay.server import wait_exit
from relay.sibling_dir import LOCK_NAME, PREFIX, open_sibling_dir, sweep_stale_sibling_dirs


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp folder :func:`open_sibling_dir` uses, for this test alone."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def _killed_family() -> Path:
    """A family directory as a killed supervisor leaves it: a socket, nobody's lock."""
    family = open_sibling_dir()
    (Path(family.path) / "0123456789abcdef0123.sock").touch()
    os.close(family.lock_fd)
    return Path(family.path)


def test_a_new_directory_is_private_and_locked(temp_dir: Path) -> None:
    family = open_sibling_dir()
    try:
        path = Path(family.path)
        assert path.parent == temp_dir
        assert path.name.startswith(PREFIX)
        assert path.stat().st_mode & 0o777 == 0o700
        assert sorted(p.name for p in path.iterdir()) == [LOCK_NAME]
        with open(path / LOCK_NAME) as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        family.remove()
    assert not path.exists()


def test_a_dead_familys_directory_is_swept_and_a_live_ones_is_not(temp_dir: Path) -> None:
    dead = _killed_family()
    live = open_sibling_dir()
    try:
        assert sweep_stale_sibling_dirs() == [dead.name]
        assert not dead.exists()
        assert sorted(p.name for p in Path(live.path).iterdir()) == [LOCK_NAME]
        assert sweep_stale_sibling_dirs() == []  # and again: nothing more to do
    finally:
        live.remove()


async def test_a_directory_is_kept_while_a_worker_of_the_family_runs(temp_dir: Path) -> None:
    """The workers inherit the lock: a directory whose supervisor was killed while a
    worker still runs (stopping, or orphaned) is not pulled from under that worker."""
    family = open_sibling_dir()
    worker = subprocess.Popen(  # a stand-in worker: holds the lock until its stdin ends
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        pass_fds=(family.lock_fd,),
    )
    assert worker.stdin is not None
    try:
        os.close(family.lock_fd)  # the supervisor is killed
        assert sweep_stale_sibling_dirs() == []
        assert Path(family.path).is_dir()
        worker.stdin.close()
        with trio.fail_after(30):
            await wait_exit(worker)
        assert sweep_stale_sibling_dirs() == [Path(family.path).name]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_nothing_but_this_users_family_directories_is_touched(temp_dir: Path) -> None:
    dead = _killed_family()
    suffix = dead.name.removeprefix(PREFIX)
    # Names that are not exactly mkdtemp's (eight of its characters after the prefix).
    for name in [f"{PREFIX}{suffix}x", f"{PREFIX}{suffix[:7]}", f"{PREFIX}ABCDEFGH", "other"]:
        (temp_dir / name).mkdir()
        (temp_dir / name / LOCK_NAME).touch()
    (temp_dir / f"{PREFIX}file0000").write_text("a file, not a directory")
    # A symlink named like a family, to a stale family's directory: neither is touched.
    target = temp_dir / "elsewhere"
    target.mkdir()
    (target / LOCK_NAME).touch()
    (temp_dir / f"{PREFIX}link0000").symlink_to(target)
    # A family directory whose lock file is a symlink (to a lock nobody holds).
    (temp_dir / f"{PREFIX}lnklock0").mkdir()
    (temp_dir / f"{PREFIX}lnklock0" / LOCK_NAME).symlink_to(target / LOCK_NAME)
    # No lock file: being created right now, or an older version's; its absence proves
    # nothing.
    (temp_dir / f"{PREFIX}nolock00").mkdir()
    before = sorted(p.name for p in temp_dir.iterdir())

    assert sweep_stale_sibling_dirs() == [dead.name]
    assert sorted(p.name for p in temp_dir.iterdir()) == [n for n in before if n != dead.name]
    assert (target / LOCK_NAME).is_file()


@pytest.mark.skipif(os.getuid() != 0, reason="making a directory of another user takes root")
def test_another_users_stale_directory_is_left_alone(temp_dir: Path) -> None:
    theirs = _killed_family()
    os.chown(theirs, 12345, 12345)
    assert sweep_stale_sibling_dirs() == []
    assert theirs.is_dir()


def test_a_temp_folder_that_cannot_be_read_stops_nothing(tmp_path: Path) -> None:
    assert sweep_stale_sibling_dirs(str(tmp_path / "missing")) == []
