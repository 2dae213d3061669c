"""Scheduler health says what the leader refuses to schedule

``scheduler.health`` gains ``errors``: the live leader's report of its last sync (a task
naming an actor no module registered, a cron or time zone that does not parse, a sync that
failed), so a task that will never fire is visible in SQL, in ``pgjobs health`` and on the
dashboard, not only in the scheduler's log. NULL when every definition is scheduled.

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-01
"""

from alembic import op

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None

COLUMNS = """
SELECT l.instance_id AS leader_id,
       l.hostname AS leader_hostname,
       l.pid AS leader_pid,
       l.leader_since,
       l.heartbeat_at AS leader_heartbeat_at,
       l.last_sync_at,
       (SELECT max(last_fired_at) FROM scheduler.fired) AS last_tick_at,
       (SELECT min(next_fire_at) FROM scheduler.jobs) AS next_fire_at,
       (SELECT count(*) FROM scheduler.instances s
         WHERE s."role" = 'standby' AND s.heartbeat_at > now() - interval '30 seconds')
           AS standbys{extra}
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT * FROM scheduler.instances WHERE "role" = 'leader'
    ORDER BY heartbeat_at DESC LIMIT 1
) l ON true
"""

# New columns go last, so CREATE OR REPLACE keeps the view (and its grants) in place.
WITH_ERRORS = COLUMNS.format(extra=""",
       l.last_error AS errors""")
WITHOUT_ERRORS = COLUMNS.format(extra="")


def upgrade() -> None:
    op.execute("CREATE OR REPLACE VIEW scheduler.health WITH (security_invoker = true) AS"
               + WITH_ERRORS)


def downgrade() -> None:
    # A column cannot be dropped from a view in place: recreate it as 0004 + 0012 left it.
    op.execute("DROP VIEW scheduler.health")
    op.execute("CREATE VIEW scheduler.health WITH (security_invoker = true) AS"
               + WITHOUT_ERRORS)
