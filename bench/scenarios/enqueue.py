"""Scenario 1: how fast jobs go in, one per transaction and in batches.

No worker runs, so this is the producer's cost alone: what a web request pays to enqueue
in its own transaction, and what a bulk import pays per job. Ours also gets the path
application code takes: a tenant job through ``tenant_session`` (SQLAlchemy, ``app_user``,
RLS checking the row), which no peer has an equivalent of.
"""

from __future__ import annotations

import time

from bench.context import Context
from bench.results import Figure
from bench.systems.ours import Ours

SCENARIO = "enqueue"


def run(ctx: Context) -> None:
    plan = ctx.plan
    for system in ctx.systems:
        each = Figure(SCENARIO, "1 job per txn (jobs/s)", system.key, "jobs/s", True)
        batch = Figure(
            SCENARIO, f"batch, {plan.batch_size:,}/txn (jobs/s)", system.key, "jobs/s", True
        )
        with ctx.database(system, SCENARIO) as url, system.enqueuer(url) as enq:
            enq.one("noop", 0)  # warm up: connection, prepared statements, caches
            next_id = 1
            for _ in range(plan.repeats):
                started = time.perf_counter()
                for i in range(next_id, next_id + plan.enqueue_each):
                    enq.one("noop", i)
                each.values.append(plan.enqueue_each / (time.perf_counter() - started))
                next_id += plan.enqueue_each

                started = time.perf_counter()
                for chunk in range(next_id, next_id + plan.enqueue_batch, plan.batch_size):
                    enq.many("noop", range(chunk, chunk + plan.batch_size))
                batch.values.append(plan.enqueue_batch / (time.perf_counter() - started))
                next_id += plan.enqueue_batch
        ctx.results.add(each)
        ctx.results.add(batch)
        if isinstance(system, Ours):
            ctx.results.add(tenant_session_figure(ctx, system))
        ctx.log(f"  {system.key}: 1/txn {each.median:,.0f} jobs/s, batch {batch.median:,.0f}")


def tenant_session_figure(ctx: Context, system: Ours) -> Figure:
    plan = ctx.plan
    fig = Figure(SCENARIO, "1 tenant job per txn, tenant_session (jobs/s)", system.key,
                 "jobs/s", True, note="SQLAlchemy session as app_user, RLS WITH CHECK on the row")
    with ctx.database(system, f"{SCENARIO}_tenant") as url:
        tenants = system.make_tenants(url, plan.write_tenants)
        with system.enqueuer(url, tenants) as enq:
            enq.tenant_session_one(tenants[0], 0)  # warm up the engine and its pool
            for r in range(plan.repeats):
                ids = range(1 + r * plan.enqueue_each, 1 + (r + 1) * plan.enqueue_each)
                started = time.perf_counter()
                for i in ids:
                    enq.tenant_session_one(enq.tenant_of(i), i)
                fig.values.append(plan.enqueue_each / (time.perf_counter() - started))
    return fig
