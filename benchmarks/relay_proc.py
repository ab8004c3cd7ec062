"""The relay under test, in its own process so its CPU time and memory can be read.

``python -m benchmarks.relay_proc --port N --redis-url URL`` runs the real relay
(``relay.server.run``: hypercorn, the registry, graceful shutdown on SIGTERM) on
127.0.0.1 with the file-descriptor limit raised for thousands of connections, the
per-address shoot-creation throttle and the per-connection write limit lifted (every
benchmark shoot comes from loopback, and the capacity ramp writes faster than an archer).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Final

from relay.config import Settings
from relay.startup import listen_early

from .limits import raise_fd_limit

__all__ = ["main"]

BENCH_WRITES_PER_S: Final = 1_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=1, help="relay processes on the port")
    args = parser.parse_args()
    raise_fd_limit()
    settings = Settings(
        host="127.0.0.1",
        port=args.port,
        redis_url=args.redis_url,
        data_dir=args.data_dir,
        # Every benchmark shoot is created from this one loopback address.
        shoot_creates_burst=1_000_000,
        workers=args.workers,
        # The capacity ramp offers 1,000+ writes/s to one shoot from 50 connections.
        writes_burst=BENCH_WRITES_PER_S,
        writes_per_s=BENCH_WRITES_PER_S,
    )
    # As `fast-shoot serve` does: listening before the relay's code loads, so the storm's
    # clients wait in the kernel's queue while the restarted relay starts.
    listener = listen_early(settings)
    from relay.server import run

    run(settings, listener=listener)
    logging.shutdown()


if __name__ == "__main__":
    main()
