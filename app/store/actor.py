"""The job's own transaction: open its tenant context, complete it with the actor's writes.

An actor's session (``app_actor``) gets its tenant from ``pgjobs.enter_job``, which checks
the claim's lease and signs the context (migration 0012): set in the same statement, for
this transaction only. The completion runs in that transaction and fails with SQLSTATE
``PJ001`` when the lease was lost (the job was rescued): the COMMIT sent with it then rolls
everything back, so a job's writes can never commit without its completion, or twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

#: SQLSTATE raised when the lease of a job is no longer valid.
LEASE_LOST = "PJ001"

ENTER = """
SELECT set_config('app.tenant_id', coalesce(e.tenant_id::text, ''), true),
       set_config('pgjobs.context', e.context, true)
FROM pgjobs.enter_job(%(id)s, %(lease)s) e
"""

COMPLETE = "SELECT pgjobs.complete_job(%(id)s, %(lease)s, %(result)s, %(started)s)"


def enter(conn: psycopg.Connection[Any], job: uuid.UUID | str, lease: str) -> None:
    """Open the job's tenant context in ``conn``'s current transaction."""
    conn.execute(ENTER, {"id": job, "lease": lease})


def complete_and_commit(
    conn: psycopg.Connection[Any], job: uuid.UUID | str, lease: str, result: Any,
    started: datetime | None = None,
) -> None:
    """Complete the job and commit, pipelined (one round trip). ``started``: when the
    attempt started running (None: the row keeps its claim's time).

    Raises ``psycopg.Error`` with sqlstate ``LEASE_LOST`` when the job was rescued meanwhile;
    nothing is committed then.
    """
    params = {"id": job, "lease": lease, "result": None if result is None else Jsonb(result),
              "started": started}
    with conn.pipeline():
        conn.execute(COMPLETE, params)
        conn.commit()


def is_lease_lost(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.Error) and getattr(exc, "sqlstate", None) == LEASE_LOST
