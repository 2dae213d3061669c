"""Dashboard: tenant admin accounts, the audit log, bulk actions, attempt history (issue 15)

``dashboard_tenant_admins`` is a tenant table (RLS, ``app_user`` only: actor code never needs
a password hash). A sign-in must find the admin's tenant before any tenant is known, so
``dashboard.admin_tenant(username)`` (SECURITY DEFINER, pinned search_path, executable by
``app_user`` only) returns that one tenant id and nothing else; the hash is then read under
``tenant_session`` of that tenant, through RLS.

``dashboard.audit`` and ``dashboard.bulk_actions`` are operational records written by the
dashboard as the owner: who did what, when, and how far a batched action has got. No tenant
role can read or write them (so they are not tenant tables: ``admin_tenant_id`` says which
tenant a tenant admin acted for).

``dashboard_job_attempts`` keeps one row per failed attempt (its error, worker and times),
written by a trigger when a running job goes back to waiting or to the dead letters: the job
row only keeps the last error. The trigger's WHEN clause only lets failures through, so a
job that succeeds pays nothing but that test. It is a tenant table (tenant admins read their
own jobs' attempts under RLS); system jobs (no tenant) are recorded when the owner may write
them. Rows go with their job (FK ``ON DELETE CASCADE``, so retention prunes them too).

``queue_tenant_finished_idx`` serves what a tenant sees: its finished jobs, newest first
(the job list, its dead letters and the queue page's last-hour counts), which the
per-queue finished index cannot find without walking every tenant's rows.

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op

from app.db.rls import enable_tenant_rls

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE SCHEMA dashboard;
REVOKE ALL ON SCHEMA dashboard FROM PUBLIC;

CREATE TABLE dashboard_tenant_admins (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    username text NOT NULL
        CONSTRAINT dashboard_tenant_admins_username_check
        CHECK (username = lower(username) AND length(username) BETWEEN 3 AND 200),
    password_hash text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    -- A username signs in to one tenant: the lookup below needs it unique across tenants.
    CONSTRAINT dashboard_tenant_admins_username_key UNIQUE (username)
);
CREATE INDEX dashboard_tenant_admins_tenant_id_idx ON dashboard_tenant_admins (tenant_id);

CREATE TABLE dashboard_job_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id uuid NOT NULL REFERENCES dramatiq.queue (message_id) ON DELETE CASCADE,
    tenant_id uuid REFERENCES tenants (id) ON DELETE CASCADE,
    queue text NOT NULL,
    attempt integer NOT NULL,
    outcome text NOT NULL,
    error text,
    worker_id uuid,
    started_at timestamptz,
    ended_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dashboard_job_attempts_message_id_idx ON dashboard_job_attempts (message_id);
CREATE INDEX dashboard_job_attempts_ended_at_idx ON dashboard_job_attempts (ended_at);

CREATE TABLE dashboard.audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor_kind text NOT NULL CONSTRAINT audit_actor_kind_check
        CHECK (actor_kind IN ('operator', 'tenant_admin')),
    actor_name text NOT NULL,
    -- The tenant a tenant admin acted for (NULL: an operator). Not a tenant row: no tenant
    -- role can read this table.
    admin_tenant_id uuid,
    action text NOT NULL,
    target text NOT NULL,
    outcome text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_at_idx ON dashboard.audit (at);

CREATE TABLE dashboard.bulk_actions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    action text NOT NULL,
    filter jsonb NOT NULL DEFAULT '{}',
    actor_kind text NOT NULL,
    actor_name text NOT NULL,
    admin_tenant_id uuid,
    status text NOT NULL DEFAULT 'running' CONSTRAINT bulk_actions_status_check
        CHECK (status IN ('running', 'done', 'failed')),
    processed integer NOT NULL DEFAULT 0,
    changed integer NOT NULL DEFAULT 0,
    skipped integer NOT NULL DEFAULT 0,
    batches integer NOT NULL DEFAULT 0,
    error text,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX bulk_actions_started_at_idx ON dashboard.bulk_actions (started_at);

CREATE INDEX queue_tenant_finished_idx ON dramatiq.queue (tenant_id, mtime)
    INCLUDE (queue_name, "state") WHERE "state" IN ('done', 'rejected');
"""

FUNCTIONS = """
-- The tenant an admin username signs in to (NULL: no such active admin). Nothing else.
CREATE FUNCTION dashboard.admin_tenant(p_username text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
    SELECT a.tenant_id FROM public.dashboard_tenant_admins a
    JOIN public.tenants t ON t.id = a.tenant_id
    WHERE a.username = lower(p_username) AND a.active AND t.active
$$;
REVOKE ALL ON FUNCTION dashboard.admin_tenant(text) FROM PUBLIC;
GRANT USAGE ON SCHEMA dashboard TO app_user;
GRANT EXECUTE ON FUNCTION dashboard.admin_tenant(text) TO app_user;

-- One row per failed attempt. Runs as the owner, inside the job's tenant for the insert (the
-- table's one policy decides), then puts the caller's tenant setting back.
CREATE FUNCTION dashboard.record_failed_attempt() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
DECLARE
    v_previous text := current_setting('app.tenant_id', true);
BEGIN
    PERFORM set_config('app.tenant_id', coalesce(NEW.tenant_id::text, ''), true);
    BEGIN
        INSERT INTO public.dashboard_job_attempts
            (message_id, tenant_id, queue, attempt, outcome, error, worker_id, started_at)
        VALUES (NEW.message_id, NEW.tenant_id, regexp_replace(NEW.queue_name, '\\.DQ$', ''),
                NEW.attempts,
                CASE WHEN NEW."state" = 'rejected' THEN 'dead' ELSE 'retrying' END,
                left(NEW.last_error, 4000), OLD.worker_id, OLD.started_at);
    EXCEPTION WHEN OTHERS THEN
        -- History must never fail the job's own state change: a job whose tenant does not
        -- exist (the FK), or a system job under an owner without BYPASSRLS, goes unrecorded.
        RAISE WARNING 'pgjobs dashboard: attempt of job % not recorded: %', NEW.message_id,
            SQLSTATE;
    END;
    PERFORM set_config('app.tenant_id', coalesce(v_previous, ''), true);
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION dashboard.record_failed_attempt() FROM PUBLIC;

CREATE TRIGGER queue_failed_attempt
    AFTER UPDATE OF "state" ON dramatiq.queue
    FOR EACH ROW
    WHEN (OLD."state" = 'consumed' AND NEW."state" IN ('queued', 'rejected')
          AND NEW.attempts >= OLD.attempts AND NEW.last_error IS NOT NULL)
    EXECUTE FUNCTION dashboard.record_failed_attempt();
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    enable_tenant_rls(op, "dashboard_tenant_admins", roles=("app_user",))
    enable_tenant_rls(op, "dashboard_job_attempts", roles=("app_user",), privileges="SELECT")
    op.execute(FUNCTIONS)


def downgrade() -> None:
    op.execute("DROP TRIGGER queue_failed_attempt ON dramatiq.queue")
    op.execute("DROP INDEX dramatiq.queue_tenant_finished_idx")
    op.execute("DROP TABLE dashboard_job_attempts, dashboard_tenant_admins")
    op.execute("DROP SCHEMA dashboard CASCADE")
