"""Read-only inspection: stats per queue or tenant, dead letters, one job, listings."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from app.ops.errors import UnknownJob
from app.store import operator as queries

Conn = psycopg.Connection[dict[str, Any]]
Row = dict[str, Any]


def queue_stats(conn: Conn, *, queue: str | None = None) -> list[Row]:
    return conn.execute(queries.STATS, {"queue": queue}).fetchall()


def tenant_stats(
    conn: Conn, *, tenant: uuid.UUID | None = None, queue: str | None = None
) -> list[Row]:
    return conn.execute(queries.BY_TENANT, {"tenant": tenant, "queue": queue}).fetchall()


def worker_counts(conn: Conn) -> Row:
    row = conn.execute(queries.WORKER_COUNTS).fetchone()
    return row or {"alive": 0, "registered": 0}


def failed(
    conn: Conn, *, queue: str | None = None, tenant: uuid.UUID | None = None,
    actor: str | None = None, limit: int = 50,
) -> list[Row]:
    """Dead letters, newest first."""
    params = {"queue": queue, "tenant": tenant, "actor": actor, "limit": limit}
    return conn.execute(queries.FAILED, params).fetchall()


LISTINGS = {
    "active": queries.ACTIVE,
    "scheduled": queries.SCHEDULED,
    "recent": queries.RECENT,
}


def listing(
    conn: Conn, view: str, *, queue: str | None = None, tenant: uuid.UUID | None = None,
    limit: int = 50,
) -> list[Row]:
    """Rows of ``jobs.active``, ``jobs.scheduled`` or ``jobs.recent``."""
    params = {"queue": queue, "tenant": tenant, "limit": limit}
    return conn.execute(LISTINGS[view], params).fetchall()


def workers(conn: Conn) -> list[Row]:
    return conn.execute(queries.WORKERS).fetchall()


def show(conn: Conn, message_id: uuid.UUID) -> Row:
    """Every column of one job, its derived status and its worker; ``UnknownJob`` if absent."""
    row = conn.execute(queries.SHOW, {"id": message_id}).fetchone()
    if row is None:
        raise UnknownJob(f"no job with id {message_id}")
    return row
