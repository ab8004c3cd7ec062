"""Where the socket directories of ``--workers`` families go, and sweeping those of
families that are gone (relay.sibling_dir), on a real temp folder of the test's own, with real locks held by
this process or by a real child process.

A directory is stale when its lock can be taken: the tests "kill" a family by closing
the lock's descriptor without removing the directory, as the kernel does for a process
that is killed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from relay.metrics import Metrics
from relay.server import wait_exit
from relay.sibling_dir import (
    FALLBACK_BASES,
    LOCK_NAME,
    MAX_SOCKET_PATH_BYTES,
    PREFIX,
    choose_base_dir,
    longest_socket_path,
    open_sibling_dir,
    prepare_sibling_dir,
    sweep_stale_sibling_dirs,
)
from relay.siblings import Siblings
from relay.startup import StartupError


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


# Where the directory goes: the temp folder, or a short one when the temp folder's path
# leaves no room for a socket's.


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory of this test's own, standing in for ``/tmp`` (private: 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="fs-sd-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _of_length(parent: Path, socket_bytes: int) -> Path:
    """A directory in ``parent`` whose family's sockets take exactly ``socket_bytes``."""
    overhead = longest_socket_path(str(parent / "x")) - len(str(parent / "x"))
    directory = parent / ("d" * (socket_bytes - overhead - len(str(parent)) - 1))
    directory.mkdir()
    assert longest_socket_path(str(directory)) == socket_bytes
    return directory


def test_the_limit_is_the_longest_path_a_socket_binds_to(short_dir: Path) -> None:
    fits = _of_length(short_dir, MAX_SOCKET_PATH_BYTES)
    assert choose_base_dir(str(fits), fallbacks=()) == str(fits)
    family = open_sibling_dir(str(fits))
    try:
        listener = Siblings(family.path, "host-1-aaaaaa", Metrics()).listen()
        listener.close()
    finally:
        family.remove()
    too_long = _of_length(short_dir, MAX_SOCKET_PATH_BYTES + 1)
    assert choose_base_dir(str(too_long), fallbacks=[str(fits)]) == str(fits)


def test_a_temp_folder_too_long_for_a_socket_gives_way_to_a_short_one(
    tmp_path: Path, short_dir: Path
) -> None:
    long_dir = tmp_path / ("t" * 60)  # a pytest tmp_path is long already
    long_dir.mkdir()
    shared = short_dir / "shared"  # writable by all, not sticky: anyone could replace it
    shared.mkdir()
    shared.chmod(0o777)
    too_long_too = _of_length(short_dir, MAX_SOCKET_PATH_BYTES + 1)
    fallbacks = [str(short_dir / "missing"), str(shared), str(too_long_too), str(short_dir)]
    assert choose_base_dir(str(long_dir), fallbacks) == str(short_dir)
    shared.chmod(0o1777)  # sticky, as /tmp is: nobody moves what others make there
    assert choose_base_dir(str(long_dir), fallbacks) == str(shared)


def test_no_place_for_the_sockets_is_one_line_naming_tmpdir_and_the_limit(
    tmp_path: Path, short_dir: Path
) -> None:
    long_dir = _of_length(short_dir, MAX_SOCKET_PATH_BYTES + 1)
    with pytest.raises(StartupError) as caught:
        choose_base_dir(str(long_dir), fallbacks=[str(tmp_path / "missing")])
    message = str(caught.value)
    assert "\n" not in message
    assert f"TMPDIR {long_dir} is too long" in message
    assert f"the limit is {MAX_SOCKET_PATH_BYTES}" in message
    assert f"at most {MAX_SOCKET_PATH_BYTES - 54} bytes" in message


def test_the_default_fallback_is_short_and_shared_safely() -> None:
    """Wherever the tests run: ``/tmp`` exists, is sticky, and leaves room for sockets."""
    base = choose_base_dir("/" + "t" * 80)
    assert base in FALLBACK_BASES
    assert os.stat(base).st_mode & 0o1000


def test_a_killed_familys_directory_in_the_short_place_is_swept_by_the_next_one(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same ``TMPDIR`` leads the next supervisor to the same short place, where it
    sweeps what a killed one left; a live family's directory there is kept."""
    long_dir = _of_length(short_dir, MAX_SOCKET_PATH_BYTES + 10)
    fallback = short_dir / "fallback"
    fallback.mkdir()
    caplog.set_level(logging.INFO, logger="relay.sibling_dir")
    killed = prepare_sibling_dir(str(long_dir), [str(fallback)])
    os.close(killed.lock_fd)  # killed: its lock goes, its directory stays
    assert Path(killed.path).parent == fallback
    assert Path(killed.path).stat().st_mode & 0o777 == 0o700
    live = prepare_sibling_dir(str(long_dir), [str(fallback)])
    try:
        assert not Path(killed.path).exists()
        assert sorted(p.name for p in fallback.iterdir()) == [Path(live.path).name]
        assert list(long_dir.iterdir()) == []
        moved = [r.getMessage() for r in caplog.records if "is too long" in r.getMessage()]
        assert moved == [
            f"TMPDIR {long_dir} is too long for the workers' Unix sockets "
            f"({MAX_SOCKET_PATH_BYTES + 10} bytes, at most {MAX_SOCKET_PATH_BYTES}): "
            f"their private directory is {killed.path} instead",
            f"TMPDIR {long_dir} is too long for the workers' Unix sockets "
            f"({MAX_SOCKET_PATH_BYTES + 10} bytes, at most {MAX_SOCKET_PATH_BYTES}): "
            f"their private directory is {live.path} instead",
        ]  # once per supervisor
    finally:
        live.remove()


def test_a_short_temp_folder_is_used_as_it_is(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(short_dir))
    family = prepare_sibling_dir()
    try:
        assert Path(family.path).parent == short_dir
    finally:
        family.remove()
