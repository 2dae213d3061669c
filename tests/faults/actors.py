"""Test actors of the fault tests (queue ``faults``), also run by real worker processes.

``dramatiq tests.faults.actors`` loads only these: the broker is configured first, as
``app.actors`` does, so every actor binds to it. Each job writes one row under its tenant's
RLS context through ``current_session()``: that row commits with the job's completion or not
at all, so counting rows per job id counts the job's committed database effects.
"""

from __future__ import annotations

import uuid

import psycopg
from sqlalchemy import text

from app.jobs.setup import configure

broker = configure()

from app.jobs import current_job, current_session, current_tenant, job  # noqa: E402

QUEUE = "faults"
TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"

#: The tenant table the jobs write to. No unique constraint on ``message_id`` on purpose:
#: a duplicated effect must show up as a second row, not as a failed (and retried) job.
EFFECTS_DDL = f"""
CREATE TABLE fault_effects (
    message_id uuid NOT NULL,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    n integer NOT NULL,
    size integer NOT NULL DEFAULT 0,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
ALTER TABLE fault_effects ENABLE ROW LEVEL SECURITY;
ALTER TABLE fault_effects FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON fault_effects
    USING (tenant_id = {TENANT}) WITH CHECK (tenant_id = {TENANT});
GRANT SELECT, INSERT ON fault_effects TO app_worker, app_actor;
"""

_WRITE = text(
    "INSERT INTO fault_effects (message_id, tenant_id, n, size) "
    "VALUES (:id, :tenant, :n, :size)"
)


@job(actor_name="faults.write", queue_name=QUEUE, max_attempts=20, min_backoff=100,
     max_backoff=1_000)
def write(n: int, blob: str = "") -> None:
    """Write this job's one row in its tenant's context (committed with its completion).

    Many attempts with short backoff: an attempt that fails because the database went away
    is retried soon, and a job only ends as a dead letter if it is really broken.
    """
    ctx = current_job()
    assert ctx is not None
    current_session().execute(_WRITE, {
        "id": uuid.UUID(ctx.message.message_id), "tenant": current_tenant(), "n": n,
        "size": len(blob),
    })


@job(actor_name="faults.cut_own_connection", queue_name=QUEUE, max_attempts=3,
     min_backoff=100)
def cut_own_connection(n: int) -> None:
    """Write the row, then (first attempt only) have the job's own connection terminated.

    The job's transaction can then neither commit nor roll back: the attempt must count as
    failed and be retried, never be acked as done without its row.
    """
    ctx = current_job()
    assert ctx is not None
    write(n)
    if ctx.message.attempt > 1:
        return
    session = current_session()
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
    with psycopg.connect(broker.url, autocommit=True) as conn:  # same role: may terminate it
        conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
