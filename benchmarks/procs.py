"""The processes a benchmark run starts: Redis, the relay, the references and load workers.

Each server runs in its own process so that its CPU time (user + system, from
``psutil``, i.e. ``/proc/<pid>/stat``) and resident memory can be read around each
measurement window, the relay's and every reference's the same way. Children import the
same ``benchmarks``/``relay`` code as this process (``PYTHONPATH`` is set to its root),
and everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any, Final

import httpx
import psutil
import trio

from relay.redis_server import free_port

from .load import ConnSpec, Plan

__all__ = ["Server", "WorkerPool", "child_env", "python_module"]

READY_TIMEOUT_S: Final = 60.0
CODE_ROOT: Final = Path(__file__).resolve().parent.parent
BYTECODE_CACHE: Final = Path(tempfile.gettempdir()) / "fast-shoot-bench-bytecode"


def child_env() -> dict[str, str]:
    """The environment of every child: this code on its path, and compiled bytecode kept.

    A deployed relay runs from bytecode its install compiled. Where
    ``PYTHONDONTWRITEBYTECODE`` is set, a child started from the checkout would instead
    compile every module of its own at each start, and the storm's restarted relay would
    spend a few hundred ms of its CPU doing so. The children share a bytecode cache in the
    temporary folder instead, outside the checkout, so the git tree stays clean.
    """
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(CODE_ROOT) + (os.pathsep + path if path else "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(BYTECODE_CACHE))
    return env


def python_module(module: str, *args: str) -> list[str]:
    """The command that runs ``module`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def _process_cpu_clock(pid: int) -> int:
    """Linux's CPU-time clock id of a whole process (``clock_getcpuclockid``)."""
    return ((~pid) << 3) | 2  # CPUCLOCK_SCHED, process-wide


class Server:
    """A server child process (the relay or a reference) on a fixed loopback port.

    ``command`` is run with ``--port N`` appended. The port is kept across a stop and
    start, as a restarted relay behind a load balancer would be, so clients reconnect to
    the same address.
    """

    def __init__(
        self, name: str, command: Sequence[str], log_dir: Path, cwd: Path | None = None
    ) -> None:
        self.name = name
        self.port = free_port()
        self._argv = [*command, "--port", str(self.port)]
        self._cwd = cwd
        self._spawned = 0.0
        self._log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._ps: psutil.Process | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self, health_path: str = "/health") -> float:
        """Spawn the server and wait until it answers HTTP; returns the seconds it took."""
        started = time.monotonic()
        self.spawn()
        self.wait_ready(health_path)
        return time.monotonic() - started

    def spawn(self) -> None:
        """Start the process (:meth:`wait_ready` waits until it serves)."""
        self._spawned = time.monotonic()
        self._log = self._log_path.open("ab")
        self._process = subprocess.Popen(
            self._argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            env=child_env(),
            cwd=self._cwd,
        )
        self._ps = psutil.Process(self._process.pid)

    def wait_ready(self, health_path: str = "/health") -> float:
        """Poll until the spawned server answers HTTP; the seconds since it was spawned."""
        assert self._process is not None
        started = self._spawned
        deadline = started + READY_TIMEOUT_S
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited at start; see {self._log_path}")
                try:
                    if client.get(self.http_url + health_path).status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)  # polling a child process that is starting up
        raise RuntimeError(f"{self.name} did not answer within {READY_TIMEOUT_S} s")

    def start_until_logged(self, text: str) -> float:
        """Spawn the server and wait until a line of its log holds ``text``; returns the
        seconds it took.

        For a start under load: the relay listens before it loads, so an HTTP probe would
        wait in the kernel's queue behind the clients already there, and count part of
        their catch-up as start-up. The line the relay logs once it serves does not wait.
        """
        self._log_path.touch()
        offset = self._log_path.stat().st_size
        self.spawn()
        assert self._process is not None
        deadline = self._spawned + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            with self._log_path.open("rb") as log:
                log.seek(offset)
                if text.encode() in log.read():
                    return time.monotonic() - self._spawned
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self._log_path}")
            time.sleep(0.01)  # polling a child process's log while it starts
        raise RuntimeError(f"{self.name} did not log {text!r} within {READY_TIMEOUT_S} s")

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (the relay shuts down gracefully), then SIGKILL after ``timeout_s``."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def cpu_s(self) -> float:
        """CPU seconds (user + system) this process has used, its threads included.

        Read from the process's CPU-time clock (Linux: nanoseconds, the scheduler's own
        accounting, finished threads included); ``/proc/<pid>/stat`` through psutil counts
        in 10 ms ticks, too coarse for a server that uses 40 ms in a short window.
        """
        assert self._ps is not None
        assert self._process is not None
        try:
            return time.clock_gettime(_process_cpu_clock(self._process.pid))
        except OSError:
            times = self._ps.cpu_times()
            return float(times.user + times.system)

    def main_thread_cpu_s(self) -> float:
        """CPU seconds of the process's main thread alone (the relay's event loop; the
        rest of :meth:`cpu_s` is worker threads), from the scheduler's nanosecond count.
        ``nan`` where the kernel does not expose it."""
        assert self._process is not None
        pid = self._process.pid
        try:
            with open(f"/proc/{pid}/task/{pid}/schedstat") as stat:
                return int(stat.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            return math.nan

    def rss(self) -> int:
        assert self._ps is not None
        return int(self._ps.memory_info().rss)

    def connections(self) -> int:
        assert self._ps is not None
        return sum(1 for c in self._ps.net_connections("tcp") if c.status == "ESTABLISHED")


class _WorkerProcess:
    def __init__(self, process: trio.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path
        self._buffer = bytearray()

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all((line + "\n").encode())

    async def readline(self) -> tuple[str, Any]:
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(1 << 20)
            if not chunk:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"a load worker exited early: {tail}")
            self._buffer += chunk
        end = self._buffer.index(b"\n")
        line = bytes(self._buffer[:end]).decode()
        del self._buffer[: end + 1]
        kind, _, body = line.partition(" ")
        return kind, (json.loads(body) if body else None)


class WorkerPool:
    """Load worker processes sharing a list of connections (round-robin)."""

    def __init__(self, workers: list[_WorkerProcess]) -> None:
        self._workers = workers

    @classmethod
    async def start(
        cls,
        host: str,
        port: int,
        conns: Sequence[ConnSpec],
        processes: int,
        work_dir: Path,
        *,
        replica: bool = False,
        connect_concurrency: int = 64,
        drain_s: float = 1.0,
    ) -> tuple[WorkerPool, list[Any]]:
        """Start the workers and wait until each has opened its connections.

        Returns:
            The pool, and each worker's ``ready`` report.
        """
        processes = max(1, min(processes, len(conns)))
        workers = []
        for index in range(processes):
            share = list(conns[index::processes])
            plan = Plan(
                host,
                port,
                share,
                replica=replica,
                connect_concurrency=connect_concurrency,
                drain_s=drain_s,
            )
            plan_path = work_dir / f"plan-{port}-{index}.json"
            body = asdict(plan)
            plan_path.write_text(json.dumps(body))
            log_path = work_dir / f"worker-{index}.log"
            log = log_path.open("ab")
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "benchmarks.load", str(plan_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=child_env(),
            )
            log.close()
            workers.append(_WorkerProcess(process, log_path))
        pool = cls(workers)
        return pool, await pool.read_all("ready")

    async def read_all(self, expected: str) -> list[Any]:
        replies: list[Any] = [None] * len(self._workers)

        async def read(index: int, worker: _WorkerProcess) -> None:
            kind, body = await worker.readline()
            if kind != expected:
                raise RuntimeError(f"load worker said {kind!r}, expected {expected!r}")
            replies[index] = body

        async with trio.open_nursery() as nursery:
            for index, worker in enumerate(self._workers):
                nursery.start_soon(read, index, worker)
        return replies

    def cpu_s(self) -> float:
        """CPU seconds the load workers have used so far: what generating the load costs
        the machine the server runs on (its cores are shared)."""
        total = 0.0
        for worker in self._workers:
            try:
                total += time.clock_gettime(_process_cpu_clock(worker.process.pid))
            except OSError:  # it has exited
                continue
        return total

    async def broadcast(self, line: str) -> None:
        for worker in self._workers:
            await worker.send(line)

    async def close(self) -> None:
        for worker in self._workers:
            if worker.process.returncode is None:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await worker.send("quit")
        for worker in self._workers:
            with trio.move_on_after(10) as scope:
                await worker.process.wait()
            if scope.cancelled_caught:
                worker.process.kill()
                await worker.process.wait()
