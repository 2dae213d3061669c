"""The HTTP webhook intake: endpoints, sealed secrets, API tokens, events once per tenant

* ``intake.endpoints`` and ``intake.api_tokens`` hold what must be searched across tenants
  before a tenant is known (endpoint token hashes, shop domains, Slack team ids, API token
  hashes). The intake reaches them only through ``SECURITY DEFINER`` functions that take a
  hash or a key and return the tenant id (and the endpoint id), nothing else. Tenants may
  read their own rows (tenant RLS) but not write them: operators register endpoints
  (``pgjobs intake ...``), so no tenant can claim another's shop domain or team id. The
  migrating owner reads and writes them through ``owner_manages``, so the lookup functions
  also work when the owner is neither a superuser nor BYPASSRLS.
* ``webhook_secrets`` holds each endpoint's signing secrets, sealed (``app.sealing``), under
  tenant RLS; two can be active during a rotation, each with its created and retired time.
* ``webhook_events`` is unique per (tenant, source, external event id): before, one tenant
  could block another's events by inserting their ids first. It keeps the raw body and the
  headers needed to reprocess an event, the processing job's id and an attempt count.
* ``activity_events`` gets ``seq`` (bigserial: the SSE event id) and ``xid`` (the inserting
  transaction): the feed orders by (xid, seq) and only shows rows whose transaction is
  older than every running one, so a reader resuming from an id never skips a row that
  committed late. A statement trigger NOTIFYs the tenant id (ids only) on insert.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op

from app.db.rls import enable_tenant_rls

revision = "0008"
down_revision = "0012"
branch_labels = None
depends_on = None

PRIVATE = """
CREATE SCHEMA intake;
REVOKE ALL ON SCHEMA intake FROM PUBLIC;
GRANT USAGE ON SCHEMA intake TO app_user;

CREATE TABLE intake.endpoints (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source text NOT NULL,
    -- SHA-256 of the endpoint token (the token itself is shown once, when created).
    token_hash bytea NOT NULL,
    -- What the sender names itself by: a Shopify shop domain, a Slack team id (lower case).
    external_key text CONSTRAINT endpoints_external_key_check
        CHECK (external_key = lower(external_key)),
    name text,
    created_at timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz,
    CONSTRAINT endpoints_token_hash_key UNIQUE (token_hash),
    CONSTRAINT endpoints_source_external_key_key UNIQUE (source, external_key),
    CONSTRAINT endpoints_id_tenant_id_key UNIQUE (id, tenant_id)
);
CREATE INDEX endpoints_tenant_id_idx ON intake.endpoints (tenant_id);

CREATE TABLE intake.api_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL CONSTRAINT api_tokens_token_hash_key UNIQUE,
    name text,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX api_tokens_tenant_id_idx ON intake.api_tokens (tenant_id);
