"""Process limits the load needs: file descriptors for thousands of sockets."""

from __future__ import annotations

import resource

__all__ = ["raise_fd_limit"]


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's open-file limit to the hard limit; returns ``(soft, hard)``.

    The hard limit is the ceiling an unprivileged process can reach; the benchmarks report
    it when it stops a run short of its target.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft, hard
        return target, hard
    return soft, hard
