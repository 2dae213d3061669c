"""I/O-bound jobs: throughput as concurrency grows (target 3).

Each ``io`` job awaits one HTTP GET to a local server the bench starts
(``bench.asynchttp``: one asyncio process that answers every request after ``io_delay_ms``,
50 ms, on keep-alive connections), then makes its ``effect`` row. One worker process per
system, with ``io_concurrency`` jobs in flight at most: dramatiq threads for ours (and the
stock broker), ``max_concurrent_tasks`` for PgQueuer's asyncio worker (batch size at most
half of it, as PgQueuer requires), ``--concurrency`` for procrastinate. Ours also runs the
job as an ``async def`` actor when our broker supports them (``ours_actors.has_async_actors``);
until it does, that row says "n/a". Each level drains ``c / delay * io_seconds`` jobs (capped
at ``io_max_jobs``), i.e. what perfect concurrency would finish in ``io_seconds``; the note
gives the rate as a share of that ideal.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

from bench.context import Context
from bench.dbadmin import connect
from bench.procs import Worker
from bench.results import Figure
from bench.systems.base import System, python
from bench.waiting import wait_drained, wait_for

SCENARIO = "io_bound"
SYSTEMS = ("ours", "pgqueuer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_server(ctx: Context, delay_ms: float) -> tuple[Worker, str]:
    port = free_port()
    server = Worker("http-server", [python(), "-m", "bench.asynchttp", "serve", str(port),
                                    str(delay_ms)], dict(os.environ),
                    ctx.log_dir / "http-server.log")
    server.start()

    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, timeout=15.0, what="the local HTTP server")
    return server, f"http://127.0.0.1:{port}/"


def run(ctx: Context) -> None:
    plan = ctx.plan
    systems = [s for s in ctx.systems if (s.key in SYSTEMS or s.key in ctx.requested)
               and "io" in s.kinds]
    if not systems:
        return
    server, url = http_server(ctx, plan.io_delay_ms)
    try:
        for system in systems:
            variants = [("io", "")]
            if system.key == "ours":
                variants.append(("io_async", "async def actors, "))
            for kind, label in variants:
                for c in plan.io_concurrency:
                    tag = f"{'io_async' if kind == 'io_async' else 'io'}_{c}"
                    fig = ctx.results.add(Figure(
                        SCENARIO, f"{label}{c} in flight, {plan.io_delay_ms:g} ms calls "
                        "(jobs/s)", system.key, "jobs/s", True, tag=tag))
                    if kind == "io_async" and not system.has_async_actors():
                        fig.status = "n/a"
                        fig.note = ("n/a: our broker has no async def actors yet (no dramatiq "
                                    "AsyncIO middleware in app.jobs.setup); the row above is "
                                    "ours on worker threads")
                        continue
                    measure(ctx, system, url, kind, c, fig)
            ctx.log(f"  {system.key}: " + ", ".join(
                f"{f.metric.split(',')[0]} {f.median or 0:,.0f}/s" for f in ctx.results.figures
                if f.scenario == SCENARIO and f.system == system.key and f.values))
    finally:
        server.kill()


def measure(ctx: Context, system: System, http_url: str, kind: str, c: int,
            fig: Figure) -> None:
    plan = ctx.plan
    ideal = c / (plan.io_delay_ms / 1000)
    n = max(100, min(plan.io_max_jobs, int(ideal * plan.io_seconds)))
    with ctx.database(system, f"{SCENARIO}_{c}") as db:
        tenants: list[uuid.UUID] = system.make_tenants(db, plan.write_tenants)
        workers = ctx.start(system, db, 1, f"{SCENARIO}-{kind}-{c}", concurrency=c,
                            extra_env={"BENCH_HTTP_URL": http_url})
        try:
            ctx.wait_ready(system, db, workers)
            with system.enqueuer(db, tenants) as enq, connect(db) as conn:
                for r in range(plan.repeats):
                    enq.many(kind, range(r * n, (r + 1) * n))
                    started = time.time()
                    outcome = wait_drained(
                        lambda: system.remaining(conn), total=n,
                        started=started,
                        deadline_s=max(2 * plan.drain_deadline_s, 10 * n / ideal),
                        stall_s=plan.stall_s,
                    )
                    fig.values.append(outcome.rate)
                    if outcome.status != "ok":
                        fig.status, fig.note = outcome.status, outcome.describe()
                        break
                failed = system.failed(conn)
                made = conn.execute("SELECT count(*) FROM bench_effect").fetchone()
        finally:
            for w in workers:
                w.kill()
    if failed:
        fig.status = "failed"
    if fig.median:
        fig.note = "; ".join(filter(None, [
            fig.note, f"{fig.median / ideal:.0%} of ideal {ideal:,.0f}/s",
            f"{failed:,} failed" if failed else "",
            f"{int(made[0]) if made else 0:,} effects for {n * len(fig.values):,} jobs",
        ]))
