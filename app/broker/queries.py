"""Every SQL statement of the broker, in one place, with bound parameters only.

Channels follow dramatiq-pg (``dramatiq.<queue>.enqueue``) and payloads carry only the
message id: LISTEN is not under RLS, so job data never travels in a NOTIFY.

Lifecycle events go to ``pgjobs.events`` from the statement that makes the change, so a
subscriber hears of it exactly when it commits (ids only: event, message_id, queue).
"""

EVENTS_CHANNEL = "pgjobs.events"


def notify_event(event: str, message_id: str = "message_id", queue: str = "queue_name") -> str:
    """SQL that notifies ``pgjobs.events`` of ``event`` (an SQL expression) for one row."""
    return (
        f"pg_notify('{EVENTS_CHANNEL}', json_build_object('event', {event}, 'message_id', "
        f"{message_id}, 'queue', regexp_replace({queue}, '\\.DQ$', ''))::text)"
    )


INSERT = f"""
WITH rows AS (
    SELECT * FROM unnest(
        %(ids)s::uuid[], %(queues)s::text[], %(messages)b::jsonb[], %(tenants)s::uuid[],
        %(actors)s::text[], %(delays)s::float8[], %(priorities)s::smallint[],
        %(keys)s::text[], %(max_attempts)s::integer[], %(limit_keys)s::text[]
    ) AS r(message_id, queue_name, message, tenant_id, actor_name, delay, priority,
           unique_key, max_attempts, limit_key)
), inserted AS (
    INSERT INTO dramatiq.queue AS q (message_id, queue_name, "state", message, tenant_id,
                                     actor_name, eta, priority, unique_key, max_attempts,
                                     limit_key)
    SELECT message_id, queue_name, 'queued', message, tenant_id, actor_name,
           now() + make_interval(secs => coalesce(delay, 0)), priority, unique_key,
           max_attempts, limit_key
    FROM rows
    ON CONFLICT DO NOTHING
    RETURNING q.message_id, q.queue_name
)
SELECT message_id,
       pg_notify('dramatiq.' || queue_name || '.enqueue',
                 json_build_object('message_id', message_id)::text),
       {notify_event("'enqueued'")}
FROM inserted
"""

# The live job holding a unique key (visible through RLS to its own tenant only).
FIND_UNIQUE = """
SELECT message_id, "state"::text, unique_until IS NULL OR unique_until > now() AS held
FROM dramatiq.queue
WHERE tenant_id IS NOT DISTINCT FROM %(tenant)s AND unique_key = %(key)s
"""

# A finished job whose unique window has passed gives its key up for a new job.
RELEASE_UNIQUE = """
UPDATE dramatiq.queue SET unique_key = NULL
WHERE tenant_id IS NOT DISTINCT FROM %(tenant)s AND unique_key = %(key)s
  AND "state" IN ('done', 'rejected') AND coalesce(unique_until, mtime) <= now()
"""

CLAIM = f"""
WITH next AS (
    SELECT message_id FROM dramatiq.queue
    WHERE queue_name = %(queue)s AND "state" = 'queued'
      AND NOT EXISTS (SELECT 1 FROM dramatiq.paused_queues p WHERE p.queue_name = %(queue)s)
    ORDER BY priority DESC, eta
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE dramatiq.queue q
SET "state" = 'consumed', worker_id = %(worker)s, started_at = now(), mtime = now(),
    attempts = q.attempts + 1
FROM next
WHERE q.message_id = next.message_id
RETURNING q.message_id, q.message, q.tenant_id, q.attempts, q.max_attempts, q.priority, q.eta,
          {notify_event("'active'", "q.message_id", "q.queue_name")}
"""

# Move due delayed rows ('<queue>.DQ') into their queue; report when the next one is due.
PROMOTE = """
WITH due AS (
    SELECT message_id FROM dramatiq.queue
    WHERE queue_name = %(delayed)s AND "state" = 'queued' AND eta <= now()
    ORDER BY eta
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), moved AS (
    UPDATE dramatiq.queue q SET queue_name = %(queue)s, mtime = now()
    FROM due WHERE q.message_id = due.message_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved),
       (SELECT min(eta) FROM dramatiq.queue
        WHERE queue_name = %(delayed)s AND "state" = 'queued' AND eta > now())
"""

COMPLETE_MANY = f"""
UPDATE dramatiq.queue q
SET "state" = 'done', mtime = now(), "result" = coalesce(d.result, q.result),
    unique_until = CASE WHEN q.unique_key IS NULL THEN NULL
        ELSE now() + make_interval(
            secs => coalesce((q.message->'options'->>'unique_window')::float8, 0)) END
FROM unnest(%(ids)s::uuid[], %(results)s::jsonb[]) AS d(message_id, result)
WHERE q.message_id = d.message_id AND q."state" = 'consumed' AND q.worker_id = %(worker)s
RETURNING {notify_event("'completed'", "q.message_id", "q.queue_name")}
"""

