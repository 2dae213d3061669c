"""Dashboard reads that stay fast in a large table: limits and dead letters by error.

``jobs.limit_status`` counted the running and waiting rows of limited queues with one scan
whose predicate matched neither partial index, and each limited queue's running rows once
per queue: with a million rows the plan was a sequential scan (costly enough that JIT
compiled it on every call, ~0.5 s, even with no limited rows). Its counts now read
``queue_limit_running_idx`` / ``queue_limit_waiting_idx`` and the running rows once.

The dead letters page groups the dead (not cancelled) rows by queue, actor and error; a
partial index on just those rows replaces the scan of the whole table. Only rows that end
as dead letters get an entry, so the job path pays nothing for it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from alembic import op

from app.db.migration_text import migration_module

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_LIVE_0012 = """WITH live AS (
    SELECT q.queue_name, q.limit_key,
           count(*) FILTER (WHERE q."state" = 'consumed') AS running,
           count(*) FILTER (WHERE q."state" = 'queued') AS waiting
    FROM dramatiq.queue q
    JOIN dramatiq.queue_limits l ON l.queue_name = q.queue_name
    WHERE q.limit_key IS NOT NULL AND q."state" IN ('queued', 'consumed')
    GROUP BY q.queue_name, q.limit_key
)"""

_LIVE = """WITH live AS (
    -- Each half matches one partial index's predicate (queue_limit_running_idx,
    -- queue_limit_waiting_idx), so the counts read those indexes, never the whole table.
    SELECT c.queue_name, c.limit_key, sum(c.running)::bigint AS running,
           sum(c.waiting)::bigint AS waiting
    FROM (
        SELECT q.queue_name, q.limit_key, count(*) AS running, 0 AS waiting
        FROM dramatiq.queue q
        WHERE q."state" = 'consumed' AND q.limit_key IS NOT NULL
          AND q.queue_name IN (SELECT queue_name FROM dramatiq.queue_limits)
        GROUP BY q.queue_name, q.limit_key
        UNION ALL
        SELECT q.queue_name, q.limit_key, 0, count(*)
        FROM dramatiq.queue q
        WHERE q."state" = 'queued' AND q.limit_key IS NOT NULL
          AND q.queue_name IN (SELECT queue_name FROM dramatiq.queue_limits)
        GROUP BY q.queue_name, q.limit_key
    ) c
    GROUP BY c.queue_name, c.limit_key
)"""

_QUEUE_RUNNING_0012 = """       (SELECT count(*) FROM dramatiq.queue q
        WHERE q.queue_name = l.queue_name AND q."state" = 'consumed'),
"""

_QUEUE_RUNNING = """       coalesce(r.running, 0),
"""

_FROM_0012 = "FROM dramatiq.queue_limits l;"

_FROM = """FROM dramatiq.queue_limits l
-- Running rows are few: counted once for every queue, not once per limited queue.
LEFT JOIN (SELECT q.queue_name, count(*) AS running FROM dramatiq.queue q
           WHERE q."state" = 'consumed' GROUP BY q.queue_name) r
       ON r.queue_name = l.queue_name;"""

DEAD_INDEX = """
CREATE INDEX queue_dead_idx ON dramatiq.queue (queue_name)
    WHERE "state" = 'rejected' AND cancelled_at IS NULL;
"""


def _limit_status_0012() -> str:
    return str(migration_module("2026_12_01_0012_isolation.py").LIMIT_STATUS)


def limit_status() -> str:
    """0012's view with its counts read from the partial indexes."""
    text = _limit_status_0012()
    for old, new in ((_LIVE_0012, _LIVE), (_QUEUE_RUNNING_0012, _QUEUE_RUNNING),
                     (_FROM_0012, _FROM)):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def upgrade() -> None:
    op.execute(limit_status())
    op.execute(DEAD_INDEX)


def downgrade() -> None:
    op.execute("DROP INDEX dramatiq.queue_dead_idx")
    op.execute(_limit_status_0012())
