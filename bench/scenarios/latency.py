"""Scenario 3: enqueue->start latency at a steady, light load (50 jobs/s by default).

Each job is committed in its own transaction on a fixed schedule; the job records when it
started (the worker's clock; same machine). Latency is start minus the moment the commit
returned, so it is what a user waits between "request done" and "job running".
"""

from __future__ import annotations

import time

import psycopg

from bench.context import Context
from bench.dbadmin import connect
from bench.results import Figure, percentile
from bench.systems.base import Enqueuer
from bench.waiting import WaitTimeout, wait_for

SCENARIO = "latency"


def run(ctx: Context) -> None:
    plan = ctx.plan
    per_repeat = int(plan.latency_rate * plan.latency_seconds)
    for system in ctx.systems:
        p50 = Figure(SCENARIO, f"p50 @ {plan.latency_rate:g} jobs/s (ms)", system.key, "ms",
                     False)
        p99 = Figure(SCENARIO, f"p99 @ {plan.latency_rate:g} jobs/s (ms)", system.key, "ms",
                     False)
        ctx.results.add(p50)
        ctx.results.add(p99)
        with ctx.database(system, SCENARIO) as url:
            workers = ctx.start(system, url, 1, "latency")
            try:
                ctx.wait_ready(system, url, workers)
                with system.enqueuer(url) as enq, connect(url) as conn:
                    for r in range(plan.repeats):
                        ids = range(r * per_repeat, (r + 1) * per_repeat)
                        committed = paced(enq, ids, plan.latency_rate)
                        lat = collect(conn, committed, timeout=30.0)
                        if len(lat) < len(committed):
                            p50.status = p99.status = "partial"
                            p99.note = f"{len(committed) - len(lat)} jobs never started"
                        if lat:
                            p50.values.append(percentile(lat, 50))
                            p99.values.append(percentile(lat, 99))
            finally:
                for w in workers:
                    w.kill()
        ctx.log(f"  {system.key}: p50 {p50.median or 0:.1f} ms, p99 {p99.median or 0:.1f} ms")


def paced(enq: Enqueuer, ids: range, rate: float) -> dict[int, float]:
    """Enqueue ``ids`` one per transaction at ``rate``/s; return each commit time."""
    committed: dict[int, float] = {}
    interval = 1.0 / rate
    start = time.perf_counter()
    for n, i in enumerate(ids):
        delay = start + n * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        enq.one("stamp", i)
        committed[i] = time.time()
    return committed


def collect(conn: psycopg.Connection, committed: dict[int, float], timeout: float) -> list[float]:
    """Latencies in ms of the jobs that started, waiting until all did or ``timeout``."""
    lo, hi = min(committed), max(committed)

    def rows() -> list[tuple[int, float]]:
        return conn.execute(
            "SELECT i, started FROM bench_stamp WHERE i BETWEEN %s AND %s", (lo, hi)
        ).fetchall()

    try:
        wait_for(lambda: len(rows()) >= len(committed), timeout=timeout, interval=0.1,
                 what="latency jobs")
    except WaitTimeout:
        pass
    return [(started - committed[i]) * 1000 for i, started in rows() if i in committed]
