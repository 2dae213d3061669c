"""The operators' statements on the job store: inspection, queue control, housekeeping.

Run as the owner (``app.ops``, ``make run``'s status screen, the demo). Reads go through the
``jobs`` views (one classification of a job's status, migration 0002); job control goes
through the store's functions (``app.store.control``); queue control writes
``dramatiq.paused_queues`` and deletes in batches. Optional filters are written
``(%(x)s::type IS NULL OR col = %(x)s)`` so one statement serves all.
"""

# -- inspection -------------------------------------------------------------------------

STATS = """
SELECT * FROM jobs.queue_stats
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s)
ORDER BY queue
"""

BY_TENANT = """
SELECT * FROM jobs.by_tenant
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(tenant)s::uuid IS NULL OR tenant_id = %(tenant)s)
ORDER BY tenant_name NULLS LAST, tenant_id NULLS LAST, queue
"""

WORKER_COUNTS = """
SELECT count(*) FILTER (WHERE alive) AS alive, count(*) AS registered FROM jobs.workers
"""

FAILED = """
SELECT * FROM jobs.failed
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(tenant)s::uuid IS NULL OR tenant_id = %(tenant)s)
  AND (%(actor)s::text IS NULL OR actor_name = %(actor)s)
ORDER BY failed_at DESC
LIMIT %(limit)s
"""

ACTIVE = """
SELECT * FROM jobs.active
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(tenant)s::uuid IS NULL OR tenant_id = %(tenant)s)
ORDER BY started_at
LIMIT %(limit)s
"""

SCHEDULED = """
SELECT * FROM jobs.scheduled
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(tenant)s::uuid IS NULL OR tenant_id = %(tenant)s)
ORDER BY eta
LIMIT %(limit)s
"""

RECENT = """
SELECT * FROM jobs.recent
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(tenant)s::uuid IS NULL OR tenant_id = %(tenant)s)
ORDER BY finished_at DESC
LIMIT %(limit)s
"""

WORKERS = "SELECT * FROM jobs.workers ORDER BY alive DESC, hostname, pid"

SHOW = """
SELECT j.*, q.queue_name, w.hostname AS worker_hostname, w.pid AS worker_pid,
       w.alive AS worker_alive
FROM jobs.jobs j
JOIN dramatiq.queue q ON q.message_id = j.message_id
LEFT JOIN jobs.workers w ON w.worker_id = j.worker_id
WHERE j.message_id = %(id)s
"""

# Is a queue name known anywhere (jobs, workers, pauses)? Catches typos in pause/clear.
KNOWN_QUEUE = """
SELECT EXISTS (SELECT 1 FROM dramatiq.queue
               WHERE queue_name IN (%(queue)s, %(queue)s || '.DQ'))
    OR EXISTS (SELECT 1 FROM dramatiq.workers WHERE %(queue)s = ANY(queues))
    OR EXISTS (SELECT 1 FROM dramatiq.paused_queues WHERE queue_name = %(queue)s)
"""

# -- job control --------------------------------------------------------------------------

# The named jobs, locked for the rest of the transaction so a worker cannot claim them
# between our check of their status and our update.
LOCK_JOBS = """
SELECT message_id, status, queue, actor_name, tenant_id, unique_key,
       options ->> 'unique_key' AS wanted_key
FROM jobs.jobs
WHERE message_id = ANY(%(ids)s::uuid[])
FOR UPDATE
"""

LOCK_DEAD = """
SELECT message_id, status, queue, actor_name, tenant_id, unique_key,
       options ->> 'unique_key' AS wanted_key
FROM jobs.jobs
WHERE status = 'dead' AND (%(queue)s::text IS NULL OR queue = %(queue)s)
ORDER BY finished_at
FOR UPDATE
"""

# Who holds a unique key now (a job run again would need it).
KEY_HOLDER = """
SELECT message_id FROM dramatiq.queue
WHERE tenant_id IS NOT DISTINCT FROM %(tenant)s AND unique_key = %(key)s
  AND message_id <> %(id)s
"""

# -- queue control ------------------------------------------------------------------------

