"""Worker module for our broker (run by ``dramatiq``), also imported by the bench to enqueue.

The broker comes from ``app.jobs.setup.build_broker`` with its default middleware, exactly
as the application's workers get it; the bench only adds its own actors.
"""

from __future__ import annotations

import logging
import os
import time

import dramatiq
from sqlalchemy import text

from app.jobs import current_session, declare_queue, in_session, job
from app.jobs.setup import build_broker
from bench import asynchttp, sidetables

broker = build_broker(os.environ["BENCH_WORKER_URL"])
dramatiq.set_broker(broker)

if os.environ.get("BENCH_QUIET_EVENTS"):
    # Profiling aid only (``python -m bench.profile --quiet-events``): drop the per-job INFO
    # event lines, to measure what they cost. ``python -m bench`` never sets it.
    logging.getLogger("pgjobs.events").setLevel(logging.WARNING)

if os.environ.get("BENCH_KEEP_FINISHED"):
    # table_size: keep the million finished rows it puts in the table, as the peers do (they
    # prune nothing), so the drain runs beside them rather than beside their deletion.
    declare_queue("bench", completed_max_age=None, completed_max_count=None)

_WRITE = text(
    "INSERT INTO activity_events (tenant_id, event_type, title, source)"
    " VALUES (current_setting('app.tenant_id')::uuid, 'bench', :title, 'bench')"
)


@job(actor_name="bench.noop", queue_name="bench", tenant_free=True)
def noop(i: int) -> None:
    pass


@job(actor_name="bench.write", queue_name="bench")
def write(i: int) -> None:
    """One row in the job's tenant, under RLS; commits together with the job's completion."""
    current_session().execute(_WRITE, {"title": f"job {i}"})


@job(actor_name="bench.stamp", queue_name="bench", tenant_free=True)
def stamp(i: int) -> None:
    sidetables.stamp(i)


@job(actor_name="bench.hang", queue_name="bench", tenant_free=True)
def hang(i: int) -> None:
    sidetables.hang_once(i)


_EFFECT = text(sidetables.EFFECT_SQL.replace("%s", ":i", 1).replace("%s", ":pid", 1))


@job(actor_name="bench.effect", queue_name="bench")
def effect(i: int) -> None:
    """The effect row commits with the job's completion: a re-run can only follow a rollback."""
    current_session().execute(_EFFECT, {"i": i, "pid": os.getpid()})
    time.sleep(sidetables.EFFECT_HOLD_S)


@job(actor_name="bench.io", queue_name="bench")
def io(i: int) -> None:
    """An I/O-bound job on a worker thread: a 50 ms HTTP call, then its effect."""
    asynchttp.get(i)
    current_session().execute(_EFFECT, {"i": i, "pid": os.getpid()})


def has_async_actors() -> bool:
    """Whether our broker runs ``async def`` actors (dramatiq's AsyncIO middleware or an
    equivalent the broker declares with ``supports_async_actors``)."""
    from dramatiq.middleware.asyncio import AsyncIO

    return bool(getattr(broker, "supports_async_actors", False)) or any(
        isinstance(m, AsyncIO) for m in broker.middleware
    )


ACTORS = {"noop": noop, "write": write, "stamp": stamp, "hang": hang, "effect": effect,
          "io": io}

if has_async_actors():
    _http = asynchttp.AsyncHttpPool.from_env()

    @job(actor_name="bench.io_async", queue_name="bench")
    async def io_async(i: int) -> None:
        """The same job as an ``async def`` actor: the HTTP call awaits on the event loop."""
        await _http.get(i)
        await in_session(lambda s: s.execute(_EFFECT, {"i": i, "pid": os.getpid()}))

    ACTORS["io_async"] = io_async
