"""Every SQL statement of the dashboard, in one place, with bound parameters only.

Reads go through the ``jobs`` and ``scheduler`` views where a view can be served by an index
(one job by id, workers, limits, schedules). Listings and counts pick their rows from
``dramatiq.queue`` with predicates the partial indexes answer, then read those rows through
``jobs.jobs``, so a job's status is still classified in one place (migration 0002). The same
statements run as the owner (operators) and as ``app_user`` in a tenant's transaction
(tenant admins): Row-Level Security, not these queries, decides what a tenant admin sees.

Nothing here counts the whole table: waiting, delayed and running jobs are small sets behind
partial indexes; finished jobs are only counted over the last hour, one queue at a time on
``queue_finished_idx (queue_name, state, mtime, message_id)`` (operators) or on a tenant's own
``queue_tenant_finished_idx (tenant_id, mtime)`` (tenant admins).
"""

from __future__ import annotations

from dataclasses import dataclass

SET_LEASE = "SELECT set_config('pgjobs.lease_seconds', %(lease)s, true)"

# -- queues ------------------------------------------------------------------------------

# Every queue name in use, found with a loose index scan (one index probe per queue) of the
# finished and waiting indexes instead of a DISTINCT over every row; '.DQ' sides included.
QUEUE_NAMES = """
WITH RECURSIVE finished AS (
    (SELECT queue_name FROM dramatiq.queue WHERE "state" IN ('done', 'rejected')
     ORDER BY queue_name LIMIT 1)
    UNION ALL
    SELECT (SELECT q.queue_name FROM dramatiq.queue q
            WHERE q."state" IN ('done', 'rejected') AND q.queue_name > f.queue_name
            ORDER BY q.queue_name LIMIT 1)
    FROM finished f WHERE f.queue_name IS NOT NULL
), waiting AS (
    (SELECT queue_name FROM dramatiq.queue WHERE "state" = 'queued'
     ORDER BY queue_name LIMIT 1)
    UNION ALL
    SELECT (SELECT q.queue_name FROM dramatiq.queue q
            WHERE q."state" = 'queued' AND q.queue_name > w.queue_name
            ORDER BY q.queue_name LIMIT 1)
    FROM waiting w WHERE w.queue_name IS NOT NULL
)
SELECT DISTINCT regexp_replace(name, '\\.DQ$', '') AS queue FROM (
    SELECT queue_name FROM finished
    UNION ALL SELECT queue_name FROM waiting
    UNION ALL SELECT queue_name FROM dramatiq.queue WHERE "state" = 'consumed'
    UNION ALL SELECT queue_name FROM dramatiq.paused_queues
    UNION ALL SELECT unnest(queues) FROM dramatiq.workers
) AS names(name)
WHERE name IS NOT NULL
ORDER BY 1
"""

# A tenant's queues: what workers serve or is paused, plus where its own live jobs and its
# last hour's finished jobs are (its rows only, through RLS and its own index).
TENANT_QUEUE_NAMES = """
SELECT DISTINCT regexp_replace(name, '\\.DQ$', '') AS queue FROM (
    SELECT queue_name FROM dramatiq.queue WHERE "state" = 'queued'
    UNION ALL SELECT queue_name FROM dramatiq.queue WHERE "state" = 'consumed'
    UNION ALL SELECT queue_name FROM dramatiq.queue
        WHERE tenant_id = (SELECT pgjobs.current_tenant())
          AND "state" IN ('done', 'rejected') AND mtime > now() - interval '1 hour'
    UNION ALL SELECT queue_name FROM dramatiq.paused_queues
    UNION ALL SELECT unnest(queues) FROM dramatiq.workers
) AS names(name)
ORDER BY 1
"""

# Waiting and delayed jobs per queue name ('.DQ': delayed) and the oldest due job: counted
# on queue_claim_idx (queue_name, priority, eta) alone, an index-only scan where the
# visibility map allows; running jobs are a handful.
QUEUED = """
SELECT queue_name, count(*) AS jobs,
       extract(epoch FROM now() - min(eta) FILTER (WHERE eta <= now()))::float8
           AS oldest_due_seconds
FROM dramatiq.queue WHERE "state" = 'queued'
GROUP BY queue_name
"""

RUNNING = """
SELECT queue_name, count(*) AS jobs FROM dramatiq.queue WHERE "state" = 'consumed'
GROUP BY queue_name
"""

PAUSED = "SELECT queue_name AS queue, paused_at FROM dramatiq.paused_queues"

#: One minute per sparkline point over the last hour.
BUCKETS = 60

