"""Row-Level Security: a tenant's jobs and application code see and write only its rows.

The roles are what make this real: ``app_user`` and ``app_worker`` are non-superusers
without BYPASSRLS, and every tenant table (and the job table) forces RLS, so even a table
owner's connection cannot skip it by accident.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import errors
from sqlalchemy import text

from app.actors import webhooks
from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.foundation import actors
from tests.foundation.helpers import job_row, state
from tests.support import TestDB, wait_for

ROLES = ("app_actor", "app_user", "app_worker")


def event(event_id: str) -> dict[str, object]:
    return {"source": "test", "event_id": event_id, "event_type": "ping", "payload": {},
            "received_at": datetime.now(UTC).isoformat()}


def seed_activity(tenant: uuid.UUID, title: str) -> None:
    """Rows written the way application code writes them: as app_user, in the tenant."""
    with tenant_session(tenant) as session:
        session.execute(text(
            "INSERT INTO activity_events (tenant_id, event_type, title, source) "
            "VALUES (:t, 'seed', :title, 'seed')"), {"t": tenant, "title": title})
        session.execute(text(
            "INSERT INTO webhook_events (tenant_id, source, external_event_id, event_type) "
            "VALUES (:t, 'test', :title, 'seed')"), {"t": tenant, "title": title})


def test_a_job_for_tenant_a_cannot_read_or_write_tenant_b(db: TestDB, worker: object) -> None:
    tenant_a, tenant_b = db.create_tenant("a"), db.create_tenant("b")
    seed_activity(tenant_a, "a's row")
    seed_activity(tenant_b, "b's row")
    with tenant_session(tenant_a) as session:
        probe = enqueue(session, actors.tenant_probe, str(tenant_b))
    wait_for(lambda: state(db, probe.message_id) == "done", message="the probe job to finish")
    seen = job_row(db, probe.message_id)["result"]

    assert seen["tenant"] == str(tenant_a)
    assert seen["activity_tenants"] == [str(tenant_a)]
    assert seen["webhook_tenants"] == [str(tenant_a)]
    assert seen["other_by_id"] == 0
    assert seen["insert_other"] == "42501"  # new row violates row-level security policy
    assert seen["insert_own"] is None
    assert seen["updated_other"] == 0
    assert seen["deleted_other"] == 0
    assert seen["moved_own_to_other"] == "42501"
    # B's data is untouched; A's own insert committed with the job.
    assert db.query("SELECT title FROM activity_events WHERE tenant_id = %s",
                    (tenant_b,)) == [("b's row",)]
    assert db.scalar("SELECT count(*) FROM activity_events WHERE tenant_id = %s",
                     (tenant_a,)) == 2


@pytest.fixture
def two_tenants_jobs(db: TestDB, broker: object) -> tuple[uuid.UUID, uuid.UUID, str, str]:
    tenant_a, tenant_b = db.create_tenant("a"), db.create_tenant("b")
    with tenant_session(tenant_a) as session:
        job_a = enqueue(session, webhooks.process, event("a-1")).message_id
    with tenant_session(tenant_b) as session:
        job_b = enqueue(session, webhooks.process, event("b-1")).message_id
    return tenant_a, tenant_b, job_a, job_b


def test_application_code_sees_only_its_tenants_jobs(
    db: TestDB, two_tenants_jobs: tuple[uuid.UUID, uuid.UUID, str, str]
) -> None:
    tenant_a, _, job_a, _ = two_tenants_jobs
    with tenant_session(tenant_a) as session:
        rows = session.execute(text("SELECT message_id, tenant_id FROM dramatiq.queue")).all()
    assert [(str(m), t) for m, t in rows] == [(job_a, tenant_a)]
    # Without a tenant in the transaction, app_user sees no job at all.
    with psycopg.connect(db.app_url) as conn:
        assert conn.execute("SELECT count(*) FROM dramatiq.queue").fetchone() == (0,)
    assert db.scalar("SELECT count(*) FROM dramatiq.queue") == 2


@pytest.mark.parametrize("statement", [
    "UPDATE dramatiq.queue SET \"state\" = 'done'",
    "UPDATE dramatiq.queue SET tenant_id = %(other)s",
    "UPDATE dramatiq.queue SET unique_key = 'k'",
    "DELETE FROM dramatiq.queue",
])
def test_application_code_cannot_change_or_delete_job_rows(
    db: TestDB, statement: str, two_tenants_jobs: tuple[uuid.UUID, uuid.UUID, str, str]
) -> None:
    tenant_a, tenant_b, job_a, _ = two_tenants_jobs
    with psycopg.connect(db.app_url) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_a),))
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            conn.execute(statement, {"other": tenant_b})
    assert db.query('SELECT "state"::text, tenant_id FROM dramatiq.queue WHERE message_id = %s',
                    (job_a,)) == [("queued", tenant_a)]


def test_roles_are_non_superusers_without_bypassrls(db: TestDB) -> None:
    rows = db.query(
        "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
        "WHERE rolname = ANY(%s) ORDER BY rolname", (list(ROLES),))
    assert rows == [(role, False, False, False, False) for role in ROLES]
    # Table owners skip RLS unless it is forced: the application roles own nothing.
    owned = db.query(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
        "WHERE r.rolname = ANY(%s)", (list(ROLES),))
    assert owned == []


def test_every_tenant_table_and_the_job_table_force_rls(db: TestDB) -> None:
    """Any table with a ``tenant_id`` column, including ones added later, must force RLS."""
    tables = db.query("""
        SELECT c.oid::regclass::text, c.relrowsecurity, c.relforcerowsecurity,
               EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                       AND a.attname = 'tenant_id' AND NOT a.attisdropped)
               OR c.oid IN ('public.tenants'::regclass, 'dramatiq.queue'::regclass))
        ORDER BY 1
    """)
    names = {name for name, *_ in tables}
    assert {"tenants", "activity_events", "webhook_events", "dramatiq.queue"} <= names
    unprotected = [name for name, enabled, forced, has_policy in tables
                   if not (enabled and forced and has_policy)]
    assert unprotected == [], f"tables with tenant rows but without forced RLS: {unprotected}"


def test_views_over_tenant_rows_check_rls_as_the_caller(db: TestDB) -> None:
    """A view runs as its owner unless security_invoker: it would leak every tenant's rows."""
    leaking = db.query("""
        SELECT c.oid::regclass::text, r.rolname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN (VALUES ('app_user'), ('app_actor'), ('app_worker')) AS r(rolname)
        WHERE c.relkind IN ('v', 'm')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                      AND a.attname = 'tenant_id' AND NOT a.attisdropped)
          AND has_table_privilege(r.rolname, c.oid, 'SELECT')
          AND (c.relkind = 'm' OR NOT coalesce('security_invoker=true' = ANY(c.reloptions)
                                             OR 'security_invoker=on' = ANY(c.reloptions),
                                             false))
    """)
    # app_worker sees every job by design; the tenant roles may read invoker views only.
    assert [row for row in leaking if row[1] != "app_worker"] == []
