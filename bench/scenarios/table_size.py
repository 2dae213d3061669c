"""Drain rate with a big job table against an empty one (issue 14, target 5).

One worker process drains ``table_drain_jobs`` no-op jobs, ``repeats`` times, first on an
empty table; then the system's own tables get ``table_rows`` finished jobs and
``table_delayed`` jobs due in an hour (``System.fill``: a finished and a delayed job made
through the system's API, each copied with one ``INSERT ... SELECT generate_series``; see
``bench.tablefill``), ``VACUUM ANALYZE`` and a ``CHECKPOINT`` run as autovacuum and the
checkpointer would have by then, and the same drain is timed again on the same worker (ours
with a queue policy that keeps the rows, as the peers keep theirs). The figure to read is
the ratio full / empty. Defaults are 100,000 / 10,000 to fit the run; ``--long`` (or
``--table-rows 1000000 --table-delayed 100000``) is the issue's size.
"""

from __future__ import annotations

import time

from bench.context import Context
from bench.dbadmin import connect
from bench.results import Figure
from bench.systems.base import System
from bench.waiting import wait_drained

SCENARIO = "table_size"


def run(ctx: Context) -> None:
    plan = ctx.plan
    for system in ctx.systems:
        if not ctx.takes_part(system, SCENARIO):
            ctx.results.note(f"{SCENARIO}: {system.key} left out (name it in --systems)")
            continue
        n = plan.table_drain_jobs
        empty = ctx.results.add(Figure(SCENARIO, f"{n:,} no-op drain, empty table (jobs/s)",
                                       system.key, "jobs/s", True, tag="table_empty"))
        full = ctx.results.add(Figure(
            SCENARIO, f"{n:,} no-op drain, {plan.table_rows:,} finished + "
            f"{plan.table_delayed:,} delayed (jobs/s)", system.key, "jobs/s", True,
            tag="table_full"))
        ratio = ctx.results.add(Figure(SCENARIO, "drain rate, full / empty table (x)",
                                       system.key, "x", True, tag="table_ratio"))
        try:
            measure(ctx, system, empty, full)
        except Exception as exc:  # e.g. a changed table layout: say so, keep the others
            full.status, full.note = "error", f"{type(exc).__name__}: {exc}"[:300]
        if empty.median and full.median:
            ratio.values.append(full.median / empty.median)
        else:
            ratio.status = "n/a"
        ctx.log(f"  {system.key}: empty {empty.median or 0:,.0f}/s, full "
                f"{full.median or 0:,.0f}/s {full.status}")


def drain(ctx: Context, system: System, url: str, fig: Figure, first_id: int,
          repeats: int | None = None) -> None:
    plan = ctx.plan
    n = plan.table_drain_jobs
    with system.enqueuer(url) as enq, connect(url) as conn:
        # Delayed jobs count as remaining: the drain is done when only they are left.
        baseline = system.remaining(conn)

        def left() -> int:
            return system.remaining(conn) - baseline

        for r in range(repeats or plan.repeats):
            enq.many("noop", range(first_id + r * n, first_id + (r + 1) * n))
            started = time.time()
            outcome = wait_drained(
                left, total=n, started=started,
                deadline_s=plan.drain_deadline_s * 2, stall_s=plan.stall_s,
            )
            fig.values.append(outcome.rate)
            if outcome.status != "ok":
                fig.status, fig.note = outcome.status, outcome.describe()
                return


def measure(ctx: Context, system: System, empty: Figure, full: Figure) -> None:
    plan = ctx.plan
    with ctx.database(system, SCENARIO) as url:
        # Ours keeps the filled rows (its default policy keeps 1,000 finished jobs a queue and
        # would spend the drain deleting the rest); the peers keep every row anyway.
        workers = ctx.start(system, url, 1, SCENARIO, extra_env={"BENCH_KEEP_FINISHED": "1"})
        try:
            ctx.wait_ready(system, url, workers)  # its probe job is the finished template
            warm = Figure(SCENARIO, "warm-up", system.key, "jobs/s", True)
            drain(ctx, system, url, warm, 30_000_000, repeats=1)  # pools, caches: untimed
            drain(ctx, system, url, empty, 0)
            with system.enqueuer(url) as enq:
                enq.many("noop", [10_000_000], delay_s=3600)  # the delayed template
            with connect(url) as conn:
                t0 = time.monotonic()
                system.fill(conn, plan.table_rows, plan.table_delayed)
                conn.execute("VACUUM ANALYZE")
                conn.execute("CHECKPOINT")  # the fill's dirty pages, not written in the drain
                ctx.log(f"  {system.key}: {plan.table_rows:,} + {plan.table_delayed:,} rows "
                        f"made and vacuumed in {time.monotonic() - t0:.1f}s")
            drain(ctx, system, url, full, 20_000_000)
            # The delayed rows must still be there (not drained as if due, nor lost).
            with connect(url) as conn:
                left = system.remaining(conn)
            if left < plan.table_delayed:
                full.status = "failed"
                full.note = f"only {left:,} of {plan.table_delayed:,} delayed jobs left"
        finally:
            for w in workers:
                w.kill()