# Completed jobs of the last hour per queue and minute, one queue name at a time: an index
# range per name on queue_finished_idx (queue_name, state, mtime, ...), index-only where the
# visibility map allows (``names`` holds each queue and its '.DQ' side).
COMPLETED_BY_MINUTE = """
SELECT regexp_replace(n.name, '\\.DQ$', '') AS queue, m.minute, m.completed
FROM unnest(%(names)s::text[]) AS n(name)
CROSS JOIN LATERAL (
    SELECT floor(extract(epoch FROM now() - q.mtime) / 60)::int AS minute,
           count(*) AS completed
    FROM dramatiq.queue q
    WHERE q.queue_name = n.name AND q."state" = 'done' AND q.mtime > now() - interval '1 hour'
    GROUP BY 1
) m
"""

# The same for one tenant, on its own index (tenant_id, mtime) INCLUDE (queue_name, state).
TENANT_COMPLETED_BY_MINUTE = """
SELECT regexp_replace(q.queue_name, '\\.DQ$', '') AS queue,
       floor(extract(epoch FROM now() - q.mtime) / 60)::int AS minute, count(*) AS completed
FROM dramatiq.queue q
WHERE q.tenant_id = (SELECT pgjobs.current_tenant())
  AND q."state" = 'done' AND q.mtime > now() - interval '1 hour'
GROUP BY 1, 2
"""

# Failed attempts (retries and deaths) of the last hour per queue and minute: the failure
# sparkline and the "dead in the last hour" count (a job dies in its last failed attempt).
FAILURES_BY_MINUTE = """
SELECT queue, floor(extract(epoch FROM now() - ended_at) / 60)::int AS minute,
       count(*) AS failures, count(*) FILTER (WHERE outcome = 'dead') AS dead
FROM dashboard_job_attempts
WHERE ended_at > now() - interval '1 hour'
GROUP BY 1, 2
"""

# -- job listings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """How one status is found in ``dramatiq.queue`` and in which order it is listed."""

    predicate: str
    #: The column the list is ordered and filtered by (time range, keyset cursor).
    column: str
    descending: bool
    #: Finished rows: served per queue name by queue_finished_idx, per tenant by its index.
    finished: bool
    state: str


RETRYING = "q.attempts > 0 AND q.last_error IS NOT NULL"

STATUSES: dict[str, Status] = {
    "waiting": Status(f"q.queue_name NOT LIKE '%%.DQ' AND NOT ({RETRYING})", "eta", False,
                      False, "queued"),
    "delayed": Status(f"q.queue_name LIKE '%%.DQ' AND NOT ({RETRYING})", "eta", False, False,
                      "queued"),
    "retrying": Status(RETRYING, "eta", False, False, "queued"),
    "active": Status("true", "started_at", False, False, "consumed"),
    "completed": Status("true", "mtime", True, True, "done"),
    "dead": Status("q.cancelled_at IS NULL", "mtime", True, True, "rejected"),
    "cancelled": Status("q.cancelled_at IS NOT NULL", "mtime", True, True, "rejected"),
}

#: Optional filters: each one is added only when given, so every plan stays specific.
FILTERS = {
    "queue": "q.queue_name IN (%(queue)s, %(queue)s || '.DQ')",
    "actor": "q.actor_name = %(actor)s",
    "tenant": "q.tenant_id = %(tenant)s",
    "error": "q.last_error ILIKE %(error)s",
    "worker": "q.worker_id = %(worker)s",
}

# What a list shows of each job, read through the view.
LIST_COLUMNS = """
SELECT j.message_id, j.queue, j.status, j.actor_name, j.tenant_id, j.priority, j.attempts,
       j.max_attempts, j.eta, j.enqueued_at, j.started_at, j.finished_at, j.last_error,
       j.progress, k.sort_at
FROM ({ids}) k
JOIN jobs.jobs j ON j.message_id = k.message_id
ORDER BY k.sort_at {direction}, k.message_id {direction}
"""


#: What the outer filters of a listing read from the ordered scan below them.
SCAN_COLUMNS = ("q.message_id, q.queue_name, q.tenant_id, q.actor_name, q.attempts, "
                "q.last_error, q.cancelled_at, q.worker_id")


