"""The job's own transaction: open its tenant context, complete it with the actor's writes.

An actor's session (``app_actor``) gets its tenant from ``pgjobs.enter_job``, which checks
the claim's lease and signs the context (migration 0012): set in the same statement, for
this transaction only. The completion runs in that transaction and fails with SQLSTATE
``PJ001`` when the lease was lost (the job was rescued): the transaction then rolls back,
so a job's writes can never commit without its completion, or twice.

Round trips are most of a short job's cost (~0.1 ms each, against ~0.1 ms for the job's own
statement), so each end of the transaction is one: ``BEGIN`` with the context, and the
completion with the session reset and ``COMMIT``. Both are sent as one simple-protocol query
with their values quoted by psycopg (``sql.quote``), as PostgreSQL runs a multi-statement
query: in order, stopping at the first error.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

#: SQLSTATE raised when the lease of a job is no longer valid.
LEASE_LOST = "PJ001"

ENTER = """
SELECT set_config('app.tenant_id', coalesce(e.tenant_id::text, ''), true),
       set_config('pgjobs.context', e.context, true)
FROM pgjobs.enter_job({id}, {lease}) e
"""

COMPLETE = "SELECT pgjobs.complete_job({id}, {lease}, {result}, {started})"


def enter(conn: psycopg.Connection[Any], job: uuid.UUID | str, lease: str) -> None:
    """Open the job's tenant context in a new transaction on ``conn``.

    On an autocommit connection (the actor engine's: its transactions are explicit) the
    ``BEGIN`` travels with the context, one round trip; otherwise psycopg sends its own.
    """
    query = _bind(conn, ENTER, id=job, lease=lease)
    if conn.autocommit:
        query = "BEGIN; " + query
    conn.execute(query.encode(), prepare=False)


def complete_and_commit(
    conn: psycopg.Connection[Any], job: uuid.UUID | str, lease: str, result: Any,
    started: datetime | None = None, *, reset: Sequence[str] = (),
) -> None:
    """Complete the job, run ``reset`` (statements that clear the session for the pool's
    next user), and commit: one round trip. ``started``: when the attempt started running
    (None: the row keeps its claim's time).

    Any error rolls the whole transaction back, the actor's writes with it: in particular
    ``psycopg.Error`` with sqlstate ``LEASE_LOST`` when the job was rescued meanwhile.
    """
    query = _bind(conn, COMPLETE, id=job, lease=lease,
                  result=None if result is None else Jsonb(result), started=started)
    conn.execute("; ".join((query, *reset, "COMMIT")).encode(), prepare=False)


#: Hex digits and dashes (a job id, a lease): nothing to escape.
_PLAIN = re.compile(r"[0-9A-Fa-f-]{1,128}")


def _bind(conn: psycopg.Connection[Any], template: str, **values: Any) -> str:
    return template.format(**{name: _literal(conn, value) for name, value in values.items()})


def _literal(conn: psycopg.Connection[Any], value: Any) -> str:
    """``value`` as an SQL literal. The shapes a job's own values have (its id, a lease as
    ``lease_token`` makes them: hex; a start time; no result) are formatted directly, as
    they cannot hold a quote; anything else is quoted by psycopg."""
    if value is None:
        return "NULL"
    if isinstance(value, uuid.UUID):
        return f"'{value}'::uuid"
    if isinstance(value, str) and _PLAIN.fullmatch(value):
        return f"'{value}'"
    if isinstance(value, datetime) and value.tzinfo is not None:
        return f"'{value.isoformat()}'::timestamptz"
    return sql.quote(value, conn)


def is_lease_lost(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.Error) and getattr(exc, "sqlstate", None) == LEASE_LOST
