"""Worker factory for PgQueuer (run by ``pgq run bench.systems.pgqueuer_worker:create``).

Jobs are ``async`` as PgQueuer intends; the ``write`` job inserts through a small async
connection pool so concurrent jobs don't queue up on one connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from pgqueuer import PgQueuer
from pgqueuer.db import PsycopgDriver
from pgqueuer.models import Job
from psycopg_pool import AsyncConnectionPool

from bench import sidetables


def payload(job: Job) -> dict[str, object]:
    return json.loads(job.payload or b"{}")


@asynccontextmanager
async def create() -> AsyncIterator[PgQueuer]:
    url = os.environ["BENCH_WORKER_URL"]
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    side = AsyncConnectionPool(
        os.environ[sidetables.SIDE_URL_ENV], min_size=4, max_size=4, open=False,
        kwargs={"autocommit": True},
    )
    await side.open()
    pgq = PgQueuer(PsycopgDriver(conn))

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        pass

    @pgq.entrypoint("write")
    async def write(job: Job) -> None:
        data = payload(job)
        async with side.connection() as c:
            await c.execute(
                "INSERT INTO bench_activity (tenant_id, event_type, title, source)"
                " VALUES (%s, 'bench', %s, 'bench')",
                (data["t"], f"job {data['i']}"),
            )

    @pgq.entrypoint("stamp")
    async def stamp(job: Job) -> None:
        started = time.time()
        async with side.connection() as c:
            await c.execute(
                "INSERT INTO bench_stamp (i, started, pid) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (payload(job)["i"], started, os.getpid()),
            )

    @pgq.entrypoint("hang")
    async def hang(job: Job) -> None:
        i = int(payload(job)["i"])  # type: ignore[call-overload]
        if await asyncio.to_thread(sidetables.begin_attempt, i):
            await asyncio.sleep(sidetables.HANG_S)
        await asyncio.to_thread(sidetables.finish, i)

    try:
        yield pgq
    finally:
        await side.close()
        await conn.close()


def main() -> None:
    """What ``pgq run`` does (its CLI breaks on the default ``--log-level`` in 1.6.0)."""
    import argparse
    from datetime import timedelta

    import pgqueuer

    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(pgqueuer.run(create, batch_size=args.batch_size,
                             heartbeat_timeout=timedelta(seconds=30)))


if __name__ == "__main__":
    main()
