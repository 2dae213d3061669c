"""Worker module for our broker (run by ``dramatiq``), also imported by the bench to enqueue.

The broker comes from ``app.jobs.setup.build_broker`` with its default middleware, exactly
as the application's workers get it; the bench only adds its own actors.
"""

from __future__ import annotations

import logging
import os

import dramatiq
from sqlalchemy import text

from app.jobs import current_session, job
from app.jobs.setup import build_broker
from bench import sidetables

broker = build_broker(os.environ["BENCH_WORKER_URL"])
dramatiq.set_broker(broker)

if os.environ.get("BENCH_QUIET_EVENTS"):
    # Profiling aid only (``python -m bench.profile --quiet-events``): drop the per-job INFO
    # event lines, to measure what they cost. ``python -m bench`` never sets it.
    logging.getLogger("pgjobs.events").setLevel(logging.WARNING)

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


ACTORS = {"noop": noop, "write": write, "stamp": stamp, "hang": hang}
