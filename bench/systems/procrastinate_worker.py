"""Procrastinate app for its worker (``procrastinate --app=...procrastinate_worker.app worker``).

Tasks are ``async`` (procrastinate runs sync tasks in threads, which only adds cost here).
"""

from __future__ import annotations

import asyncio
import os
import time

import procrastinate
from psycopg_pool import AsyncConnectionPool

from bench import sidetables
from bench.asynchttp import AsyncHttpPool

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("BENCH_WORKER_URL", ""))
)
_side: AsyncConnectionPool | None = None
_http: AsyncHttpPool | None = None


async def side() -> AsyncConnectionPool:
    global _side
    if _side is None:
        _side = AsyncConnectionPool(
            os.environ[sidetables.SIDE_URL_ENV], min_size=4, max_size=4, open=False,
            kwargs={"autocommit": True},
        )
        await _side.open()
    return _side


@app.task(name="bench.noop", queue="bench")
async def noop(i: int) -> None:
    pass


@app.task(name="bench.write", queue="bench")
async def write(i: int, t: str) -> None:
    async with (await side()).connection() as c:
        await c.execute(
            "INSERT INTO bench_activity (tenant_id, event_type, title, source)"
            " VALUES (%s, 'bench', %s, 'bench')",
            (t, f"job {i}"),
        )


@app.task(name="bench.stamp", queue="bench")
async def stamp(i: int) -> None:
    started = time.time()
    async with (await side()).connection() as c:
        await c.execute(
            "INSERT INTO bench_stamp (i, started, pid) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (i, started, os.getpid()),
        )


@app.task(name="bench.hang", queue="bench")
async def hang(i: int) -> None:
    if await asyncio.to_thread(sidetables.begin_attempt, i):
        await asyncio.sleep(sidetables.HANG_S)
    await asyncio.to_thread(sidetables.finish, i)


# Jobs with effects retry, as a deployment would declare them (like Retries for dramatiq).
RETRY = procrastinate.RetryStrategy(max_attempts=5, exponential_wait=1)


@app.task(name="bench.effect", queue="bench", retry=RETRY)
async def effect(i: int) -> None:
    async with (await side()).connection() as c:
        await c.execute(sidetables.EFFECT_SQL, (i, os.getpid()))
    await asyncio.sleep(sidetables.EFFECT_HOLD_S)


@app.task(name="bench.io", queue="bench", retry=RETRY)
async def io(i: int) -> None:
    global _http
    if _http is None:
        _http = AsyncHttpPool.from_env()
    await _http.get(i)
    async with (await side()).connection() as c:
        await c.execute(sidetables.EFFECT_SQL, (i, os.getpid()))