def list_jobs(status_name: str, filters: list[str], *, per_queue: bool, cursor: bool,
              since: bool, until: bool, ids_only: bool = False) -> str:
    """One page of jobs in a status, newest or soonest first, after an optional cursor.

    The rows are walked in index order (state, queue or tenant, then the status's time
    column) in a subquery the planner cannot flatten (``OFFSET 0``); the other filters
    (actor, error text, ...) apply above it, so a selective filter never makes the planner
    read every dead letter to sort them: it reads in order until the page is full.
    ``per_queue`` (finished statuses, operators): one such walk per concrete queue name
    (``%(names)s``: each queue and its '.DQ' side) on queue_finished_idx, merged.
    Parameters: ``limit``, each given filter's value, ``after_at``/``after_id``, ``since``,
    ``until``.
    """
    status = STATUSES[status_name]
    direction = "DESC" if status.descending else "ASC"
    col = f"q.{status.column}"
    indexed = [f"q.\"state\" = '{status.state}'"]
    outer = [status.predicate]
    for name in filters:
        if name == "tenant" or (name == "queue" and not per_queue):
            indexed.append(FILTERS[name])
        else:
            outer.append(FILTERS[name])
    if per_queue:
        indexed.append("q.queue_name = n.name")
    if since:
        indexed.append(f"{col} >= %(since)s")
    if until:
        indexed.append(f"{col} < %(until)s")
    if cursor:
        op = "<" if status.descending else ">"
        indexed.append(f"({col}, q.message_id) {op} (%(after_at)s, %(after_id)s)")
    walk = f"""
    SELECT q.message_id, {col} AS sort_at FROM (
        SELECT {SCAN_COLUMNS}, {col} FROM dramatiq.queue q
        WHERE {" AND ".join(indexed)}
        ORDER BY {col} {direction}, q.message_id {direction}
        OFFSET 0
    ) q
    WHERE {" AND ".join(outer)}
    LIMIT %(limit)s"""
    if per_queue:
        ids = f"""
SELECT k.message_id, k.sort_at FROM unnest(%(names)s::text[]) AS n(name)
CROSS JOIN LATERAL ({walk}
) k
ORDER BY k.sort_at {direction}, k.message_id {direction} LIMIT %(limit)s"""
    else:
        ids = walk
    if ids_only:
        return ids
    return LIST_COLUMNS.format(ids=ids, direction=direction)


# -- one job --------------------------------------------------------------------------------

JOB = """
SELECT j.*, q.queue_name, q.limit_key, q.message -> 'options' ->> 'unique_key' AS wanted_key,
       w.hostname AS worker_hostname, w.pid AS worker_pid, w.alive AS worker_alive,
       w.heartbeat_age_seconds AS worker_heartbeat_age
FROM jobs.jobs j
JOIN dramatiq.queue q ON q.message_id = j.message_id
LEFT JOIN jobs.workers w ON w.worker_id = j.worker_id
WHERE j.message_id = %(id)s
"""

ATTEMPTS = """
SELECT attempt, outcome, error, worker_id, started_at, ended_at
FROM dashboard_job_attempts WHERE message_id = %(id)s ORDER BY ended_at, id
"""

# The limits of the job's queue and the state of its key (and of the whole queue, key NULL).
JOB_LIMITS = """
SELECT * FROM jobs.limit_status
WHERE queue = %(queue)s AND (key = %(key)s OR key IS NULL)
ORDER BY key NULLS FIRST
"""

# Which of these ids the viewer can see (a tenant admin: its own only, by RLS).
VISIBLE = "SELECT message_id FROM dramatiq.queue WHERE message_id = ANY(%(ids)s::uuid[])"

# -- other pages ----------------------------------------------------------------------------

WORKERS = """
SELECT worker_id, hostname, pid, queues, started_at, heartbeat_at, heartbeat_age_seconds,
       alive, active_jobs
FROM jobs.workers ORDER BY alive DESC, hostname, pid
"""

# Dead letters grouped by queue, actor and error (the first 200 characters of it).
DEAD_GROUPS = """
SELECT regexp_replace(q.queue_name, '\\.DQ$', '') AS queue, q.actor_name,
       left(q.last_error, 200) AS error, count(*) AS jobs, min(q.mtime) AS first_at,
       max(q.mtime) AS last_at
FROM dramatiq.queue q
WHERE q."state" = 'rejected' AND q.cancelled_at IS NULL
GROUP BY 1, 2, 3
ORDER BY count(*) DESC, max(q.mtime) DESC
LIMIT %(limit)s
"""

LIMITS = "SELECT * FROM jobs.limit_status ORDER BY queue, key NULLS FIRST LIMIT %(limit)s"

SCHEDULER_HEALTH = "SELECT * FROM scheduler.health"

SCHEDULER_INSTANCES = """
SELECT instance_id, hostname, pid, "role", started_at, heartbeat_at, leader_since,
       last_sync_at, last_error,
       extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age_seconds
FROM scheduler.instances ORDER BY "role", started_at
"""

