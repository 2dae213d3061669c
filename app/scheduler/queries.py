"""Every SQL statement of the scheduler, in one place, with bound parameters only."""

# Every (task, cron, time zone) some active tenant is scheduled on, with overrides applied.
DESIRED_SCHEDULES = """
SELECT DISTINCT r.task, coalesce(o.cron, r.cron) AS cron,
       coalesce(o.timezone, r.timezone, t.timezone) AS timezone
FROM scheduler.recurring r
CROSS JOIN tenants t
LEFT JOIN scheduler.tenant_overrides o ON o.task = r.task AND o.tenant_id = t.id
WHERE t.active AND coalesce(o.enabled, r.enabled)
ORDER BY 1, 2, 3
"""

DEFINITION = """
SELECT actor_name, misfire_policy, catch_up_max, misfire_grace_seconds, args
FROM scheduler.recurring WHERE task = %(task)s
"""

# The tenants one schedule fans out to, evaluated at firing time (a tenant deactivated or
# moved to another schedule a second ago is already left out).
SCHEDULE_TENANTS = """
SELECT t.id
FROM scheduler.recurring r
CROSS JOIN tenants t
LEFT JOIN scheduler.tenant_overrides o ON o.task = r.task AND o.tenant_id = t.id
WHERE r.task = %(task)s AND t.active AND coalesce(o.enabled, r.enabled)
  AND coalesce(o.cron, r.cron) = %(cron)s
  AND coalesce(o.timezone, r.timezone, t.timezone) = %(timezone)s
ORDER BY t.id
"""

# The ledger row, created if new, then locked: firings of one schedule are serialised,
# whoever fires them (two statements: a CTE's insert is invisible to its own SELECT).
CREATE_LEDGER = """
INSERT INTO scheduler.fired (job_id, task) VALUES (%(job)s, %(task)s)
ON CONFLICT (job_id) DO NOTHING
"""
LOCK_LEDGER = "SELECT last_slot FROM scheduler.fired WHERE job_id = %(job)s FOR UPDATE"

RECORD_FIRING = """
UPDATE scheduler.fired
SET last_slot = %(slot)s, last_fired_at = now(), slots = %(slots)s, tenants = %(tenants)s,
    enqueued = %(enqueued)s, duplicates = %(duplicates)s
WHERE job_id = %(job)s
"""

LAST_SLOT = "SELECT last_slot FROM scheduler.fired WHERE job_id = %(job)s"

FORGET_LEDGER = "DELETE FROM scheduler.fired WHERE NOT (job_id = ANY(%(keep)s::text[]))"

# -- instances and health -------------------------------------------------------------------

REGISTER = """
INSERT INTO scheduler.instances (instance_id, hostname, pid, "role")
VALUES (%(id)s, %(hostname)s, %(pid)s, 'standby')
ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = now()
"""

HEARTBEAT = """
UPDATE scheduler.instances
SET heartbeat_at = now(), "role" = %(role)s,
    leader_since = CASE WHEN %(role)s = 'leader' THEN coalesce(leader_since, now()) END,
    last_sync_at = CASE WHEN %(synced)s THEN now() ELSE last_sync_at END,
    last_error = %(error)s
WHERE instance_id = %(id)s
"""

# A new leader marks any previous one lost (it is gone: the lock was free) and forgets
# instances silent for an hour.
TAKE_OVER = """
WITH lost AS (
    UPDATE scheduler.instances SET "role" = 'lost'
    WHERE "role" = 'leader' AND instance_id <> %(id)s
)
DELETE FROM scheduler.instances
WHERE heartbeat_at < now() - interval '1 hour' AND instance_id <> %(id)s
"""

UNREGISTER = "DELETE FROM scheduler.instances WHERE instance_id = %(id)s"

HEALTH = "SELECT * FROM scheduler.health"

INSTANCES = """
SELECT instance_id, hostname, pid, "role", started_at, heartbeat_at, leader_since,
       last_sync_at, last_error,
       heartbeat_at > now() - make_interval(secs => %(stale)s) AS alive
FROM scheduler.instances ORDER BY "role", started_at
"""

JOBS = """
SELECT job_id, task, cron, timezone, next_fire_at, last_slot, last_fired_at, last_tenants,
       last_enqueued, last_duplicates
FROM scheduler.jobs ORDER BY next_fire_at NULLS LAST, job_id
"""

# -- definitions: declared in code, checked at sync, edited from the CLI ----------------------

# A task declared in code: the code owns everything but ``enabled`` (the operator's). A row
# already as declared is left alone (no write, no updated_at change).
UPSERT_DECLARED = """
INSERT INTO scheduler.recurring AS r
    (task, actor_name, cron, timezone, misfire_policy, catch_up_max, misfire_grace_seconds,
     args, description)
VALUES (%(task)s, %(actor_name)s, %(cron)s, %(timezone)s, %(misfire_policy)s,
        %(catch_up_max)s, %(grace)s, %(args)s::jsonb, %(description)s)
ON CONFLICT (task) DO UPDATE
SET actor_name = EXCLUDED.actor_name, cron = EXCLUDED.cron, timezone = EXCLUDED.timezone,
    misfire_policy = EXCLUDED.misfire_policy, catch_up_max = EXCLUDED.catch_up_max,
    misfire_grace_seconds = EXCLUDED.misfire_grace_seconds, args = EXCLUDED.args,
    description = EXCLUDED.description, updated_at = now()
WHERE (r.actor_name, r.cron, r.timezone, r.misfire_policy, r.catch_up_max,
       r.misfire_grace_seconds, r.args, r.description)
      IS DISTINCT FROM
      (EXCLUDED.actor_name, EXCLUDED.cron, EXCLUDED.timezone, EXCLUDED.misfire_policy,
       EXCLUDED.catch_up_max, EXCLUDED.misfire_grace_seconds, EXCLUDED.args,
       EXCLUDED.description)
RETURNING (xmax = 0) AS inserted
"""

# The actor of every task that may fire: enabled, or enabled for some tenant by an override.
SCHEDULED_ACTORS = """
SELECT r.task, r.actor_name
FROM scheduler.recurring r
WHERE r.enabled OR EXISTS (
    SELECT 1 FROM scheduler.tenant_overrides o WHERE o.task = r.task AND o.enabled)
ORDER BY r.task
"""

RECURRING_LIST = """
SELECT task, actor_name, cron, timezone, enabled, misfire_policy, catch_up_max,
       misfire_grace_seconds, args, description, updated_at
FROM scheduler.recurring ORDER BY task
"""

RECURRING_ADD = """
INSERT INTO scheduler.recurring
    (task, actor_name, cron, timezone, enabled, misfire_policy, catch_up_max,
     misfire_grace_seconds, args, description)
VALUES (%(task)s, %(actor_name)s, %(cron)s, %(timezone)s, %(enabled)s, %(misfire_policy)s,
        %(catch_up_max)s, %(grace)s, %(args)s::jsonb, %(description)s)
ON CONFLICT (task) DO NOTHING
RETURNING task
"""

RECURRING_REMOVE = "DELETE FROM scheduler.recurring WHERE task = %(task)s RETURNING task"

RECURRING_ENABLE = """
UPDATE scheduler.recurring SET enabled = %(enabled)s, updated_at = now()
WHERE task = %(task)s RETURNING task
"""

# What the live leader reported at its last sync (NULL: everything scheduled), for health.
LEADER_REPORT = """
SELECT leader_pid, leader_hostname, errors,
       leader_heartbeat_at > now() - make_interval(secs => %(stale)s) AS alive,
       (SELECT count(*) FROM scheduler.instances) AS instances
FROM scheduler.health
"""
