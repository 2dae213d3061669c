"""Operations: inspection views in the jobs schema (issue 4)

Every view is ``security_invoker``: it reads ``dramatiq.queue`` with the privileges and
Row-Level Security of whoever queries it, so ``app_user`` sees its own tenant's jobs only,
while the owner (operations) and ``app_worker`` see all. ``jobs.jobs`` gives each row one
status; the other views are built on it, so a job is classified the same way everywhere.

A cancelled job is a finished row like a dead letter (state ``rejected``, so workers never
claim it and retention prunes it) told apart by ``cancelled_at``: retrying dead letters must
not resurrect what an operator cancelled on purpose.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: Seconds without a heartbeat after which a worker counts as dead; a session may set
#: ``pgjobs.lease_seconds`` to match JOBS_LEASE_SECONDS.
LEASE = "coalesce(nullif(current_setting('pgjobs.lease_seconds', true), '')::float8, 10)"

COUNTS = """
    count(*) FILTER (WHERE status = 'waiting') AS waiting,
    count(*) FILTER (WHERE status = 'delayed') AS delayed,
    count(*) FILTER (WHERE status = 'retrying') AS retrying,
    count(*) FILTER (WHERE status = 'active') AS active,
    count(*) FILTER (WHERE status = 'completed') AS completed,
    count(*) FILTER (WHERE status = 'dead') AS dead,
    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
    max(extract(epoch FROM now() - eta)::float8)
        FILTER (WHERE "state" = 'queued' AND eta <= now()) AS oldest_waiting_seconds"""

VIEWS = f"""
CREATE SCHEMA jobs;

CREATE VIEW jobs.jobs WITH (security_invoker = true) AS
SELECT q.message_id,
       regexp_replace(q.queue_name, '\\.DQ$', '') AS queue,
       CASE
           WHEN q."state" = 'queued' AND q.attempts > 0 AND q.last_error IS NOT NULL
               THEN 'retrying'
           WHEN q."state" = 'queued' AND q.queue_name LIKE '%.DQ' THEN 'delayed'
           WHEN q."state" = 'queued' THEN 'waiting'
           WHEN q."state" = 'consumed' THEN 'active'
           WHEN q."state" = 'done' THEN 'completed'
           WHEN q."state" = 'rejected' AND q.cancelled_at IS NOT NULL THEN 'cancelled'
           WHEN q."state" = 'rejected' THEN 'dead'
       END AS status,
       q."state",
       q.actor_name,
       q.tenant_id,
       q.priority,
       q.attempts,
       q.max_attempts,
       q.eta,
       q.enqueued_at,
       q.started_at,
       CASE WHEN q."state" IN ('done', 'rejected') THEN q.mtime END AS finished_at,
       q.cancelled_at,
       q.last_error,
       q.progress,
       q.progress_message,
       q."result",
       q.unique_key,
       q.unique_until,
       q.worker_id,
       q.message -> 'args' AS args,
       q.message -> 'kwargs' AS kwargs,
       q.message -> 'options' AS options
FROM dramatiq.queue q;

CREATE VIEW jobs.workers WITH (security_invoker = true) AS
SELECT w.worker_id,
       w.hostname,
       w.pid,
       w.queues,
       w.started_at,
       w.heartbeat_at,
       extract(epoch FROM now() - w.heartbeat_at)::float8 AS heartbeat_age_seconds,
       w.heartbeat_at > now() - make_interval(secs => {LEASE}) AS alive,
       (SELECT count(*) FROM dramatiq.queue q
        WHERE q."state" = 'consumed' AND q.worker_id = w.worker_id) AS active_jobs
FROM dramatiq.workers w;

