"""Tables the bench actors write to, identical for every system.

* ``bench_stamp``: when a latency or probe job started (epoch seconds, the worker's clock;
  the enqueuer is on the same machine, so ``started - committed`` is the enqueue->start
  latency) and in which process (so a probe tells which worker is up).
* ``bench_attempt`` / ``bench_done``: the orphan job's attempts and its completion.
* ``bench_effect``: one row per job that made its effect, counting repeated runs (chaos, I/O).
* ``bench_activity``: the "write one row" job of systems without tenants; shaped like our
  ``activity_events`` (uuid key, tenant, a few text columns, an index) so the row costs alike.

Actors reach them through :func:`side_conn`, a per-thread autocommit connection to the
bench database as its owner, so the extra write costs the same in every system.
"""

from __future__ import annotations

import os
import threading
import time

import psycopg

DDL = """
CREATE TABLE IF NOT EXISTS bench_stamp (
    i integer PRIMARY KEY, started double precision NOT NULL, pid integer NOT NULL);
CREATE TABLE IF NOT EXISTS bench_attempt (
    i integer NOT NULL, pid integer NOT NULL, started double precision NOT NULL);
CREATE TABLE IF NOT EXISTS bench_done (i integer PRIMARY KEY, finished double precision NOT NULL);
CREATE TABLE IF NOT EXISTS bench_activity (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    event_type text NOT NULL,
    title text NOT NULL,
    source text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS bench_activity_tenant_idx ON bench_activity (tenant_id, created_at);
CREATE TABLE IF NOT EXISTS bench_effect (
    i integer PRIMARY KEY, runs integer NOT NULL DEFAULT 1, pid integer NOT NULL,
    at double precision NOT NULL DEFAULT extract(epoch FROM clock_timestamp()));
GRANT SELECT, INSERT, UPDATE ON bench_effect TO PUBLIC;
"""

# One row per job that ran to its effect; a second run of the same job counts in ``runs``, so
# lost effects are missing rows and duplicated effects are ``runs - 1`` (the chaos scenario).
EFFECT_SQL = (
    "INSERT INTO bench_effect (i, pid) VALUES (%s, %s)"
    " ON CONFLICT (i) DO UPDATE SET runs = bench_effect.runs + 1"
)
EFFECT_SQL_DOLLAR = EFFECT_SQL.replace("%s", "$1", 1).replace("%s", "$2", 1)

SIDE_URL_ENV = "BENCH_DB_URL"
TABLES = ("bench_stamp", "bench_attempt", "bench_done", "bench_activity", "bench_effect")
HANG_S = 3600.0  # how long the orphan job's first attempt holds on (it gets killed first)

_local = threading.local()


def install(conn: psycopg.Connection) -> None:
    conn.execute(DDL)


def side_conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(os.environ[SIDE_URL_ENV], autocommit=True)
    return conn


def stamp(i: int) -> None:
    """Record that latency job ``i`` started now."""
    side_conn().execute(
        "INSERT INTO bench_stamp (i, started, pid) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (i, time.time(), os.getpid()),
    )


def plain_write(i: int, tenant: str) -> None:
    """One row, no tenant context: what a system without RLS support does."""
    side_conn().execute(
        "INSERT INTO bench_activity (tenant_id, event_type, title, source)"
        " VALUES (%s, 'bench', %s, 'bench')",
        (tenant, f"job {i}"),
    )


def effect(i: int) -> None:
    """Record job ``i``'s effect on the side connection (systems that cannot do it in the
    job's own transaction)."""
    side_conn().execute(EFFECT_SQL, (i, os.getpid()))
    time.sleep(EFFECT_HOLD_S)


#: How long an ``effect`` job goes on after making its effect (chaos sets 100 ms): a fault
#: then finds jobs whose effect exists but whose completion does not yet, which is where
#: at-least-once systems duplicate and ours (effect and completion in one transaction) must
#: not.
EFFECT_HOLD_ENV = "BENCH_EFFECT_HOLD_MS"
EFFECT_HOLD_S = float(os.environ.get(EFFECT_HOLD_ENV, "0")) / 1000


def begin_attempt(i: int) -> bool:
    """Record an attempt at the orphan job; True when it is the first one."""
    conn = side_conn()
    conn.execute(
        "INSERT INTO bench_attempt (i, pid, started) VALUES (%s, %s, %s)",
        (i, os.getpid(), time.time()),
    )
    row = conn.execute("SELECT count(*) FROM bench_attempt WHERE i = %s", (i,)).fetchone()
    return bool(row and row[0] == 1)


def finish(i: int) -> None:
    side_conn().execute(
        "INSERT INTO bench_done (i, finished) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (i, time.time()),
    )


def hang_once(i: int) -> None:
    """The orphan job: the first attempt hangs (until its worker is killed), a retry finishes."""
    if begin_attempt(i):
        time.sleep(HANG_S)
    finish(i)
