"""Scenario 4: a big backlog present before the worker starts.

Figures: time from starting the worker to its first job, time to drain everything, and the
peak memory of the worker processes (summed VmRSS of every process in the worker's tree,
sampled four times a second). The stock broker reads every pending message at start and
keeps an advisory lock per consumed one, so it is stopped at the lock-table cap or the time
cap and reported as partial.
"""

from __future__ import annotations

import time

from bench.context import Context
from bench.dbadmin import connect
from bench.procs import RssSampler
from bench.results import Figure
from bench.scenarios.drain import lock_cap
from bench.systems.base import System
from bench.waiting import WaitTimeout, wait_drained, wait_for

SCENARIO = "backlog"


def run(ctx: Context) -> None:
    n = ctx.plan.backlog_jobs
    procs = ctx.plan.backlog_processes
    for system in ctx.systems:
        if not ctx.takes_part(system, SCENARIO):
            ctx.results.note(f"{SCENARIO}: {system.key} left out to fit the time budget "
                             f"(name it in --systems to include it)")
            continue
        figs = {
            "first": Figure(SCENARIO, f"{n:,} queued: time to first job (s)", system.key, "s",
                            False),
            "drain": Figure(SCENARIO, f"{n:,} queued: drain, {procs} proc (s)", system.key, "s",
                            False),
            "rate": Figure(SCENARIO, f"{n:,} queued: drain rate (jobs/s)", system.key,
                           "jobs/s", True, tag="backlog_rate"),
            "rss": Figure(SCENARIO, f"{n:,} queued: worker peak RSS (MiB)", system.key, "MiB",
                          False),
        }
        for fig in figs.values():
            ctx.results.add(fig)
        measure(ctx, system, figs)
        ctx.log(f"  {system.key}: first {figs['first'].median or 0:.2f}s, drain "
                f"{figs['drain'].median or 0:.1f}s {figs['drain'].note}, "
                f"peak RSS {figs['rss'].median or 0:.0f} MiB")


def measure(ctx: Context, system: System, figs: dict[str, Figure]) -> None:
    plan = ctx.plan
    n = plan.backlog_jobs
    with ctx.database(system, SCENARIO) as url:
        loaded = time.monotonic()
        with system.enqueuer(url) as enq:
            enq.load("noop", range(n))
        ctx.log(f"  {system.key}: {n:,} jobs loaded in {time.monotonic() - loaded:.1f}s")
        with connect(url) as conn:
            conn.execute("VACUUM ANALYZE")  # as autovacuum would have by the time
            workers = ctx.start(system, url, plan.backlog_processes, "backlog")
            spawned = workers[0].started_at
            try:
                with RssSampler(workers) as sampler:
                    try:
                        t_first = wait_for(
                            lambda: system.started_any(conn), timeout=plan.backlog_deadline_s,
                            interval=0.02, what="the first job",
                        )
                        figs["first"].values.append(t_first - spawned)
                    except WaitTimeout:
                        figs["first"].status = "stalled"
                    outcome = wait_drained(
                        lambda: system.remaining(conn), total=n, started=spawned,
                        deadline_s=system.drain_deadline(plan.backlog_deadline_s,
                                                         2 * plan.slow_deadline_s),
                        stall_s=plan.stall_s, stop_at_done=lock_cap(ctx, system),
                    )
                figs["rss"].values.append(sampler.peak_mib)
            finally:
                for w in workers:
                    w.kill()
    figs["rate"].values.append(outcome.rate)
    if outcome.status == "ok":
        figs["drain"].values.append(outcome.elapsed)
    else:
        figs["drain"].status = figs["rate"].status = outcome.status
        figs["drain"].note = outcome.describe()
