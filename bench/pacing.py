"""Jobs at a steady rate, one per transaction, and the pickup latency they saw.

The schedule is open-loop: job ``n`` is due at ``start + n / rate`` whatever happened
before, so a system that falls behind cannot slow the load down (a closed loop would hide
exactly the stalls the latency and MVCC scenarios look for). When the enqueuer itself falls
behind (a busy machine), it catches up without sleeping and the achieved rate is reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psycopg

from bench.systems.base import Enqueuer
from bench.waiting import CANCELLED, WaitTimeout, wait_for


@dataclass
class Paced:
    committed: dict[int, float] = field(default_factory=dict)  # job id -> epoch s of commit
    started: float = 0.0
    ended: float = 0.0
    failed: list[int] = field(default_factory=list)  # enqueue raised (chaos): not expected

    @property
    def rate(self) -> float:
        return len(self.committed) / max(self.ended - self.started, 1e-9)


def paced(
    enqueue: Callable[[int], None], ids: Iterable[int], rate: float, *,
    stop: threading.Event | None = None, on_error: Callable[[int, Exception], None] | None = None,
) -> Paced:
    """Call ``enqueue(i)`` for each id at ``rate``/s; return each commit time.

    With ``on_error``, an exception from ``enqueue`` is handed to it and the id recorded as
    failed (the chaos scenario reconnects there); without it, it propagates.
    """
    out = Paced(started=time.time())
    interval = 1.0 / rate
    start = time.perf_counter()
    for n, i in enumerate(ids):
        if CANCELLED.is_set() or (stop is not None and stop.is_set()):
            break
        delay = start + n * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        try:
            enqueue(i)
        except Exception as exc:
            if on_error is None:
                raise
            out.failed.append(i)
            on_error(i, exc)
            continue
        out.committed[i] = time.time()
    out.ended = time.time()
    return out


def paced_jobs(enq: Enqueuer, kind: str, ids: Iterable[int], rate: float) -> Paced:
    return paced(lambda i: enq.one(kind, i), ids, rate)


def latencies(
    conn: psycopg.Connection, committed: dict[int, float], timeout: float
) -> list[float]:
    """Pickup latencies (ms) of the ``stamp`` jobs that started, waiting until all did or
    ``timeout``: start (the worker's clock) minus the commit that enqueued it."""
    if not committed:
        return []
    lo, hi = min(committed), max(committed)

    def rows() -> list[tuple[int, float]]:
        return conn.execute(
            "SELECT i, started FROM bench_stamp WHERE i BETWEEN %s AND %s", (lo, hi)
        ).fetchall()

    try:
        wait_for(lambda: len(rows()) >= len(committed), timeout=timeout, interval=0.1,
                 what="paced jobs")
    except WaitTimeout:
        pass
    return [(started - committed[i]) * 1000 for i, started in rows() if i in committed]
