"""Job families: the Slack AI assistant and commerce sync (issue 13)

Tenant tables, each under tenant isolation through ``enable_tenant_rls``:

* ``slack_workspaces``: a tenant's Slack installation (team id, bot user, sealed bot token);
* ``ai_suggestions``: one row per ``ai.respond`` job: the suggestion, whether it was posted;
* ``commerce_channels``: Shopify / WooCommerce stores and carrier accounts, credentials sealed;
* ``sync_cursors``: per channel and resource, the watermark of the last completed sync and,
  while a sync runs, the cursor of its next page (committed with each page's records);
* ``commerce_records``: what syncs and webhooks brought in, one row per remote record;
* ``shipments``: shipments created with a carrier, their idempotency key and tracking.

Children reference a channel with ``(tenant_id, channel_id)``, so a row can only point at a
channel of its own tenant (a foreign key check does not go through RLS).

``pgjobs.tenant_for_slack_team(team_id)`` finds the tenant of a Slack team before any tenant
is known (the Slack events route), as a narrow ``SECURITY DEFINER`` function for app_user.

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op

from app.db.rls import enable_tenant_rls

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = """
CREATE TABLE slack_workspaces (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    team_id text NOT NULL,
    bot_user_id text,
    bot_token bytea NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT slack_workspaces_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT slack_workspaces_team_id_key UNIQUE (team_id)
);

CREATE TABLE ai_suggestions (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job_id uuid NOT NULL,
    channel_id text NOT NULL,
    user_id text NOT NULL,
    message_ts text NOT NULL,
    triggered_by text NOT NULL,
    suggestion text,
    status text NOT NULL DEFAULT 'generated',
    error text,
    processing_time_ms integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    posted_at timestamptz,
    CONSTRAINT ai_suggestions_pkey PRIMARY KEY (id),
    CONSTRAINT ai_suggestions_tenant_id_job_id_key UNIQUE (tenant_id, job_id),
    CONSTRAINT ai_suggestions_status_check CHECK (status IN ('generated', 'posted', 'failed')),
    CONSTRAINT ai_suggestions_triggered_by_check
        CHECK (triggered_by IN ('mention', 'reply', 'thread', 'message_action'))
);
CREATE INDEX ai_suggestions_tenant_id_created_at_idx ON ai_suggestions (tenant_id, created_at);

CREATE TABLE commerce_channels (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    platform text NOT NULL,
    name text NOT NULL,
    base_url text NOT NULL,
    credentials bytea NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT commerce_channels_pkey PRIMARY KEY (id),
    CONSTRAINT commerce_channels_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT commerce_channels_platform_check
        CHECK (platform IN ('shopify', 'woocommerce', 'carrier'))
);

CREATE TABLE sync_cursors (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel_id uuid NOT NULL,
    resource text NOT NULL,
    since timestamptz,
    completed_at timestamptz,
    runs integer NOT NULL DEFAULT 0,
    run_started_at timestamptz,
    run_since timestamptz,
    page_cursor text,
    high_water timestamptz,
    run_pages integer NOT NULL DEFAULT 0,
    run_records integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sync_cursors_pkey PRIMARY KEY (channel_id, resource),
    CONSTRAINT sync_cursors_tenant_id_fkey1 FOREIGN KEY (tenant_id, channel_id)
        REFERENCES commerce_channels (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE commerce_records (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel_id uuid NOT NULL,
    resource text NOT NULL,
    external_id text NOT NULL,
    data jsonb NOT NULL,
    remote_updated_at timestamptz,
    writes integer NOT NULL DEFAULT 1,
    source text NOT NULL DEFAULT 'sync',
    synced_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT commerce_records_pkey PRIMARY KEY (channel_id, resource, external_id),
    CONSTRAINT commerce_records_tenant_id_fkey1 FOREIGN KEY (tenant_id, channel_id)
        REFERENCES commerce_channels (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX commerce_records_tenant_id_resource_idx ON commerce_records (tenant_id, resource);

CREATE TABLE shipments (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    carrier_channel_id uuid NOT NULL,
    order_ref text NOT NULL,
    idempotency_key uuid NOT NULL DEFAULT gen_random_uuid(),
    status text NOT NULL DEFAULT 'creating',
    carrier_shipment_id text,
    tracking_number text,
    label_url text,
    tracking_events jsonb NOT NULL DEFAULT '[]',
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT shipments_pkey PRIMARY KEY (id),
    CONSTRAINT shipments_carrier_channel_id_order_ref_key UNIQUE (carrier_channel_id, order_ref),
    CONSTRAINT shipments_tenant_id_fkey1 FOREIGN KEY (tenant_id, carrier_channel_id)
        REFERENCES commerce_channels (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX shipments_tenant_id_status_idx ON shipments (tenant_id, status);
"""

TENANT_TABLES = ("slack_workspaces", "ai_suggestions", "commerce_channels", "sync_cursors",
                 "commerce_records", "shipments")

FUNCTIONS = """
-- The tenant of a Slack team, for the Slack events route, which must find it before it can
-- open a tenant session. Returns the id and nothing else; whether the tenant is active is
-- decided later, where tenants are read (enqueue and the worker refuse inactive ones).
CREATE FUNCTION pgjobs.tenant_for_slack_team(p_team_id text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
AS $$ SELECT w.tenant_id FROM public.slack_workspaces w WHERE w.team_id = p_team_id $$;
REVOKE ALL ON FUNCTION pgjobs.tenant_for_slack_team(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgjobs.tenant_for_slack_team(text) TO app_user;
-- The function runs as the owner, and FORCE ROW LEVEL SECURITY applies to owners that are
-- not superusers: let the owner (only) read team ids to answer it.
CREATE POLICY owner_team_lookup ON slack_workspaces FOR SELECT TO CURRENT_USER USING (true);
"""


def upgrade() -> None:
    op.execute(TABLES)
    for table in TENANT_TABLES:
        enable_tenant_rls(op, table)
    op.execute(FUNCTIONS)


def downgrade() -> None:
    op.execute("DROP FUNCTION pgjobs.tenant_for_slack_team(text)")
    op.execute("DROP POLICY owner_team_lookup ON slack_workspaces")
    op.execute("DROP TABLE " + ", ".join(reversed(TENANT_TABLES)))
