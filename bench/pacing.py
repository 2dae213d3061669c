"""Jobs at a steady rate, one per transaction, and the pickup latency they saw.

The schedule is open-loop: job ``n`` is due at ``start + n / rate`` whatever happened
before, so a system that falls behind cannot slow the load down (a closed loop would hide
exactly the stalls the latency and MVCC scenarios look for). Jobs go out through
``SENDERS`` connections in threads, as from several web requests, so one slow commit does
not hold up the next job. When the senders fall behind anyway (a busy machine), they catch
up without sleeping and the achieved rate is reported.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg

from bench.systems.base import Enqueuer
from bench.waiting import CANCELLED, WaitTimeout, wait_for

SENDERS = 4


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
    senders: Sequence[Callable[[int], None]], ids: Iterable[int], rate: float, *,
    on_error: Callable[[int, int, Exception], None] | None = None,
) -> Paced:
    """Enqueue each id at ``rate``/s through ``senders`` (one connection each); return each
    commit time.

    The schedule runs in this thread and hands each due id to the first free sender thread,
    so one slow commit (a busy machine, a checkpoint) delays only itself, as with the many
    web requests of a real application. With ``on_error``, an exception from a sender is
    handed to it as ``(sender index, id, exception)`` and the id recorded as failed (the
    chaos scenario reconnects there); without it, the run stops and the first error is
    raised.
    """
    out = Paced(started=time.time())
    due: queue.Queue[int | None] = queue.Queue()
    lock = threading.Lock()
    errors: list[Exception] = []
    stop = threading.Event()

    def send(k: int) -> None:
        while (i := due.get()) is not None:
            if stop.is_set():
                continue
            try:
                senders[k](i)
            except Exception as exc:
                with lock:
                    out.failed.append(i)
                if on_error is None:
                    errors.append(exc)
                    stop.set()
                else:
                    on_error(k, i, exc)
                continue
            t = time.time()
            with lock:
                out.committed[i] = t

    threads = [threading.Thread(target=send, args=(k,), name=f"sender-{k}", daemon=True)
               for k in range(len(senders))]
    for t in threads:
        t.start()
    interval = 1.0 / rate
    start = time.perf_counter()
    try:
        for n, i in enumerate(ids):
            if CANCELLED.is_set() or stop.is_set():
                break
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            due.put(i)
    finally:
        for _ in threads:
            due.put(None)
        for t in threads:
            t.join()
    out.ended = time.time()
    if errors:
        raise errors[0]
    return out


@contextmanager
def senders_for(
    make: Callable[[], Enqueuer], kind: str, count: int = SENDERS
) -> Iterator[list[Callable[[int], None]]]:
    """``count`` enqueuers (each its own connection) as sender functions for ``paced``."""
    enqueuers = [make() for _ in range(count)]
    try:
        yield [functools.partial(enq.one, kind) for enq in enqueuers]
    finally:
        for enq in enqueuers:
            enq.close()


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