"""

SECRETS = """
CREATE TABLE webhook_secrets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    endpoint_id uuid NOT NULL,
    sealed bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz,
    -- A secret belongs to an endpoint of its own tenant, never to another tenant's.
    CONSTRAINT webhook_secrets_endpoint_id_fkey FOREIGN KEY (endpoint_id, tenant_id)
        REFERENCES intake.endpoints (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX webhook_secrets_endpoint_id_idx ON webhook_secrets (endpoint_id);
"""

FUNCTIONS = """
-- The endpoint a token opens, for one source; nothing when unknown, disabled or elsewhere.
CREATE FUNCTION intake.resolve_token(p_source text, p_token_hash bytea)
RETURNS TABLE (tenant_id uuid, endpoint_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
    SELECT e.tenant_id, e.id FROM intake.endpoints e
    WHERE e.token_hash = p_token_hash AND e.source = p_source AND e.disabled_at IS NULL
$$;

-- The endpoint a sender's own name (shop domain, Slack team id) designates.
CREATE FUNCTION intake.resolve_key(p_source text, p_key text)
RETURNS TABLE (tenant_id uuid, endpoint_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
    SELECT e.tenant_id, e.id FROM intake.endpoints e
    WHERE e.source = p_source AND e.external_key = lower(p_key) AND e.disabled_at IS NULL
$$;

-- The tenant an API token (activity feed) belongs to.
CREATE FUNCTION intake.resolve_api_token(p_token_hash bytea)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
    SELECT t.tenant_id FROM intake.api_tokens t
    WHERE t.token_hash = p_token_hash AND t.revoked_at IS NULL
$$;

-- The applied migration revisions, for /readyz (alembic_version is the owner's).
CREATE FUNCTION intake.schema_versions()
RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
AS $$ SELECT version_num::text FROM public.alembic_version $$;

REVOKE ALL ON FUNCTION intake.resolve_token(text, bytea), intake.resolve_key(text, text),
    intake.resolve_api_token(bytea), intake.schema_versions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION intake.resolve_token(text, bytea), intake.resolve_key(text, text),
    intake.resolve_api_token(bytea), intake.schema_versions() TO app_user;

-- Intake processes cache verification material; any change to it tells them (ids only).
CREATE FUNCTION intake.credentials_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public
AS $$
BEGIN
    PERFORM pg_notify('pgjobs.intake_credentials',
                      CASE WHEN TG_TABLE_NAME = 'endpoints'
                           THEN COALESCE(NEW.id, OLD.id)
                           ELSE COALESCE(NEW.endpoint_id, OLD.endpoint_id) END::text);
    RETURN NULL;
END $$;
CREATE TRIGGER endpoints_changed AFTER UPDATE OR DELETE ON intake.endpoints
    FOR EACH ROW EXECUTE FUNCTION intake.credentials_changed();
CREATE TRIGGER webhook_secrets_changed AFTER INSERT OR UPDATE OR DELETE ON webhook_secrets
    FOR EACH ROW EXECUTE FUNCTION intake.credentials_changed();
"""

EVENTS = """
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_source_external_event_id_key;
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_tenant_id_source_external_event_id_key
    UNIQUE (tenant_id, source, external_event_id);
ALTER TABLE webhook_events
    ADD COLUMN endpoint_id uuid,
    ADD COLUMN content_type text,
    ADD COLUMN headers jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN raw_body bytea,
    ADD COLUMN job_id uuid,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN started_at timestamptz;
CREATE INDEX webhook_events_status_idx ON webhook_events (status, received_at);
"""

ACTIVITY = """
ALTER TABLE activity_events
    ADD COLUMN seq bigserial NOT NULL,
    ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE activity_events ADD CONSTRAINT activity_events_seq_key UNIQUE (seq);
CREATE INDEX activity_events_tenant_id_xid_seq_idx ON activity_events (tenant_id, xid, seq);
GRANT USAGE ON SEQUENCE activity_events_seq_seq TO app_user, app_actor, app_worker;

-- Wake the activity feeds of the tenants a statement added events for (ids only).
CREATE FUNCTION intake.activity_added() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public
AS $$
BEGIN
    PERFORM pg_notify('pgjobs.activity', json_build_object('tenant_id', t.tenant_id)::text)
    FROM (SELECT DISTINCT tenant_id FROM added) t;
    RETURN NULL;
END $$;
CREATE TRIGGER activity_events_added AFTER INSERT ON activity_events
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION intake.activity_added();
"""


OWNER = """
CREATE POLICY owner_manages ON intake.endpoints TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY owner_manages ON intake.api_tokens TO CURRENT_USER USING (true) WITH CHECK (true);
"""


def upgrade() -> None:
    op.execute(PRIVATE)
    for table in ("intake.endpoints", "intake.api_tokens"):
        enable_tenant_rls(op, table, roles=("app_user",), privileges="SELECT")
    op.execute(OWNER)
    op.execute(SECRETS)
    # Secrets are read and rotated by application code only, never by actors.
    enable_tenant_rls(op, "webhook_secrets", roles=("app_user",))
    op.execute(FUNCTIONS)
    op.execute(EVENTS)
    op.execute(ACTIVITY)


def downgrade() -> None:
    op.execute("""
DROP TRIGGER activity_events_added ON activity_events;
DROP INDEX activity_events_tenant_id_xid_seq_idx;
ALTER TABLE activity_events DROP CONSTRAINT activity_events_seq_key;
ALTER TABLE activity_events DROP COLUMN xid, DROP COLUMN seq;
DROP INDEX webhook_events_status_idx;
ALTER TABLE webhook_events
    DROP COLUMN endpoint_id, DROP COLUMN content_type, DROP COLUMN headers,
    DROP COLUMN raw_body, DROP COLUMN job_id, DROP COLUMN attempts, DROP COLUMN started_at;
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_tenant_id_source_external_event_id_key;
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_source_external_event_id_key
    UNIQUE (source, external_event_id);
DROP TABLE webhook_secrets;
DROP SCHEMA intake CASCADE;
""")
