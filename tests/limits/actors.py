"""Worker module for the limits tests and measurements (``dramatiq tests.limits.actors``).

Each queue carries the limits its test needs. Probe actors record their own start and end
in ``limit_probe`` on a connection of their own, committed at once (so a killed job's start
is kept): the tests compute rates and overlaps from what the jobs saw, not from the broker.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import dramatiq
import psycopg

from app.config import get_settings
from app.jobs import current_job, job
from app.jobs.setup import configure

broker = configure()

PROBE_TABLE = """
CREATE TABLE IF NOT EXISTS limit_probe (
    id bigserial PRIMARY KEY,
    message_id uuid NOT NULL,
    queue text NOT NULL,
    key text NOT NULL,
    attempt integer NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz
);
GRANT SELECT, INSERT, UPDATE ON limit_probe TO app_worker, app_actor;
GRANT USAGE ON SEQUENCE limit_probe_id_seq TO app_worker, app_actor;
"""

#: A first attempt of a ``hang_first`` probe sleeps this long: the test kills it before.
HANG_SECONDS = 120.0

_local = threading.local()


def _probe_conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(get_settings().worker_database_url, autocommit=True)
        _local.conn = conn
    return conn


def record(queue: str, key: str, seconds: float, hang_first: bool) -> None:
    started = datetime.now(UTC)  # before any I/O: opening the probe connection takes time
    ctx = current_job()
    assert ctx is not None
    message = ctx.message
    conn = _probe_conn()
    row = conn.execute(
        "INSERT INTO limit_probe (message_id, queue, key, attempt, started_at)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (message.message_id, queue, key, message.attempt, started),
    ).fetchone()
    assert row is not None
    time.sleep(HANG_SECONDS if hang_first and message.attempt == 1 else seconds)
    conn.execute("UPDATE limit_probe SET ended_at = clock_timestamp() WHERE id = %s", (row[0],))


def _key_arg(key: str, *args: Any, **kwargs: Any) -> str:
    return key


def probe_actor(queue: str, *, tenant_key: bool = False, **limits: Any) -> dramatiq.Actor:
    """A probe on ``queue`` with ``limits``; its key is its first argument unless
    ``tenant_key`` (then the job's tenant, the default key)."""

    def probe(key: str, seconds: float = 0.0, hang_first: bool = False) -> None:
        record(queue, key, seconds, hang_first)

    if not tenant_key:
        limits["limit_key"] = _key_arg
    return job(actor_name=f"limits.probe.{queue}", queue_name=queue,
               tenant_free=not tenant_key, max_attempts=3, **limits)(probe)


@job(actor_name="limits.noop", queue_name="lim_none", tenant_free=True)
def noop(i: int) -> None:
    pass


@job(actor_name="limits.noop_fair", queue_name="lim_fair", tenant_free=True, fair=True)
def noop_fair(i: int) -> None:
    pass


# Limits that never bind: what checking per-key rate and concurrency costs a claim.
@job(actor_name="limits.noop_keyed", queue_name="lim_keyed", tenant_free=True,
     rate_limit=(1_000_000, 1.0), concurrency=1_000_000)
def noop_keyed(i: int) -> None:
    pass


# The flooding-tenant scenario: tenants are the keys, served round-robin.
@job(actor_name="limits.flood", queue_name="lim_flood", fair=True)
def flood(i: int) -> None:
    pass


flood_probe = probe_actor("lim_flood", tenant_key=True)
rate_probe = probe_actor("lim_rate", rate_limit=(10, 1.0))
concurrency_probe = probe_actor("lim_conc", concurrency=2, queue_concurrency=3)
kill_probe = probe_actor("lim_kill", concurrency=1)
