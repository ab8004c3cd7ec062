"""Sessions coming and going: what the relay still holds after thousands of them.

The relay freezes its heap after each middle and full garbage collection
(:mod:`relay.collector`): what is frozen is out of the collector's sight, so anything of
a session that died in a reference cycle after it was frozen would be held until the
next thaw, a hundred full collections later. The tests check that one closed session
leaves no cycle (``tests/test_collector.py``); this scenario checks it at scale, the way
a day at the range goes: the same shoots, and round after round of sessions that connect,
catch up, write and receive for a short window, then close. After each round, once the
relay counts no connection, it reads the relay's frozen objects and garbage collections
(``/metrics``) and its resident memory.

The first round grows the heap (the shoots' documents, the relay's caches, the
allocator's arenas); the rounds after it show what each session leaves. The report gives
the frozen objects and the resident memory added per 1,000 sessions after the first
round: close to nothing when sessions leave nothing behind. The scenario found one that
did: every session that ended without a close frame left wsproto's parser in a cycle,
8.7 frozen objects and about 1 KiB of resident memory per session until the next thaw
(:meth:`relay.wssocket.OwnedSocket.release` says how it was fixed).
"""

from __future__ import annotations

import math
import re
import statistics
from typing import Any, Final

import httpx
import trio

from .scenarios import MAX_WRITER_RATE, Bench

__all__ = ["CLIENTS_PER_SHOOT", "churn", "churn_markdown"]

#: Clients per shoot in each round (the rest of a round's clients are more shoots).
CLIENTS_PER_SHOOT: Final = 20
#: Writes per second per shoot during a round's window.
SHOOT_RATE: Final = 2.0
#: Seconds of writing per round.
WINDOW_S: Final = 1.0
#: How long the relay may take to count every closed session gone.
CLOSE_TIMEOUT_S: Final = 30.0
#: The relay's metric of garbage collections of one generation.
_COLLECTIONS: Final = 'fastshoot_gc_collections_total{{generation="{}"}}'


async def churn(bench: Bench) -> None:
    """Rounds of sessions on the same shoots, and what the relay holds after each."""
    cfg = bench.config
    relay = bench.relay
    assert relay is not None
    if cfg.churn_rounds <= 0:
        return  # the quick preset's: it keeps to the goals, under a minute
    per_shoot = min(CLIENTS_PER_SHOOT, cfg.churn_clients)
    shoots = max(1, cfg.churn_clients // per_shoot)
    bench.progress.step(f"churn: creating {shoots} shoots")
    conns = await bench._shoot_conns(shoots, per_shoot, SHOOT_RATE, MAX_WRITER_RATE)
    rounds: list[dict[str, Any]] = []
    sessions = 0
    for number in range(1, cfg.churn_rounds + 1):
        label = f"churn round {number}/{cfg.churn_rounds}"
        pool, opened = await bench.open_pool(relay, conns, label)
        try:
            window = await bench.window(relay, pool, per_shoot, label, duration=WINDOW_S)
        finally:
            await pool.close()
        bench.progress.finish_step()
        sessions += opened["connections"]
        metrics = await _when_all_closed(relay.http_url)
        rounds.append(
            {
                "round": number,
                "sessions": sessions,
                "failed": opened["failed"],
                "delivered_ratio": window["delivered_ratio"],
                "frozen_objects": metrics["fastshoot_gc_frozen_objects"],
                "middle_collections": metrics[_COLLECTIONS.format(1)],
                "full_collections": metrics[_COLLECTIONS.format(2)],
                "rss": relay.rss(),
            }
        )
    bench.results["churn"] = {
        "shoots": shoots,
        "clients_per_round": len(conns),
        "rounds": rounds,
        "frozen_per_1000_sessions": _per_thousand(rounds[1:], "frozen_objects"),
        "rss_per_1000_sessions": _per_thousand(rounds[1:], "rss"),
    }


async def _when_all_closed(url: str) -> dict[str, float]:
    """The relay's metrics once it counts no open connection (polled, bounded). A client
    of its own each time: the relay closes an HTTP connection left idle through a round."""
    with trio.fail_after(CLOSE_TIMEOUT_S):
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            while True:
                metrics = _parse((await http.get("/metrics")).text)
                if metrics.get("fastshoot_connections") == 0:
                    return metrics
                await trio.sleep(0.1)  # polling the relay's own count, with a deadline above


def _parse(text: str) -> dict[str, float]:
    """Prometheus text lines as ``{name with labels: value}``."""
    found = re.findall(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.MULTILINE)
    return {name: float(value) for name, value in found}


def _per_thousand(rounds: list[dict[str, Any]], key: str) -> float:
    """How much ``key`` grows per 1,000 sessions: the least-squares slope over ``rounds``
    (the frozen count moves up and down with the collections that freeze, so two rounds
    alone say little)."""
    if len(rounds) < 2:
        return math.nan
    sessions = [row["sessions"] for row in rounds]
    values = [row[key] for row in rounds]
    return statistics.linear_regression(sessions, values).slope * 1000


def churn_markdown(results: dict[str, Any]) -> list[str]:
    """The scenario's section of the Markdown report."""
    from .report import _table
    from .stats import fmt as _f

    churn = results.get("churn")
    if churn is None:
        return []
    rows = [
        [
            _f(row["round"]),
            f"{row['sessions']:,}",
            _f(row["failed"]),
            _f(row["delivered_ratio"], 3),
            f"{row['frozen_objects']:,.0f}",
            f"{row['middle_collections']:,.0f}",
            f"{row['full_collections']:,.0f}",
            f"{_f(row['rss'] / 2**20, 1)} MiB",
        ]
        for row in churn["rounds"]
    ]
    header = ["Round", "Sessions so far", "Failed", "Delivered / expected"]
    header += ["Frozen objects", "Middle collections", "Full collections", "Relay RSS"]
    return [
        f"## Sessions coming and going: {churn['clients_per_round']:,} sessions a round in "
        f"{churn['shoots']} shoots",
        "",
        *_table(header, rows),
        "Read after each round, once the relay counted no open connection. Growth per "
        "1,000 sessions after the first round (least squares over the rounds): "
        f"{_f(churn['frozen_per_1000_sessions'], 1)} frozen objects and "
        f"{_f(churn['rss_per_1000_sessions'] / 1024, 1)} KiB of resident memory (a session that left a reference cycle behind would add its "
        "objects to the frozen count until the next thaw, `relay/collector.py`).",
        "",
    ]
