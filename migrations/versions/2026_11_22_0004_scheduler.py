"""Recurring jobs: schedule definitions, the APScheduler job store and the recurring work's data

The ``scheduler`` schema is system data (no tenant rows): definitions, per-tenant overrides,
the ledger of fired slots, the APScheduler job store and scheduler process heartbeats. The
tenant tables the recurring actors work on (users, digests, integrations, locations,
reviews, photo requests) are under RLS like the foundation's.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"

SCHEDULER = """
CREATE SCHEMA scheduler;

-- One row per recurring task; each firing fans out to every active tenant.
CREATE TABLE scheduler.recurring (
    task text PRIMARY KEY,
    actor_name text NOT NULL,
    -- 5 fields (minute hour day month weekday, crontab weekdays: 0 or 7 = Sunday) or
    -- 6 fields with seconds first.
    cron text NOT NULL,
    -- NULL: each tenant's own time zone (tenants.timezone).
    timezone text,
    enabled boolean NOT NULL DEFAULT true,
    -- After downtime: skip missed slots, run once for all of them, or catch up on the
    -- last catch_up_max of them.
    misfire_policy text NOT NULL DEFAULT 'run_once'
        CONSTRAINT recurring_misfire_policy_check
        CHECK (misfire_policy IN ('skip', 'run_once', 'catch_up')),
    catch_up_max integer NOT NULL DEFAULT 1
        CONSTRAINT recurring_catch_up_max_check CHECK (catch_up_max >= 1),
    -- 'skip': a slot later than this is dropped.
    misfire_grace_seconds integer NOT NULL DEFAULT 60
        CONSTRAINT recurring_misfire_grace_seconds_check CHECK (misfire_grace_seconds >= 0),
    -- Keyword arguments given to the actor besides ``slot``.
    args jsonb NOT NULL DEFAULT '{}',
    description text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A tenant's own schedule for a task; NULL columns inherit the definition's.
CREATE TABLE scheduler.tenant_overrides (
    task text NOT NULL REFERENCES scheduler.recurring (task)
        ON DELETE CASCADE ON UPDATE CASCADE,
    tenant_id uuid NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    enabled boolean,
    cron text,
    timezone text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_overrides_pkey PRIMARY KEY (task, tenant_id)
);

-- The last slot fired per schedule (APScheduler job id), written in the same transaction
-- as the slot's jobs: the truth about what ran, whatever APScheduler's store says.
CREATE TABLE scheduler.fired (
    job_id text PRIMARY KEY,
    task text NOT NULL,
    last_slot timestamptz,
    last_fired_at timestamptz,
    slots integer NOT NULL DEFAULT 0,
    tenants integer NOT NULL DEFAULT 0,
    enqueued integer NOT NULL DEFAULT 0,
    duplicates integer NOT NULL DEFAULT 0
);

-- APScheduler 3's SQLAlchemyJobStore table (same columns), owned by the leader.
CREATE TABLE scheduler.apscheduler_jobs (
    id varchar(191) PRIMARY KEY,
    next_run_time double precision,
    job_state bytea NOT NULL
);
CREATE INDEX apscheduler_jobs_next_run_time_idx ON scheduler.apscheduler_jobs (next_run_time);

-- Scheduler processes: one leader, any number of standbys.
CREATE TABLE scheduler.instances (
    instance_id uuid PRIMARY KEY,
    hostname text NOT NULL,
    pid integer NOT NULL,
    "role" text NOT NULL DEFAULT 'standby'
        CONSTRAINT instances_role_check CHECK ("role" IN ('leader', 'standby', 'lost')),
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    leader_since timestamptz,
    last_sync_at timestamptz,
    last_error text
);

-- Each schedule with its next fire time and what its last firing did.
CREATE VIEW scheduler.jobs AS
SELECT j.id AS job_id,
       split_part(j.id, '|', 1) AS task,
       split_part(j.id, '|', 2) AS cron,
       split_part(j.id, '|', 3) AS timezone,
       to_timestamp(j.next_run_time) AS next_fire_at,
       f.last_slot,
       f.last_fired_at,
       f.tenants AS last_tenants,
       f.enqueued AS last_enqueued,
       f.duplicates AS last_duplicates
FROM scheduler.apscheduler_jobs j
LEFT JOIN scheduler.fired f ON f.job_id = j.id;

-- One row: who leads, since when, its last heartbeat and firing, the next fire time.
CREATE VIEW scheduler.health AS
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
           AS standbys
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT * FROM scheduler.instances WHERE "role" = 'leader'
    ORDER BY heartbeat_at DESC LIMIT 1
) l ON true;

INSERT INTO scheduler.recurring
    (task, actor_name, cron, timezone, misfire_policy, catch_up_max, misfire_grace_seconds,
     args, description)
VALUES
    ('digests.daily', 'digests.daily', '0 7 * * *', NULL, 'catch_up', 7, 3600, '{}',
     'Daily digest per user at 07:00 tenant time, covering the previous local day'),
    ('digests.weekly', 'digests.weekly', '0 7 * * 1', NULL, 'catch_up', 4, 3600, '{}',
     'Weekly digest per user on Mondays at 07:00 tenant time, covering the previous week'),
    ('reviews.check', 'reviews.check', '0 * * * *', 'UTC', 'run_once', 1, 600, '{}',
     'Hourly: flag new low-rated reviews that still need a reply'),
    ('tokens.refresh', 'tokens.refresh', '*/15 * * * *', 'UTC', 'run_once', 1, 600,
     '{"window_seconds": 3600}',
     'Every 15 minutes: integrations whose access token expires within the window'),
    ('photos.request', 'photos.request', '0 10 * * 1', NULL, 'skip', 1, 21600, '{}',
     'Weekly on Mondays at 10:00 tenant time: ask for new photos of stale locations');
