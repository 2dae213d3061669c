"""Actors of the pooler tests: jobs whose sessions (``app_actor``) go through PgBouncer.

``pooler.record`` writes one activity row under the job's tenant and reports what its
session sees; ``pooler.leave_state`` is a hostile job that leaves everything a session can
keep behind (a temporary table shadowing a tenant table, session settings, a LISTEN, an
advisory lock) for whichever transaction runs next on its server connection;
``pooler.harvest`` comes back for what another tenant's job may have left in it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.jobs import current_session, current_tenant, declare_queue, job

QUEUE = "pooler"
declare_queue(QUEUE, max_attempts=1, completed_max_count=None)

SEEN = text("""
SELECT pg_backend_pid() AS backend,
       pgjobs.current_tenant()::text AS tenant,
       (SELECT count(*) FROM activity_events WHERE tenant_id <> pgjobs.current_tenant())
           AS others,
       (SELECT count(DISTINCT tenant_id) FROM activity_events) AS tenants_seen,
       current_setting('search_path') AS search_path,
       current_setting('statement_timeout') AS statement_timeout,
       (SELECT count(*) FROM pg_listening_channels()) AS listening,
       (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
            AND pid = pg_backend_pid()) AS advisory_locks,
       (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()
            AND relkind = 'r') AS temp_tables
""")


def seen() -> dict[str, Any]:
    row = current_session().execute(SEEN).mappings().one()
    return {key: (value if isinstance(value, int | str) or value is None else str(value))
            for key, value in row.items()}


@job(actor_name="pooler.record", queue_name=QUEUE)
def record(n: int) -> dict[str, Any]:
    """One row of the job's tenant (unqualified table name, as application SQL writes it)."""
    current_session().execute(text(
        "INSERT INTO activity_events (tenant_id, event_type, title, source, source_id) "
        "VALUES (pgjobs.current_tenant(), 'pooler', 'recorded', 'pooler', :n)"), {"n": str(n)})
    return {**seen(), "expected_tenant": str(current_tenant())}


@job(actor_name="pooler.leave_state", queue_name=QUEUE)
def leave_state() -> dict[str, Any]:
    """Leave session state behind, then complete (commit) so none of it is rolled back."""
    s = current_session()
    s.execute(text("CREATE TEMP TABLE activity_events (LIKE public.activity_events "
                   "INCLUDING DEFAULTS)"))
    s.execute(text("SELECT set_config('search_path', 'pg_temp, public', false)"))
    s.execute(text("SELECT set_config('statement_timeout', '3600000', false)"))
    s.execute(text("SELECT set_config('app.tenant_id', pgjobs.current_tenant()::text, false),"
                   " set_config('pgjobs.context', current_setting('pgjobs.context'), false)"))
    s.execute(text("LISTEN pooler_leftover"))
    s.execute(text("SELECT pg_advisory_lock(4242)"))
    return seen()


@job(actor_name="pooler.harvest", queue_name=QUEUE)
def harvest() -> dict[str, Any]:
    """What is left of ``leave_state``'s session, and whether another tenant wrote into it."""
    s = current_session()
    result = seen()
    try:
        with s.begin_nested():
            result["temp_rows"] = s.execute(
                text("SELECT count(*) FROM pg_temp.activity_events")).scalar()
    except DBAPIError as exc:
        result["temp_rows"] = getattr(exc.orig, "sqlstate", None) or type(exc.orig).__name__
    return result
