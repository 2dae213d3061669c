"""Tenant context in one function, a role for actor sessions, tenant-scoped job control

``pgjobs.current_tenant()`` is what every tenant policy compares ``tenant_id`` with (see
``app.db.rls``), so how a transaction's tenant is established can change in one place.
``app_actor`` is the role actor sessions run as: under tenant RLS like ``app_user``.
``pgjobs.cancel_jobs`` and ``pgjobs.reschedule_job`` let application code cancel or move
its own tenant's waiting and delayed jobs (and no other row): they are the only way tenant
code changes a job row, and they lock the row, so a worker claiming it at that instant
either gets it first (the call reports it as running) or never sees it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app_actor') THEN
        BEGIN
            CREATE ROLE app_actor LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by a migration of another database of the cluster
        END;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'app_actor'
               AND (rolsuper OR rolbypassrls)) THEN
        RAISE EXCEPTION 'role app_actor exists with SUPERUSER or BYPASSRLS: it would bypass '
                        'Row-Level Security; fix the role before migrating';
    END IF;
END $$;
"""

FUNCTIONS = """
CREATE SCHEMA pgjobs;
REVOKE ALL ON SCHEMA pgjobs FROM PUBLIC;
GRANT USAGE ON SCHEMA pgjobs TO app_user, app_actor, app_worker;

CREATE FUNCTION pgjobs.current_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;
"""

# Also what a later migration's downgrade restores.
CONTROL = """
-- Cancel waiting or delayed jobs of the caller's tenant. Returns every named job the
-- tenant can see with what happened to it: 'cancelled', or its status when it could not be.
CREATE FUNCTION pgjobs.cancel_jobs(p_ids uuid[], p_reason text DEFAULT 'cancelled')
RETURNS TABLE (message_id uuid, outcome text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$
#variable_conflict use_column
DECLARE
    v_tenant uuid := pgjobs.current_tenant();
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant in this transaction: cancel inside a tenant session'
            USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    WITH mine AS (
        SELECT q.message_id, q."state", q.queue_name FROM dramatiq.queue q
        WHERE q.message_id = ANY(p_ids) AND q.tenant_id = v_tenant
        FOR UPDATE
    ), cancelled AS (
        UPDATE dramatiq.queue q
        SET "state" = 'rejected', cancelled_at = now(), last_error = left(p_reason, 1000),
            mtime = now(), unique_until = now(), worker_id = NULL
        FROM mine WHERE q.message_id = mine.message_id AND mine."state" = 'queued'
        RETURNING q.message_id,
                  pg_notify('pgjobs.events', json_build_object(
                      'event', 'cancelled', 'message_id', q.message_id,
                      'queue', regexp_replace(q.queue_name, '\\.DQ$', ''))::text)
    )
    SELECT m.message_id,
           CASE WHEN c.message_id IS NOT NULL THEN 'cancelled'
                WHEN m."state" = 'consumed' THEN 'running'
                ELSE 'finished' END
    FROM mine m LEFT JOIN cancelled c ON c.message_id = m.message_id;
END $$;

-- Move a waiting or delayed job of the caller's tenant to run at p_eta (now or later).
-- Returns 'rescheduled', 'running' or 'finished'; no row when the tenant has no such job.
CREATE FUNCTION pgjobs.reschedule_job(p_id uuid, p_eta timestamptz)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$
DECLARE
    v_tenant uuid := pgjobs.current_tenant();
    v_state dramatiq.state;
    v_queue text;
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant in this transaction: reschedule inside a tenant session'
            USING ERRCODE = '42501';
    END IF;
    SELECT q."state", regexp_replace(q.queue_name, '\\.DQ$', '') INTO v_state, v_queue
    FROM dramatiq.queue q WHERE q.message_id = p_id AND q.tenant_id = v_tenant FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    ELSIF v_state = 'consumed' THEN
        RETURN 'running';
    ELSIF v_state <> 'queued' THEN
        RETURN 'finished';
    END IF;
    UPDATE dramatiq.queue q
    SET eta = greatest(p_eta, now()), mtime = now(),
        queue_name = CASE WHEN p_eta > clock_timestamp() THEN v_queue || '.DQ' ELSE v_queue END
    WHERE q.message_id = p_id;
    -- Wake the queue's consumers: a delayed job moved earlier must not wait for a poll.
    PERFORM pg_notify('dramatiq.' || v_queue || '.DQ.enqueue', '{}');
    PERFORM pg_notify('dramatiq.' || v_queue || '.enqueue', '{}');
    RETURN 'rescheduled';
END $$;

REVOKE ALL ON FUNCTION pgjobs.cancel_jobs(uuid[], text), pgjobs.reschedule_job(uuid, timestamptz)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgjobs.cancel_jobs(uuid[], text),
    pgjobs.reschedule_job(uuid, timestamptz) TO app_user, app_actor, app_worker;
"""


def upgrade() -> None:
    op.execute(ROLE)
    op.execute(FUNCTIONS)
    op.execute(CONTROL)


def downgrade() -> None:
    op.execute("DROP SCHEMA pgjobs CASCADE")
