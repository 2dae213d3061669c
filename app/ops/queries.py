"""Every SQL statement of the operations tools, in one place, with bound parameters only.

Reads go through the ``jobs`` views (one classification of a job's status, created by
migration 0002); writes go to ``dramatiq.queue`` and ``dramatiq.paused_queues``. Optional
filters are written ``(%(x)s::type IS NULL OR col = %(x)s)`` so one statement serves all.
"""

SET_LEASE = "SELECT set_config('pgjobs.lease_seconds', %(lease)s, false)"

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

# Subscribers of the lifecycle channel hear of it at commit (the channel and payload shape
# of app/broker/queries.py's events: ids only, never job data).
CANCEL = """
UPDATE dramatiq.queue
SET "state" = 'rejected', cancelled_at = now(), last_error = %(reason)s, mtime = now(),
    unique_until = now(), worker_id = NULL
WHERE message_id = ANY(%(ids)s::uuid[]) AND "state" = 'queued'
RETURNING pg_notify('pgjobs.events', json_build_object(
    'event', 'cancelled', 'message_id', message_id,
    'queue', regexp_replace(queue_name, '\\.DQ$', ''))::text)
"""

# A finished job past its unique window gives its key up (the enqueue path does the same).
RELEASE_KEY = """
UPDATE dramatiq.queue SET unique_key = NULL
WHERE tenant_id IS NOT DISTINCT FROM %(tenant)s AND unique_key = %(key)s
  AND message_id <> %(id)s
  AND "state" IN ('done', 'rejected') AND coalesce(unique_until, mtime) <= now()
"""

KEY_HOLDER = """
SELECT message_id FROM dramatiq.queue
WHERE tenant_id IS NOT DISTINCT FROM %(tenant)s AND unique_key = %(key)s
  AND message_id <> %(id)s
"""

# Run finished jobs again from scratch: attempts, progress and result reset, the unique
# key held again while the job is live; the last error is kept until a new one replaces it.
RERUN = """
UPDATE dramatiq.queue q
SET "state" = 'queued', queue_name = regexp_replace(q.queue_name, '\\.DQ$', ''),
    eta = now(), mtime = now(), attempts = 0, worker_id = NULL, started_at = NULL,
    cancelled_at = NULL, progress = NULL, progress_message = NULL, "result" = NULL,
    unique_key = r.key, unique_until = NULL
FROM unnest(%(ids)s::uuid[], %(keys)s::text[]) AS r(message_id, key)
WHERE q.message_id = r.message_id AND q."state" IN ('done', 'rejected')
"""

# A delayed job (or one waiting for its retry backoff) becomes due now, attempts kept.
RUN_NOW = """
UPDATE dramatiq.queue
SET queue_name = regexp_replace(queue_name, '\\.DQ$', ''), eta = now(), mtime = now()
WHERE message_id = ANY(%(ids)s::uuid[]) AND "state" = 'queued'
"""

# Wake idle consumers of these queues (delivered at commit; payload-free like REQUEUE).
NOTIFY = """
SELECT pg_notify('dramatiq.' || q || '.enqueue', '{}') FROM unnest(%(queues)s::text[]) AS q
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

MIGRATION_VERSION = "SELECT version_num FROM alembic_version"

QUEUE_AGES = """
SELECT queue, paused, waiting, oldest_waiting_seconds FROM jobs.queue_stats ORDER BY queue
"""

STALLED = "SELECT count(*) AS n FROM jobs.active WHERE NOT worker_alive"