"""

TENANT_TABLES = """
CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email text NOT NULL,
    name text,
    -- NULL: the tenant's time zone.
    timezone text,
    active boolean NOT NULL DEFAULT true,
    daily_digest boolean NOT NULL DEFAULT true,
    weekly_digest boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_tenant_id_email_key UNIQUE (tenant_id, email)
);

CREATE TABLE digests (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    period text NOT NULL CONSTRAINT digests_period_check CHECK (period IN ('daily', 'weekly')),
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    timezone text NOT NULL,
    counts jsonb NOT NULL DEFAULT '{}',
    total integer NOT NULL DEFAULT 0,
    -- 'ready': built, waiting for the email sender (a provider call, not built here).
    status text NOT NULL DEFAULT 'ready'
        CONSTRAINT digests_status_check CHECK (status IN ('ready', 'sent', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT digests_user_id_period_period_start_key UNIQUE (user_id, period, period_start)
);
CREATE INDEX digests_tenant_id_idx ON digests (tenant_id, created_at);

CREATE TABLE integrations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    provider text NOT NULL,
    account text NOT NULL DEFAULT '',
    access_token_expires_at timestamptz,
    refresh_status text NOT NULL DEFAULT 'ok'
        CONSTRAINT integrations_refresh_status_check
        CHECK (refresh_status IN ('ok', 'refresh_due', 'failed')),
    refresh_requested_at timestamptz,
    last_refreshed_at timestamptz,
    last_error text,
    CONSTRAINT integrations_tenant_id_provider_account_key UNIQUE (tenant_id, provider, account)
);
CREATE INDEX integrations_expiry_idx ON integrations (tenant_id, access_token_expires_at);

CREATE TABLE locations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    google_place_id text,
    active boolean NOT NULL DEFAULT true,
    last_photo_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reviews (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    location_id uuid REFERENCES locations (id) ON DELETE SET NULL,
    source text NOT NULL,
    external_id text NOT NULL,
    rating smallint NOT NULL CONSTRAINT reviews_rating_check CHECK (rating BETWEEN 1 AND 5),
    author_name text,
    body text,
    reviewed_at timestamptz NOT NULL DEFAULT now(),
    replied_at timestamptz,
    -- Set by reviews.check when the review was reported as needing a reply.
    flagged_at timestamptz,
    CONSTRAINT reviews_tenant_id_source_external_id_key
        UNIQUE (tenant_id, source, external_id)
);
CREATE INDEX reviews_unflagged_idx ON reviews (tenant_id, reviewed_at)
    WHERE flagged_at IS NULL AND replied_at IS NULL;

CREATE TABLE photo_requests (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    location_id uuid NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    week_start date NOT NULL,
    -- 'ready': waiting for the notification sender (a provider call, not built here).
    status text NOT NULL DEFAULT 'ready'
        CONSTRAINT photo_requests_status_check CHECK (status IN ('ready', 'sent', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT photo_requests_location_id_week_start_key UNIQUE (location_id, week_start)
);
"""

NEW_TENANT_TABLES = ("users", "digests", "integrations", "locations", "reviews", "photo_requests")


def _rls(table: str) -> str:
    return f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {table}
    USING (tenant_id = {TENANT}) WITH CHECK (tenant_id = {TENANT});
"""


GRANTS = f"""
GRANT SELECT, INSERT, UPDATE, DELETE ON {", ".join(NEW_TENANT_TABLES)} TO app_user, app_worker;
-- The scheduler fans out as app_worker: it reads the schedules and records the fired slot
-- in the transaction that enqueues the slot's jobs.
GRANT USAGE ON SCHEMA scheduler TO app_worker;
GRANT SELECT ON scheduler.recurring, scheduler.tenant_overrides TO app_worker;
GRANT SELECT, INSERT, UPDATE ON scheduler.fired TO app_worker;
-- A tenant edits its own schedule (e.g. the hour of its daily digest) and sees the tasks.
GRANT USAGE ON SCHEMA scheduler TO app_user;
GRANT SELECT ON scheduler.recurring TO app_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON scheduler.tenant_overrides TO app_user;
"""


# Overrides are tenant rows: a tenant sees and edits only its own; the scheduler (as
# app_worker) reads every tenant's to fan out; operators edit any as the owner.
OVERRIDES_RLS = _rls("scheduler.tenant_overrides") + """
CREATE POLICY worker_overrides ON scheduler.tenant_overrides FOR SELECT TO app_worker
    USING (true);
CREATE POLICY owner_overrides ON scheduler.tenant_overrides TO CURRENT_USER
    USING (true) WITH CHECK (true);
"""


def upgrade() -> None:
    op.execute(SCHEDULER)
    op.execute(TENANT_TABLES)
    op.execute("".join(_rls(table) for table in NEW_TENANT_TABLES))
    op.execute(OVERRIDES_RLS)
    op.execute(GRANTS)


def downgrade() -> None:
    op.execute(f"DROP TABLE {', '.join(reversed(NEW_TENANT_TABLES))}")
    op.execute("DROP SCHEMA scheduler CASCADE")
