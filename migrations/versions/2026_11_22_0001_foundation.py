"""Foundation: the broker table, roles, tenant tables and Row-Level Security.

The broker table keeps dramatiq-pg's name, state enum and columns, so its stock consumer,
stats and purge queries still work on it; the added columns are what a job system needs.
Roles are cluster-wide and may serve other databases, so downgrade leaves them in place.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import os

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"

ROLES = """
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['app_user', 'app_worker'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            -- Roles are shared by every database of the cluster, and advisory locks are
            -- not: a migration of another database may create the role at the same time.
            BEGIN
                EXECUTE format(
                    'CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = r AND (rolsuper OR rolbypassrls)) THEN
            RAISE EXCEPTION 'role % exists with SUPERUSER or BYPASSRLS: it would bypass '
                            'Row-Level Security; fix the role before migrating', r;
        END IF;
    END LOOP;
END $$;
"""

BROKER = """
CREATE SCHEMA dramatiq;
CREATE TYPE dramatiq.state AS ENUM ('queued', 'consumed', 'rejected', 'done');

CREATE TABLE dramatiq.queue (
    -- dramatiq-pg's columns, unchanged.
    message_id uuid PRIMARY KEY,
    queue_name text NOT NULL DEFAULT 'default',
    "state" dramatiq.state,
    mtime timestamptz DEFAULT now(),
    message jsonb,
    "result" jsonb,
    result_ttl timestamptz,
    -- What a job system adds.
    tenant_id uuid,
    actor_name text,
    eta timestamptz NOT NULL DEFAULT now(),
    priority smallint NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer,
    last_error text,
    unique_key text,
    unique_until timestamptz,
    progress smallint CONSTRAINT queue_progress_check CHECK (progress BETWEEN 0 AND 100),
    progress_message text,
    worker_id uuid,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz
);

-- The claim path: due rows of one queue, highest priority first, then oldest eta.
CREATE INDEX queue_claim_idx ON dramatiq.queue (queue_name, priority DESC, eta)
    WHERE "state" = 'queued';
-- Delayed rows wait in '<queue>.DQ' (dramatiq-pg's convention) until their eta.
CREATE INDEX queue_delayed_idx ON dramatiq.queue (queue_name, eta)
    WHERE "state" = 'queued' AND queue_name LIKE '%.DQ';
-- Rescue: rows held by a worker.
CREATE INDEX queue_leased_idx ON dramatiq.queue (worker_id) WHERE "state" = 'consumed';
-- Retention and dramatiq-pg's purge: finished rows by age.
CREATE INDEX queue_finished_idx ON dramatiq.queue (queue_name, "state", mtime)
    WHERE "state" IN ('done', 'rejected');
-- Unique jobs: one live row per (tenant, key); NULL tenants (system jobs) compare equal.
CREATE UNIQUE INDEX queue_unique_key_idx ON dramatiq.queue (tenant_id, unique_key)
    NULLS NOT DISTINCT WHERE unique_key IS NOT NULL;

-- A paused queue keeps accepting jobs; no worker claims from it until it is resumed.
CREATE TABLE dramatiq.paused_queues (
    queue_name text PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT now()
);

-- Worker processes announce themselves here; a stale heartbeat means their jobs are orphans.
CREATE TABLE dramatiq.workers (
    worker_id uuid PRIMARY KEY,
    hostname text NOT NULL,
    pid integer NOT NULL,
    queues text[] NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
"""

TENANT_TABLES = """
CREATE TABLE tenants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    timezone text NOT NULL DEFAULT 'UTC',
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE activity_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    event_type text NOT NULL,
    title text NOT NULL,
    description text,
    metadata jsonb,
    source text NOT NULL,
    source_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activity_events_tenant_created_idx ON activity_events (tenant_id, created_at);

CREATE TABLE webhook_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source text NOT NULL,
    external_event_id text NOT NULL,
    event_type text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'ENQUEUED'
        CONSTRAINT webhook_events_status_check
        CHECK (status IN ('ENQUEUED', 'PROCESSING', 'COMPLETED', 'FAILED')),
    error text,
    received_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    CONSTRAINT webhook_events_source_external_event_id_key UNIQUE (source, external_event_id)
);
CREATE INDEX webhook_events_tenant_idx ON webhook_events (tenant_id, received_at);
"""

RLS = f"""
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants USING (id = {TENANT});
-- Workers check that a job's tenant exists and is active before running it.
CREATE POLICY worker_tenants ON tenants FOR SELECT TO app_worker USING (true);

ALTER TABLE activity_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE activity_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON activity_events
    USING (tenant_id = {TENANT}) WITH CHECK (tenant_id = {TENANT});

ALTER TABLE webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_events
    USING (tenant_id = {TENANT}) WITH CHECK (tenant_id = {TENANT});

-- Job rows: application code sees and enqueues only its tenant's jobs; workers claim any;
-- the migrating owner (operations, inspection) sees all.
ALTER TABLE dramatiq.queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE dramatiq.queue FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_jobs ON dramatiq.queue TO app_user
    USING (tenant_id = {TENANT}) WITH CHECK (tenant_id = {TENANT});
CREATE POLICY worker_jobs ON dramatiq.queue TO app_worker USING (true) WITH CHECK (true);
CREATE POLICY owner_jobs ON dramatiq.queue TO CURRENT_USER USING (true) WITH CHECK (true);
"""

GRANTS = """
GRANT USAGE ON SCHEMA dramatiq TO app_user, app_worker;
GRANT SELECT, INSERT ON dramatiq.queue TO app_user;
-- A finished job's unique key is given up when its window has passed (see RELEASE_UNIQUE).
GRANT UPDATE (unique_key) ON dramatiq.queue TO app_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON dramatiq.queue TO app_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON dramatiq.workers TO app_worker;
GRANT SELECT ON dramatiq.paused_queues TO app_worker;
GRANT SELECT ON tenants TO app_user, app_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON activity_events, webhook_events TO app_user, app_worker;
"""


def _set_passwords() -> None:
    """Give the roles passwords from the environment, when set (secrets never live in code).

    Sent as SCRAM verifiers computed on the client: the password never reaches the server.
    """
    from app.db.roles import set_password

    conn = op.get_bind().connection.driver_connection
    for role, env in (("app_user", "APP_USER_PASSWORD"), ("app_worker", "APP_WORKER_PASSWORD")):
        password = os.environ.get(env)
        if password:
            set_password(conn, role, password)


def upgrade() -> None:
    op.execute(ROLES)
    _set_passwords()
    op.execute(BROKER)
    op.execute(TENANT_TABLES)
    op.execute(RLS)
    op.execute(GRANTS)


def downgrade() -> None:
    op.execute("DROP TABLE webhook_events, activity_events, tenants")
    op.execute("DROP SCHEMA dramatiq CASCADE")
