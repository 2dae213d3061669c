"""Pickup latency at steady loads: 50, 200 and 500 jobs/s (issue 14, target 4).

One worker process (the system's bench default concurrency). Each job is committed in its
own transaction on an open-loop schedule through four connections (``bench.pacing``); the
job records when it started (the worker's clock; same machine). Latency is start minus the
moment the commit returned: what a user waits between "request done" and "job running".
Rates run from low to high on one worker, ``repeats`` windows of ``latency_seconds`` each;
the enqueuers' achieved rate is checked, and a window where it fell short of 90% is marked
"underpaced" (the machine could not produce the load: not a latency at that rate).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import psycopg

from bench.context import Context
from bench.dbadmin import connect
from bench.pacing import latencies, paced, senders_for
from bench.results import Figure, percentile

SCENARIO = "latency_load"


def run(ctx: Context) -> None:
    plan = ctx.plan
    for system in ctx.systems:
        if not ctx.takes_part(system, SCENARIO):
            ctx.results.note(f"{SCENARIO}: {system.key} left out to fit the time budget "
                             f"(name it in --systems to include it)")
            continue
        figs = {}
        for rate in plan.latency_rates:
            for q in (50, 99):
                figs[rate, q] = ctx.results.add(Figure(
                    SCENARIO, f"p{q} @ {rate:g} jobs/s (ms)", system.key, "ms", False,
                    tag=f"latency_p{q}@{rate:g}",
                ))
        with ctx.database(system, SCENARIO) as url:
            workers = ctx.start(system, url, 1, SCENARIO)
            try:
                ctx.wait_ready(system, url, workers)
                with (senders_for(functools.partial(system.enqueuer, url), "stamp") as senders,
                      connect(url) as conn):
                    next_id = 0
                    for rate in plan.latency_rates:
                        per_repeat = max(20, int(rate * plan.latency_seconds))
                        for _ in range(plan.repeats):
                            ids = range(next_id, next_id + per_repeat)
                            next_id += per_repeat
                            run_window(conn, senders, ids, rate, figs[rate, 50],
                                       figs[rate, 99])
            finally:
                for w in workers:
                    w.kill()
        ctx.log(f"  {system.key}: " + ", ".join(
            f"{rate:g}/s p50 {figs[rate, 50].median or 0:.1f} p99 {figs[rate, 99].median or 0:.1f}"
            for rate in plan.latency_rates) + " ms")


def run_window(
    conn: psycopg.Connection, senders: list[Callable[[int], None]], ids: range, rate: float,
    p50: Figure, p99: Figure,
) -> None:
    window = paced(senders, ids, rate)
    lat = latencies(conn, window.committed, timeout=30.0)
    if window.rate < 0.9 * rate:
        p50.status = p99.status = "underpaced"
        p99.note = f"the enqueuer reached only {window.rate:,.0f} jobs/s"
    if len(lat) < len(window.committed):
        p50.status = p99.status = "partial"
        p99.note = f"{len(window.committed) - len(lat)} jobs never started within 30 s"
    if lat:
        p50.values.append(percentile(lat, 50))
        p99.values.append(percentile(lat, 99))
