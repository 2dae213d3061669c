"""Scenario 6: a worker dies mid-job (SIGKILL); how long until its job completes elsewhere.

Two cases per system, each in its own database:

* ``survivor``: two worker groups run; the one that picked the job is killed (its whole
  process group, as a crashed container would be); the other keeps running.
* ``restart``: one worker group; killed, then started again at once.

The figure is from the kill to the job's completion (the job's second attempt records the
time it finished). These figures are set by the systems' timeouts (lease, heartbeat,
rescan), not by CPU, so the cases run concurrently to fit the time budget; a case that
sees no rescue within the deadline reports "not rescued".
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import psycopg

from bench.context import Context
from bench.dbadmin import connect
from bench.procs import Worker, kill_all, tree
from bench.results import Figure
from bench.systems.base import System
from bench.waiting import CANCELLED, WaitTimeout, wait_for

SCENARIO = "orphan"
CASES = (
    ("survivor", "rescue by a running worker (s)"),
    ("restart", "rescue after restart (s)"),
)
JOB = 1


def run(ctx: Context) -> None:
    jobs = []
    for system in ctx.systems:
        for case, metric in CASES:
            fig = ctx.results.add(Figure(SCENARIO, metric, system.key, "s", False))
            if not system.rescues_orphans:
                fig.status = "skipped"
                fig.note = "no automatic rescue (needs an operator or a periodic retry task)"
                continue
            jobs.append((system, case, fig))
        if system.rescues_orphans and system.orphan_rescue:
            ctx.results.note(f"orphan / {system.key}: {system.orphan_rescue}")
    with ThreadPoolExecutor(max_workers=len(jobs) or 1) as pool:
        futures = [pool.submit(run_case, ctx, system, case, fig) for system, case, fig in jobs]
        try:
            for future in futures:
                future.result()
        except BaseException:
            # Ctrl-C: make the cases' waits give up and their workers die now, or leaving
            # this block would wait out every case's deadline.
            CANCELLED.set()
            kill_all()
            raise


def run_case(ctx: Context, system: System, case: str, fig: Figure) -> None:
    plan = ctx.plan
    try:
        with ctx.database(system, f"{SCENARIO}_{case}") as url:
            groups: list[list[Worker]] = []
            try:
                groups.append(ctx.start(system, url, 1, f"orphan-{case}-a"))
                if case == "survivor":
                    groups.append(ctx.start(system, url, 1, f"orphan-{case}-b"))
                every = [w for g in groups for w in g]
                for group in groups:
                    ctx.wait_ready(system, url, every, pid_in=group if len(groups) > 1 else None)
                with system.enqueuer(url) as enq, connect(url) as conn:
                    enq.one("hang", JOB)
                    wait_for(lambda: attempt_pid(conn) is not None, timeout=30.0,
                             what="the job to start")
                    pid = attempt_pid(conn)
                    victim = next(g for g in groups if any(pid in tree(w.pid) for w in g))
                    killed_at = time.time()
                    for w in victim:
                        w.kill()
                    if case == "restart":
                        groups.append(ctx.start(system, url, 1, f"orphan-{case}-again"))
                    try:
                        wait_for(lambda: finished(conn) is not None,
                                 timeout=plan.orphan_deadline_s, interval=0.05,
                                 what="the orphaned job to complete")
                    except WaitTimeout:
                        fig.status = "timeout"
                        fig.note = f"not rescued within {plan.orphan_deadline_s:.0f}s"
                        return
                    fig.values.append(float(finished(conn) or 0) - killed_at)
            finally:
                for group in groups:
                    for w in group:
                        w.kill()
    except Exception as exc:  # one case failing must not hide the others
        fig.status, fig.note = "error", f"{type(exc).__name__}: {exc}"[:300]
    ctx.log(f"  {system.key} {case}: {fig.median if fig.values else fig.note}")


def attempt_pid(conn: psycopg.Connection) -> int | None:
    row = conn.execute(
        "SELECT pid FROM bench_attempt WHERE i = %s ORDER BY started LIMIT 1", (JOB,)
    ).fetchone()
    return int(row[0]) if row else None


def finished(conn: psycopg.Connection) -> float | None:
    row = conn.execute(
        "SELECT finished FROM bench_done WHERE i = %s", (JOB,)
    ).fetchone()
    return float(row[0]) if row else None