CREATE VIEW jobs.queue_stats WITH (security_invoker = true) AS
WITH counts AS (
    SELECT queue, {COUNTS}
    FROM jobs.jobs
    GROUP BY queue
), queues AS (
    SELECT queue FROM counts
    UNION
    SELECT queue_name FROM dramatiq.paused_queues
)
SELECT queues.queue,
       p.queue_name IS NOT NULL AS paused,
       p.paused_at,
       coalesce(c.waiting, 0) AS waiting,
       coalesce(c.delayed, 0) AS delayed,
       coalesce(c.retrying, 0) AS retrying,
       coalesce(c.active, 0) AS active,
       coalesce(c.completed, 0) AS completed,
       coalesce(c.dead, 0) AS dead,
       coalesce(c.cancelled, 0) AS cancelled,
       c.oldest_waiting_seconds
FROM queues
LEFT JOIN counts c ON c.queue = queues.queue
LEFT JOIN dramatiq.paused_queues p ON p.queue_name = queues.queue;

CREATE VIEW jobs.by_tenant WITH (security_invoker = true) AS
SELECT j.tenant_id,
       t.name AS tenant_name,
       j.queue,
       {COUNTS}
FROM jobs.jobs j
LEFT JOIN tenants t ON t.id = j.tenant_id
GROUP BY j.tenant_id, t.name, j.queue;

CREATE VIEW jobs.failed WITH (security_invoker = true) AS
SELECT message_id, queue, actor_name, tenant_id, attempts, max_attempts, last_error,
       finished_at AS failed_at, enqueued_at, args, kwargs, unique_key
FROM jobs.jobs
WHERE status = 'dead'
ORDER BY finished_at DESC;

CREATE VIEW jobs.scheduled WITH (security_invoker = true) AS
SELECT message_id, queue, actor_name, tenant_id, status, eta,
       extract(epoch FROM eta - now())::float8 AS due_in_seconds,
       priority, attempts, last_error, unique_key, args, kwargs
FROM jobs.jobs
WHERE "state" = 'queued' AND eta > now()
ORDER BY eta;

CREATE VIEW jobs.recent WITH (security_invoker = true) AS
SELECT message_id, queue, actor_name, tenant_id, status, attempts, enqueued_at, started_at,
       finished_at, extract(epoch FROM finished_at - started_at)::float8 AS duration_seconds,
       last_error, "result"
FROM jobs.jobs
WHERE finished_at IS NOT NULL
ORDER BY finished_at DESC;

CREATE VIEW jobs.active WITH (security_invoker = true) AS
SELECT j.message_id, j.queue, j.actor_name, j.tenant_id, j.worker_id, w.hostname, w.pid,
       coalesce(w.alive, false) AS worker_alive, j.started_at,
       extract(epoch FROM now() - j.started_at)::float8 AS running_seconds,
       j.attempts, j.max_attempts, j.progress, j.progress_message
FROM jobs.jobs j
LEFT JOIN jobs.workers w ON w.worker_id = j.worker_id
WHERE j.status = 'active'
ORDER BY j.started_at;
"""

VIEW_NAMES = (
    "active", "recent", "scheduled", "failed", "by_tenant", "queue_stats", "workers", "jobs",
)

GRANTS = f"""
GRANT USAGE ON SCHEMA jobs TO app_user, app_worker;
GRANT SELECT ON {", ".join(f"jobs.{v}" for v in VIEW_NAMES)} TO app_user, app_worker;
-- security_invoker views read the base tables as the caller: neither table holds tenant data.
GRANT SELECT ON dramatiq.paused_queues, dramatiq.workers TO app_user;
"""


def upgrade() -> None:
    # A nullable column without a default: no table rewrite, nothing added to the hot path.
    op.execute("ALTER TABLE dramatiq.queue ADD COLUMN cancelled_at timestamptz")
    op.execute(VIEWS)
    op.execute(GRANTS)


def downgrade() -> None:
    op.execute("REVOKE SELECT ON dramatiq.paused_queues, dramatiq.workers FROM app_user")
    op.execute("DROP SCHEMA jobs CASCADE")
    op.execute("ALTER TABLE dramatiq.queue DROP COLUMN cancelled_at")