PAUSE = """
INSERT INTO dramatiq.paused_queues (queue_name) VALUES (%(queue)s)
ON CONFLICT (queue_name) DO NOTHING
"""

RESUME = """
WITH resumed AS (
    DELETE FROM dramatiq.paused_queues WHERE queue_name = %(queue)s RETURNING 1
)
SELECT (SELECT count(*) FROM resumed) AS resumed,
       pg_notify('dramatiq.' || %(queue)s || '.enqueue', '{}')
"""

# Waiting and delayed jobs of a queue, in batches; rows being claimed right now are skipped
# (they are starting, no longer waiting).
CLEAR_BATCH = """
WITH doomed AS (
    SELECT message_id FROM dramatiq.queue
    WHERE queue_name IN (%(queue)s, %(queue)s || '.DQ') AND "state" = 'queued'
      AND (%(tenant)s::uuid IS NULL OR tenant_id = %(tenant)s)
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM dramatiq.queue q USING doomed WHERE q.message_id = doomed.message_id
"""

CLEAR_COUNT = """
SELECT count(*) AS n FROM dramatiq.queue
WHERE queue_name IN (%(queue)s, %(queue)s || '.DQ') AND "state" = 'queued'
  AND (%(tenant)s::uuid IS NULL OR tenant_id = %(tenant)s)
"""

# Finished jobs older than a cutoff, in batches (short transactions, no long locks). Rows
# still inside their unique window stay: deleting them would let a duplicate in.
PURGEABLE = """
"state" IN ('done', 'rejected') AND mtime < now() - make_interval(secs => %(age)s)
  AND (unique_until IS NULL OR unique_until <= now())
  AND (%(queue)s::text IS NULL OR queue_name IN (%(queue)s, %(queue)s || '.DQ'))
"""

PURGE_BATCH = f"""
WITH doomed AS (
    SELECT message_id FROM dramatiq.queue WHERE {PURGEABLE}
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM dramatiq.queue q USING doomed WHERE q.message_id = doomed.message_id
"""

PURGE_COUNT = f"SELECT count(*) AS n FROM dramatiq.queue WHERE {PURGEABLE}"

# -- health ------------------------------------------------------------------------------

QUEUE_AGES = """
SELECT queue, paused, waiting, oldest_waiting_seconds FROM jobs.queue_stats ORDER BY queue
"""

STALLED = "SELECT count(*) AS n FROM jobs.active WHERE NOT worker_alive"

# -- make run's status screen and the demo ------------------------------------------------

STATUS = """
SELECT regexp_replace(queue_name, '\\.DQ$', '') AS queue,
       count(*) FILTER (WHERE "state" = 'queued' AND queue_name NOT LIKE '%%.DQ') AS queued,
       count(*) FILTER (WHERE "state" = 'queued' AND queue_name LIKE '%%.DQ') AS delayed,
       count(*) FILTER (WHERE "state" = 'consumed') AS running,
       count(*) FILTER (WHERE "state" = 'done') AS done,
       count(*) FILTER (WHERE "state" = 'rejected') AS dead
FROM dramatiq.queue
GROUP BY 1
ORDER BY 1
"""

LIVE_WORKERS = "SELECT count(*) AS n FROM dramatiq.workers WHERE lease_expires_at > now()"

# Per tenant, actor and state: how many jobs, most attempts, one last error.
TENANT_OUTCOMES = """
SELECT tenant_id, actor_name, "state"::text AS state, count(*) AS n, max(attempts) AS attempts,
       max(last_error) AS last_error
FROM dramatiq.queue WHERE tenant_id = ANY(%(tenants)s::uuid[]) GROUP BY 1, 2, 3
"""

TENANT_PENDING = """
SELECT count(*) FILTER (WHERE "state" IN ('queued', 'consumed')) AS pending, count(*) AS total
FROM dramatiq.queue WHERE tenant_id = ANY(%(tenants)s::uuid[])
"""

# Jobs whose payload contains a string (the demo checks a rolled-back job left nothing).
PAYLOAD_MENTIONS = """
SELECT count(*) AS n FROM dramatiq.queue WHERE message::text LIKE %(pattern)s
"""
