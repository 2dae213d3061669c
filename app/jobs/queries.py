"""SQL of the job lifecycle (progress, results, retention, gauges, events), bound parameters only.

The broker's own statements (claim, complete, retry, rescue) live in ``app.broker.queries``
and notify ``pgjobs.events`` themselves; these are the job layer's.
"""

from app.broker.queries import EVENTS_CHANNEL

# -- progress ------------------------------------------------------------------------------

# Autocommit, outside the job's transaction: visible while the job runs. Only the attempt
# that holds the row may write (a rescued job's old attempt must not).
PROGRESS = f"""
UPDATE dramatiq.queue
SET progress = %(progress)s, progress_message = %(message)s
WHERE message_id = %(id)s AND "state" = 'consumed' AND worker_id = %(worker)s
RETURNING pg_notify('{EVENTS_CHANNEL}', json_build_object(
    'event', 'progress', 'message_id', message_id,
    'queue', regexp_replace(queue_name, '\\.DQ$', ''))::text)
"""

# -- results ------------------------------------------------------------------------------

JOBS = """
SELECT message_id, regexp_replace(queue_name, '\\.DQ$', '') AS queue,
       queue_name LIKE '%%.DQ' AS delayed, "state"::text AS state, cancelled_at IS NOT NULL
           AS cancelled,
       actor_name, tenant_id, priority, attempts, max_attempts, progress, progress_message,
       "result", last_error, unique_key, eta, enqueued_at, started_at,
       CASE WHEN "state" IN ('done', 'rejected') THEN mtime END AS finished_at
FROM dramatiq.queue
WHERE message_id = ANY(%(ids)s::uuid[])
"""

# The finished ones among ``ids``: one query per wake-up, however many jobs are awaited.
FINISHED = JOBS + """  AND "state" IN ('done', 'rejected')"""

SET_TENANT = "SELECT set_config('app.tenant_id', %(tenant)s, false)"

# -- events -------------------------------------------------------------------------------

# For callers that change job rows outside the broker (e.g. an operator cancelling jobs):
# joins their transaction, so the event is heard at commit.
PUBLISH = f"""
SELECT pg_notify('{EVENTS_CHANNEL}', json_build_object(
    'event', %(event)s::text, 'message_id', j.message_id,
    'queue', regexp_replace(j.queue, '\\.DQ$', ''))::text)
FROM unnest(%(ids)s::uuid[], %(queues)s::text[]) AS j(message_id, queue)
"""

METRICS_PORT = """
UPDATE dramatiq.workers SET metrics_port = %(port)s WHERE worker_id = %(worker)s
"""

# -- maintenance --------------------------------------------------------------------------

# Session-level: the leader keeps it while its maintenance connection lives.
TRY_LEAD = "SELECT pg_try_advisory_lock(hashtext('pgjobs.maintenance'))"

# Queues some live worker serves (retention also covers the queues with a policy).
SERVED_QUEUES = "SELECT DISTINCT unnest(queues) FROM dramatiq.workers"

# One small batch of finished rows past their queue's age or count limit, oldest first.
# The count limit keeps exactly the newest ``keep`` rows: group-committed completions share
# one mtime, so ties are broken by id. Rows still inside their unique window stay (deleting
# them would let a duplicate in); rows someone else holds are skipped, so no statement waits.
PRUNE_BATCH = """
WITH newest_dropped AS (
    SELECT mtime, message_id FROM dramatiq.queue
    WHERE %(keep)s::integer IS NOT NULL
      AND queue_name = %(queue)s AND "state" = %(state)s::dramatiq.state
    ORDER BY mtime DESC, message_id DESC OFFSET %(keep)s::integer LIMIT 1
), doomed AS (
    SELECT q.message_id FROM dramatiq.queue q
    WHERE q.queue_name = %(queue)s AND q."state" = %(state)s::dramatiq.state
      AND (q.mtime < now() - make_interval(secs => %(max_age)s::float8)
           OR (q.mtime, q.message_id) <= (SELECT mtime, message_id FROM newest_dropped))
      AND (q.unique_until IS NULL OR q.unique_until <= now())
    ORDER BY q.mtime
    LIMIT %(batch)s
    FOR UPDATE OF q SKIP LOCKED
)
DELETE FROM dramatiq.queue q USING doomed WHERE q.message_id = doomed.message_id
"""

# Per queue: waiting, delayed (incl. retry backoff), active, and the oldest due job's wait.
QUEUE_GAUGES = """
SELECT regexp_replace(queue_name, '\\.DQ$', '') AS queue,
       count(*) FILTER (WHERE "state" = 'queued' AND queue_name NOT LIKE '%%.DQ') AS waiting,
       count(*) FILTER (WHERE "state" = 'queued' AND queue_name LIKE '%%.DQ') AS delayed,
       count(*) FILTER (WHERE "state" = 'consumed') AS active,
       coalesce(max(extract(epoch FROM now() - eta)::float8) FILTER (
           WHERE "state" = 'queued' AND queue_name NOT LIKE '%%.DQ' AND eta <= now()), 0)
           AS oldest_waiting_seconds
FROM dramatiq.queue
WHERE "state" IN ('queued', 'consumed')
GROUP BY 1
"""
