"""Inserting jobs: one statement per batch, through the database's own entry points.

Tenant roles (application code, actor sessions) have no INSERT privilege on the job table:
``pgjobs.enqueue`` takes the tenant from the transaction and derives every column from the
message (migration 0012), so a caller can neither name another tenant nor fake a running
job. The scheduler and the broker (``app_worker``) name each job's tenant through
``pgjobs.enqueue_for_tenants``; a system job reaches tenants only through ``pgjobs.fan_out``.
NOTIFYs are sent by those functions and delivered at commit.

The arrays travel in binary (``%(name)b``): as text, psycopg would quote and escape every
double quote of every message's JSON for the array literal, which took about as long as
the server's whole insert of a batch (500 jobs: 40 -> 28 ms a batch here).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from app.store.rows import Inserted

_TENANT = """
SELECT message_id, existing FROM pgjobs.enqueue(%(messages)b::jsonb[], %(delays)b::float8[])
"""
_FOR_TENANTS = """
SELECT message_id, existing
FROM pgjobs.enqueue_for_tenants(%(messages)b::jsonb[], %(delays)b::float8[], %(tenants)b::uuid[])
"""
_FAN_OUT = """
SELECT message_id, existing
FROM pgjobs.fan_out(%(messages)b::jsonb[], %(delays)b::float8[], %(tenants)b::uuid[])
"""


def _run(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> list[Inserted]:
    with conn.cursor(row_factory=class_row(Inserted)) as cur:
        return cur.execute(query, params).fetchall()


def insert(
    conn: psycopg.Connection[Any], messages: Sequence[dict[str, Any]],
    delays: Sequence[float | None],
) -> list[Inserted]:
    """Enqueue for the tenant of ``conn``'s transaction (application code, actors)."""
    return _run(conn, _TENANT, {"messages": [Jsonb(m) for m in messages],
                                "delays": list(delays)})


def insert_for_tenants(
    conn: psycopg.Connection[Any], messages: Sequence[dict[str, Any]],
    delays: Sequence[float | None], tenants: Sequence[uuid.UUID | str | None],
) -> list[Inserted]:
    """Enqueue naming each job's tenant (None: a system job). ``app_worker`` only."""
    return _run(conn, _FOR_TENANTS, {"messages": [Jsonb(m) for m in messages],
                                     "delays": list(delays), "tenants": list(tenants)})


def fan_out(
    conn: psycopg.Connection[Any], messages: Sequence[dict[str, Any]],
    delays: Sequence[float | None], tenants: Sequence[uuid.UUID | str],
) -> list[Inserted]:
    """Enqueue for named tenants from inside a system (tenant_free) job's session."""
    return _run(conn, _FAN_OUT, {"messages": [Jsonb(m) for m in messages],
                                 "delays": list(delays), "tenants": list(tenants)})