# Per task and active tenant: its effective schedule, next fire time and last firing
# (a schedule is shared by every tenant on the same cron and time zone).
RECURRING = """
SELECT r.task, r.actor_name, t.id AS tenant_id, t.name AS tenant_name,
       coalesce(o.cron, r.cron) AS cron,
       coalesce(o.timezone, r.timezone, t.timezone) AS timezone,
       coalesce(o.enabled, r.enabled) AS enabled, o.task IS NOT NULL AS overridden,
       j.next_fire_at, j.last_slot, j.last_fired_at
FROM scheduler.recurring r
CROSS JOIN tenants t
LEFT JOIN scheduler.tenant_overrides o ON o.task = r.task AND o.tenant_id = t.id
LEFT JOIN scheduler.jobs j ON j.job_id = r.task || '|' || coalesce(o.cron, r.cron) || '|'
                                          || coalesce(o.timezone, r.timezone, t.timezone)
WHERE t.active AND (r.task, t.id) > (%(after_task)s, %(after_tenant)s::uuid)
ORDER BY r.task, t.id
LIMIT %(limit)s
"""

# -- accounts -------------------------------------------------------------------------------

ADMIN_TENANT = "SELECT dashboard.admin_tenant(%(username)s) AS tenant_id"

# Under the tenant's session: RLS hides every other tenant's admins.
ADMIN = """
SELECT id, tenant_id, username, password_hash, active FROM dashboard_tenant_admins
WHERE username = %(username)s
"""

ADMIN_ACTIVE = "SELECT active FROM dashboard_tenant_admins WHERE id = %(id)s"

ADMIN_LOGGED_IN = "UPDATE dashboard_tenant_admins SET last_login_at = now() WHERE id = %(id)s"

CREATE_ADMIN = """
INSERT INTO dashboard_tenant_admins (tenant_id, username, password_hash)
VALUES ((SELECT pgjobs.current_tenant()), %(username)s, %(hash)s)
RETURNING id
"""

SET_ADMIN_PASSWORD = """
UPDATE dashboard_tenant_admins SET password_hash = %(hash)s, active = true
WHERE username = %(username)s RETURNING id
"""

DISABLE_ADMIN = """
UPDATE dashboard_tenant_admins SET active = false WHERE username = %(username)s RETURNING id
"""

TENANT_NAME = "SELECT name FROM tenants WHERE id = (SELECT pgjobs.current_tenant())"

# -- audit and bulk actions -----------------------------------------------------------------

AUDIT = """
INSERT INTO dashboard.audit (actor_kind, actor_name, admin_tenant_id, action, target,
                             outcome, detail)
VALUES (%(kind)s, %(name)s, %(tenant)s, %(action)s, %(target)s, %(outcome)s, %(detail)s)
RETURNING id
"""

RECENT_AUDIT = """
SELECT id, at, actor_kind, actor_name, admin_tenant_id, action, target, outcome, detail
FROM dashboard.audit
WHERE (%(tenant)s::uuid IS NULL OR admin_tenant_id = %(tenant)s)
ORDER BY at DESC LIMIT %(limit)s
"""

#: The channel bulk actions announce their progress on (the id only, like job events).
BULK_CHANNEL = "pgjobs.dashboard"

START_BULK = """
INSERT INTO dashboard.bulk_actions (action, filter, actor_kind, actor_name, admin_tenant_id,
                                    host, pid)
VALUES (%(action)s, %(filter)s, %(kind)s, %(name)s, %(tenant)s, %(host)s, %(pid)s)
RETURNING id
"""

BULK_PROGRESS = f"""
UPDATE dashboard.bulk_actions
SET processed = processed + %(processed)s, changed = changed + %(changed)s,
    skipped = skipped + %(skipped)s, batches = batches + 1, updated_at = now()
WHERE id = %(id)s
RETURNING pg_notify('{BULK_CHANNEL}', json_build_object('bulk', id)::text)
"""

FINISH_BULK = f"""
UPDATE dashboard.bulk_actions
SET status = %(status)s, error = %(error)s, finished_at = now(), updated_at = now()
WHERE id = %(id)s
RETURNING pg_notify('{BULK_CHANNEL}', json_build_object('bulk', id)::text)
"""

# Stalled: still 'running' but silent for a minute (its process died mid-way).
BULK = """
SELECT *, status = 'running' AND updated_at < now() - interval '1 minute' AS stalled
FROM dashboard.bulk_actions WHERE id = %(id)s
"""
