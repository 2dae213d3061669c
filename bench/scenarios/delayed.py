"""Scenario 5: many jobs delayed by an hour; what they cost the worker's memory.

The same worker command runs twice on one database: first on an empty queue, then with the
delayed jobs present. dramatiq's delay queue design (the stock broker) pulls every delayed
message into worker memory and holds an advisory lock for each until its eta; ours leaves
them in the table until due. Memory is the peak summed RSS over a short window once the
worker is ready (and, for the stock broker, once it stopped pulling messages in).
"""

from __future__ import annotations

import time

from bench.context import Context
from bench.dbadmin import connect
from bench.procs import RssSampler, Worker
from bench.results import Figure
from bench.systems.base import System
from bench.waiting import wait_drained

SCENARIO = "delayed"


def run(ctx: Context) -> None:
    plan = ctx.plan
    for system in ctx.systems:
        if not ctx.takes_part(system, SCENARIO):
            ctx.results.note(f"{SCENARIO}: {system.key} left out to fit the time budget "
                             f"(name it in --systems to include it)")
            continue
        n = plan.delayed_jobs
        cap = int(ctx.lock_capacity * 0.7) if system.key == "stock" else None
        if cap is not None and cap < n:
            ctx.results.note(
                f"delayed / stock: capped at {cap:,} delayed jobs (70% of the server's lock "
                f"table, max_locks_per_transaction x max_connections = {ctx.lock_capacity:,}); "
                "it holds one advisory lock per delayed message it pulls in"
            )
            n = cap
        empty = Figure(SCENARIO, "worker RSS, empty queue (MiB)", system.key, "MiB", False)
        full = Figure(SCENARIO, f"worker RSS, {plan.delayed_jobs:,} delayed 1h (MiB)",
                      system.key, "MiB", False)
        ctx.results.add(empty)
        ctx.results.add(full)
        if n != plan.delayed_jobs:
            full.status, full.note = "capped", f"only {n:,} delayed jobs (lock table)"
        with ctx.database(system, SCENARIO) as url:
            empty.values.append(measure(ctx, system, url, "empty")[0])
            loaded = time.monotonic()
            with system.enqueuer(url) as enq:
                enq.load("noop", range(n), delay_s=plan.delayed_hours * 3600)
            ctx.log(f"  {system.key}: {n:,} delayed jobs loaded in "
                    f"{time.monotonic() - loaded:.1f}s")
            rss, pulled = measure(ctx, system, url, "delayed", settle=n)
            full.values.append(rss)
            if pulled:
                extra_kib = (rss - empty.values[0]) * 1024 / pulled
                full.extra.update(pulled_into_memory=pulled, kib_per_pulled=extra_kib)
                full.note = "; ".join(filter(None, [
                    full.note, f"worker pulled {pulled:,} delayed messages into memory "
                    f"(~{extra_kib:.1f} KiB each) within {plan.settle_deadline_s:.0f}s",
                ]))
        ctx.log(f"  {system.key}: RSS empty {empty.median or 0:.0f} MiB, "
                f"delayed {full.median or 0:.0f} MiB")


def measure(
    ctx: Context, system: System, url: str, tag: str, settle: int = 0
) -> tuple[float, int]:
    """Peak RSS over a window once the worker is ready; and how many delayed jobs it holds."""
    plan = ctx.plan
    workers = ctx.start(system, url, 1, f"delayed-{tag}")
    try:
        with RssSampler(workers) as sampler:
            ctx.wait_ready(system, url, workers)
            pulled = settle_pulled(ctx, system, url, settle) if settle else 0
            sampler.samples.clear()
            sampler.peak_mib = 0.0
            window_end = time.monotonic() + plan.rss_window_s
            while time.monotonic() < window_end:
                time.sleep(0.1)
            return sampler.peak_mib, pulled
    finally:
        stop(workers)


def settle_pulled(ctx: Context, system: System, url: str, n: int) -> int:
    """Wait while a worker pulls delayed messages into its memory; return how many it holds.

    Systems that leave delayed jobs in the table hold none, and are not waited for.
    """
    if not system.pulls_delayed:
        return 0
    with connect(url) as conn:
        outcome = wait_drained(
            lambda: n - system.held_in_worker(conn), total=n, started=time.time(),
            deadline_s=ctx.plan.settle_deadline_s, stall_s=5.0,
        )
        return outcome.done


def stop(workers: list[Worker]) -> None:
    for w in workers:
        w.kill()