RETRY = f"""
UPDATE dramatiq.queue
SET "state" = 'queued', queue_name = %(queue)s, eta = now() + make_interval(secs => %(delay)s),
    last_error = %(error)s, worker_id = NULL, mtime = now()
WHERE message_id = %(id)s AND "state" = 'consumed' AND worker_id = %(worker)s
RETURNING pg_notify('dramatiq.' || queue_name || '.enqueue',
                    json_build_object('message_id', message_id)::text),
          {notify_event("'retrying'")}
"""

REJECT = f"""
UPDATE dramatiq.queue
SET "state" = 'rejected', last_error = %(error)s, mtime = now(), unique_until = now()
WHERE message_id = %(id)s AND "state" = 'consumed' AND worker_id = %(worker)s
RETURNING {notify_event("'dead'")}
"""

# Hand claimed-but-unstarted messages back, not counting the attempt.
REQUEUE = """
WITH back AS (
    UPDATE dramatiq.queue
    SET "state" = 'queued', worker_id = NULL, attempts = greatest(attempts - 1, 0),
        mtime = now()
    WHERE message_id = ANY(%(ids)s::uuid[]) AND "state" = 'consumed' AND worker_id = %(worker)s
    RETURNING queue_name
)
SELECT pg_notify('dramatiq.' || queue_name || '.enqueue', '{}') FROM back GROUP BY queue_name
"""

REGISTER_WORKER = """
INSERT INTO dramatiq.workers (worker_id, hostname, pid, queues, host_key, process_started)
VALUES (%(worker)s, %(hostname)s, %(pid)s, %(queues)s, %(host_key)s, %(process_started)s)
ON CONFLICT (worker_id) DO UPDATE SET heartbeat_at = now(), queues = EXCLUDED.queues
"""

# Other workers this one can see the processes of (same boot and PID namespace).
NEIGHBOURS = """
SELECT worker_id, pid, process_started FROM dramatiq.workers
WHERE host_key = %(host_key)s AND worker_id <> %(worker)s
"""

# Workers found dead by a neighbour: their rows go, so RESCUE takes their jobs back now.
FORGET_WORKERS = "DELETE FROM dramatiq.workers WHERE worker_id = ANY(%(workers)s)"

HEARTBEAT = "UPDATE dramatiq.workers SET heartbeat_at = now() WHERE worker_id = %(worker)s"

UNREGISTER_WORKER = "DELETE FROM dramatiq.workers WHERE worker_id = %(worker)s"

# Hand back every job a stopping worker still holds (it will not finish them).
RELEASE_WORKER = """
WITH back AS (
    UPDATE dramatiq.queue SET "state" = 'queued', worker_id = NULL, mtime = now(),
        last_error = 'worker stopped before the job finished'
    WHERE "state" = 'consumed' AND worker_id = %(worker)s
    RETURNING queue_name
)
SELECT pg_notify('dramatiq.' || queue_name || '.enqueue', '{}') FROM back GROUP BY queue_name
"""

# Jobs held by workers that stopped heartbeating go back to their queue, or to the dead
# letters when they have used every attempt (a job that kills its worker must not loop).
# One rescuer at a time: the transaction-scoped advisory lock makes the others skip.
RESCUE = f"""
WITH leader AS (
    SELECT pg_try_advisory_xact_lock(hashtext('pgjobs.rescue')) AS ok
), lost AS (
    SELECT worker_id FROM dramatiq.workers, leader
    WHERE leader.ok AND heartbeat_at < now() - make_interval(secs => %(lease)s)
), orphans AS (
    SELECT q.message_id, q.worker_id FROM dramatiq.queue q, leader
    WHERE leader.ok AND q."state" = 'consumed' AND q.worker_id IS NOT NULL
      AND (q.worker_id IN (SELECT worker_id FROM lost)
           OR NOT EXISTS (SELECT 1 FROM dramatiq.workers w WHERE w.worker_id = q.worker_id))
    FOR UPDATE OF q SKIP LOCKED
), rescued AS (
    UPDATE dramatiq.queue q
    SET "state" = CASE WHEN q.attempts >= coalesce(q.max_attempts, 2147483647)
                       THEN 'rejected'::dramatiq.state ELSE 'queued'::dramatiq.state END,
        last_error = CASE WHEN q.attempts >= coalesce(q.max_attempts, 2147483647)
                          THEN 'worker lost during the last attempt (' || q.attempts
                               || ' attempts used)'
                          ELSE 'worker lost during attempt ' || q.attempts END,
        worker_id = NULL, mtime = now()
    FROM orphans WHERE q.message_id = orphans.message_id
    RETURNING q.message_id, q.queue_name, q."state"::text, q.actor_name, q.tenant_id, q.attempts,
              orphans.worker_id AS lost_worker,
              extract(epoch FROM now() - q.started_at)::float8 AS running_seconds
), forgotten AS (
    DELETE FROM dramatiq.workers WHERE worker_id IN (SELECT worker_id FROM lost)
)
SELECT message_id, queue_name, state, actor_name, tenant_id, attempts, lost_worker,
       running_seconds, pg_notify('dramatiq.' || queue_name || '.enqueue', '{{}}'),
       {notify_event("CASE state WHEN 'rejected' THEN 'dead' ELSE 'rescued' END")}
FROM rescued
"""
