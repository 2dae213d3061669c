"""Scenario 2: drain throughput with live workers.

Workers are started and proven ready first (a probe job ran), then the jobs are committed
in one transaction, so the clock starts at the commit and neither process start-up nor
enqueue cost is in the figure. Variants: no-op jobs with 1 and 2 worker processes, and
jobs that write one row (ours: under the job's tenant and RLS, committed with the job's
completion; others: a plain insert). The variants share the system's database, emptied in
between.

The stock broker holds one advisory lock per consumed message until it is idle, so a
drain stops at the lock-table cap or the time cap, whichever comes first, and says so.
"""

from __future__ import annotations

import time
import uuid

import psycopg

from bench.context import Context
from bench.dbadmin import connect
from bench.results import Figure
from bench.systems.base import System
from bench.waiting import wait_drained

SCENARIO = "drain"
VARIANTS = (("noop", 1), ("noop", 2), ("write", 1))


def lock_cap(ctx: Context, system: System) -> int | None:
    """For the stock broker: stop before its held locks fill the server's lock table."""
    return int(ctx.lock_capacity * 0.7) if system.key == "stock" else None


def run(ctx: Context) -> None:
    for system in ctx.systems:
        with ctx.database(system, SCENARIO) as url:
            tenants = system.make_tenants(url, ctx.plan.write_tenants)
            for kind, processes in VARIANTS:
                n = ctx.plan.drain_jobs if kind == "noop" else ctx.plan.drain_write_jobs
                label = "no-op" if kind == "noop" else "1-row write"
                fig = ctx.results.add(Figure(
                    SCENARIO, f"{n:,} {label} jobs, {processes} proc (jobs/s)", system.key,
                    "jobs/s", True, tag=f"drain_{kind}_{processes}",
                ))
                if kind not in system.kinds:
                    fig.status, fig.note = "skipped", f"no {kind} job for {system.key} here"
                    continue
                if kind == "write" and system.key != "ours":
                    fig.note = "plain insert from the job (no tenant context or RLS)"
                with connect(url) as conn:
                    system.reset(conn)
                measure(ctx, system, url, tenants, fig, kind, processes, n)
                ctx.log(f"  {system.key} {kind} x{processes}: {fig.median or 0:,.0f} jobs/s "
                        f"{fig.status} {fig.note}")


def check_outcomes(
    system: System, conn: psycopg.Connection, fig: Figure, kind: str, done: int,
    complete: bool,
) -> None:
    """A drain counts only if its jobs succeeded (and, for ``write``, wrote their rows).

    Rows are only compared after a complete drain: when a time cap stops it, jobs still
    running may have written their row without being marked done yet.
    """
    failed = system.failed(conn)
    if failed:
        fig.status = "failed"
        fig.note = "; ".join(filter(None, [fig.note, f"{failed:,} jobs failed"]))
    if kind == "write" and complete and fig.status == "ok":
        written = system.written(conn)
        if written != done:
            fig.status = "failed"
            fig.note = "; ".join(filter(None, [
                fig.note, f"{written:,} rows written for {done:,} jobs"]))


def measure(
    ctx: Context, system: System, url: str, tenants: list[uuid.UUID], fig: Figure, kind: str,
    processes: int, n: int,
) -> None:
    plan = ctx.plan
    workers = ctx.start(system, url, processes, f"drain-{kind}-{processes}")
    try:
        ctx.wait_ready(system, url, workers)
        with system.enqueuer(url, tenants) as enq, connect(url) as conn:
            for r in range(plan.repeats):
                enq.many(kind, range(r * n, (r + 1) * n))
                started = time.time()
                outcome = wait_drained(
                    lambda: system.remaining(conn), total=n, started=started,
                    deadline_s=system.drain_deadline(plan.drain_deadline_s,
                                                     plan.slow_deadline_s),
                    stall_s=plan.stall_s, stop_at_done=lock_cap(ctx, system),
                )
                fig.values.append(outcome.rate)
                check_outcomes(system, conn, fig, kind, done=r * n + outcome.done,
                               complete=outcome.status == "ok")
                if outcome.status != "ok":
                    # Jobs are left over; further repeats would measure a different thing.
                    fig.status = outcome.status
                    fig.note = "; ".join(filter(None, [fig.note, outcome.describe()]))
                    break
    finally:
        for w in workers:
            w.kill()
