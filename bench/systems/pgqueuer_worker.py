"""Worker for PgQueuer, run the way ``pgq run`` runs a factory, with its documented tuning.

``python -m bench.systems.pgqueuer_worker`` does what ``pgq run
bench.systems.pgqueuer_worker:create`` would (its CLI fails on the default ``--log-level`` in
1.6.0): ``pgqueuer.run(...)`` on uvloop, as ``pgq run`` does when uvloop is installed.
Settings (see ``pgqueuer_sys.Tuning`` and bench/README.md for why each):

* asyncpg (``pgq run``'s default when asyncpg is installed; the psycopg driver's LISTEN
  watcher holds the connection's lock for up to a second between notifications, so every
  dequeue and status flush on that connection waits behind it: that was the 95 jobs/s),
  through PgQueuer's pool driver, as its performance guide recommends for high throughput,
* the jobs' own writes through an asyncpg pool handed to jobs as a PgQueuer resource,
  sized to the worker's concurrency, without asyncpg's per-release ``RESET`` round trip,
* ``batch_size``, ``max_concurrent_tasks`` and ``restart_on_failure`` from the command line.

Jobs are ``async`` as PgQueuer intends. The ``io`` job awaits one HTTP GET to the bench's
local server (``BENCH_HTTP_URL``) on a keep-alive connection from a small per-process pool.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from pgqueuer import DatabaseRetryEntrypointExecutor, PgQueuer
from pgqueuer.models import Job

from bench import sidetables
from bench.asynchttp import AsyncHttpPool

DRIVER_ENV = "BENCH_PGQ_DRIVER"
POOL_ENV = "BENCH_PGQ_POOL"


def payload(job: Job) -> dict[str, Any]:
    return json.loads(job.payload or b"{}")


async def no_reset(conn: object) -> None:
    """The jobs leave no session state behind, so the pool need not reset a connection."""


async def queue_driver(url: str, kind: str) -> tuple[Any, Any]:
    """The driver PgQueuer dequeues and logs through, and what to close afterwards."""
    if kind == "psycopg":
        import psycopg
        from pgqueuer.db import PsycopgDriver

        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        return PsycopgDriver(conn), conn
    import asyncpg
    from pgqueuer.db import AsyncpgDriver, AsyncpgPoolDriver

    if kind == "asyncpg-pool":
        pool = await asyncpg.create_pool(url, min_size=2, max_size=4)
        return AsyncpgPoolDriver(pool), pool
    conn = await asyncpg.connect(url)
    return AsyncpgDriver(conn), conn


@asynccontextmanager
async def create() -> AsyncIterator[PgQueuer]:
    import asyncpg

    url = os.environ["BENCH_WORKER_URL"]
    driver, closable = await queue_driver(url, os.environ.get(DRIVER_ENV, "asyncpg-pool"))
    side_size = int(os.environ.get(POOL_ENV, "4"))
    side = await asyncpg.create_pool(
        os.environ[sidetables.SIDE_URL_ENV], min_size=side_size, max_size=side_size,
        reset=no_reset,
    )
    http = AsyncHttpPool.from_env()
    pgq = PgQueuer(driver, resources={"db": side})

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        pass

    @pgq.entrypoint("write")
    async def write(job: Job) -> None:
        data = payload(job)
        async with side.acquire() as c:
            await c.execute(
                "INSERT INTO bench_activity (tenant_id, event_type, title, source)"
                " VALUES ($1, 'bench', $2, 'bench')",
                data["t"], f"job {data['i']}",
            )

    @pgq.entrypoint("stamp")
    async def stamp(job: Job) -> None:
        started = time.time()
        async with side.acquire() as c:
            await c.execute(
                "INSERT INTO bench_stamp (i, started, pid) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING",
                int(payload(job)["i"]), started, os.getpid(),
            )

    # Jobs with effects retry, as a deployment would declare them: PgQueuer's own retry
    # executor (5 attempts, exponential backoff from 1 s), like dramatiq's Retries for ours.
    @pgq.entrypoint("effect", executor_factory=DatabaseRetryEntrypointExecutor)
    async def effect(job: Job) -> None:
        async with side.acquire() as c:
            await c.execute(sidetables.EFFECT_SQL_DOLLAR, int(payload(job)["i"]), os.getpid())
        await asyncio.sleep(sidetables.EFFECT_HOLD_S)

    @pgq.entrypoint("io", executor_factory=DatabaseRetryEntrypointExecutor)
    async def io(job: Job) -> None:
        await http.get(int(payload(job)["i"]))
        async with side.acquire() as c:
            await c.execute(sidetables.EFFECT_SQL_DOLLAR, int(payload(job)["i"]), os.getpid())

    @pgq.entrypoint("hang")
    async def hang(job: Job) -> None:
        i = int(payload(job)["i"])
        if await asyncio.to_thread(sidetables.begin_attempt, i):
            await asyncio.sleep(sidetables.HANG_S)
        await asyncio.to_thread(sidetables.finish, i)

    try:
        yield pgq
    finally:
        await http.close()
        await side.close()
        await closable.close()


def main() -> None:
    import pgqueuer

    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--max-concurrent-tasks", type=int, default=None)
    parser.add_argument("--restart-on-failure", action="store_true")
    parser.add_argument("--restart-delay", type=float, default=5.0)
    args = parser.parse_args()
    run = pgqueuer.run(
        create, batch_size=args.batch_size, max_concurrent_tasks=args.max_concurrent_tasks,
        heartbeat_timeout=timedelta(seconds=30), restart_on_failure=args.restart_on_failure,
        restart_delay=timedelta(seconds=args.restart_delay),
    )
    try:
        import uvloop
    except ImportError:  # what `pgq run` falls back to
        asyncio.run(run)
    else:
        uvloop.run(run)


if __name__ == "__main__":
    main()
