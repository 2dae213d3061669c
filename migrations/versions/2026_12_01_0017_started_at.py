"""``started_at`` is when the attempt started running, not when it was claimed.

A worker claims a window of jobs ahead of its threads (``app.broker.consumer``), so a job
can wait there behind others; the claim's ``started_at`` then made its queue wait look
shorter and its duration longer than they were. The worker now passes the time its thread
took the job up with the outcome it writes anyway (completion, retry, dead letter), and the
row keeps it, bounded by the claim and the statement's time (a worker's clock cannot move it
outside what the database saw). While it runs, ``started_at`` is still the claim's.

``pgjobs.complete_job`` takes the start as a fourth argument (NULL: keep the claim's); the
failed-attempt history records the attempt's start from the row as updated.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

from alembic import op

from app.db.migration_text import function_text, migration_module

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_SET_DONE_0012 = """SET "state" = 'done', mtime = now(), "result" = p_result,"""
_SET_DONE = """SET "state" = 'done', mtime = now(), "result" = p_result,
        started_at = pgjobs.started_between(q.started_at, p_started),"""

STARTED_BETWEEN = """
-- The start a worker reports, kept between the claim and now (NULL: the claim's).
CREATE FUNCTION pgjobs.started_between(p_claimed timestamptz, p_reported timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE
AS $$ SELECT CASE WHEN p_reported IS NULL OR p_claimed IS NULL THEN p_claimed
                  ELSE greatest(p_claimed, least(p_reported, now())) END $$;
REVOKE ALL ON FUNCTION pgjobs.started_between(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgjobs.started_between(timestamptz, timestamptz) TO app_worker;
"""

GRANTS = """
REVOKE ALL ON FUNCTION pgjobs.complete_job(uuid, text, jsonb, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgjobs.complete_job(uuid, text, jsonb, timestamptz) TO app_actor;
"""

GRANTS_0012 = """
REVOKE ALL ON FUNCTION pgjobs.complete_job(uuid, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgjobs.complete_job(uuid, text, jsonb) TO app_actor;
"""


def _complete_job_0012() -> str:
    return function_text(str(migration_module("2026_12_01_0012_isolation.py").FUNCTIONS),
                         "pgjobs.complete_job")


def _attempt_history_0011() -> str:
    return function_text(str(migration_module("2026_12_01_0011_dashboard.py").FUNCTIONS),
                         "dashboard.record_failed_attempt")


def complete_job() -> str:
    text = _complete_job_0012()
    head = "pgjobs.complete_job(p_id uuid, p_lease text, p_result jsonb)"
    assert text.count(head) == 1 and text.count(_SET_DONE_0012) == 1
    return text.replace(head, "pgjobs.complete_job(p_id uuid, p_lease text, p_result jsonb,"
                              " p_started timestamptz DEFAULT NULL)").replace(
        _SET_DONE_0012, _SET_DONE)


def attempt_history() -> str:
    text = _attempt_history_0011()
    assert text.count("OLD.worker_id, OLD.started_at") == 1
    return text.replace("OLD.worker_id, OLD.started_at", "OLD.worker_id, NEW.started_at")


def upgrade() -> None:
    op.execute(STARTED_BETWEEN)
    op.execute("DROP FUNCTION pgjobs.complete_job(uuid, text, jsonb)")
    op.execute(complete_job())
    op.execute(GRANTS)
    op.execute(attempt_history())


def downgrade() -> None:
    op.execute(_attempt_history_0011())
    op.execute("DROP FUNCTION pgjobs.complete_job(uuid, text, jsonb, timestamptz)")
    op.execute(_complete_job_0012())
    op.execute(GRANTS_0012)
    op.execute("DROP FUNCTION pgjobs.started_between(timestamptz, timestamptz)")
