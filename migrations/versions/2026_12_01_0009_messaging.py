"""Outbound messaging: templates, providers per channel, deliveries, scheduled messages, reminders

Every table is a tenant table (``enable_tenant_rls``). ``deliveries`` is the ledger that
makes a notification never go out twice: one row per idempotency key (the sending job's id),
written and committed before the provider is called, so a retry after a crash finds it.
``messaging_providers`` holds the provider of each (tenant, channel) with its secret sealed
by ``app.sealing``. ``scheduled_messages`` and ``reminders`` each carry the id of the
delayed job that sends them; creating, cancelling and rescheduling change the row and the
job in one transaction. ``jobs.deliveries`` shows the ledger under the reader's RLS.

Users gain a phone number and an owner flag (the business owner receives the photo request
and the review alerts); a digest remembers the notification job that sends it.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op

from app.db.rls import enable_tenant_rls

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CHANNEL = "channel text NOT NULL CONSTRAINT {t}_channel_check " \
          "CHECK (channel IN ('email', 'sms', 'whatsapp'))"

TABLES = f"""
CREATE TABLE message_templates (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL CONSTRAINT message_templates_name_check
        CHECK (name ~ '^[a-z0-9][a-z0-9._-]{{0,99}}$'),
    -- Email only: the subject line and the HTML part (the text part is body_text).
    subject text,
    body_text text NOT NULL,
    body_html text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT message_templates_tenant_id_name_key UNIQUE (tenant_id, name)
);

CREATE TABLE messaging_providers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    {CHANNEL.format(t="messaging_providers")},
    provider text NOT NULL CONSTRAINT messaging_providers_provider_check
        CHECK (provider IN ('smtp', 'twilio', 'whatsapp_cloud')),
    -- Non-secret settings (host, port, sender, base URL...), validated by the application.
    settings jsonb NOT NULL DEFAULT '{{}}',
    -- app.sealing.seal() of the password or token; never stored in clear.
    secret bytea,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messaging_providers_tenant_id_channel_key UNIQUE (tenant_id, channel)
);

CREATE TABLE deliveries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    idempotency_key text NOT NULL,
    job_id uuid,
    {CHANNEL.format(t="deliveries")},
    recipient text NOT NULL,
    template text NOT NULL,
    provider text,
    provider_message_id text,
    -- sending: an attempt is calling the provider (or died doing so: the next reconciles);
    -- sent: accepted by the provider; retrying: failed, certainly not sent, will retry;
    -- failed: permanently refused (dead letter); unknown: may have been sent, not resent.
    status text NOT NULL DEFAULT 'sending' CONSTRAINT deliveries_status_check
        CHECK (status IN ('sending', 'sent', 'retrying', 'failed', 'unknown')),
    attempts integer NOT NULL DEFAULT 0,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    CONSTRAINT deliveries_tenant_id_idempotency_key_key UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX deliveries_tenant_id_created_at_idx ON deliveries (tenant_id, created_at);
CREATE INDEX deliveries_job_id_idx ON deliveries (job_id);

CREATE TABLE scheduled_messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    {CHANNEL.format(t="scheduled_messages")},
    recipient text NOT NULL,
    template text NOT NULL,
    params jsonb NOT NULL DEFAULT '{{}}',
    send_at timestamptz NOT NULL,
    -- The sender's zone: send_at was given (and is shown) as local time there.
    timezone text NOT NULL DEFAULT 'UTC',
    status text NOT NULL DEFAULT 'scheduled' CONSTRAINT scheduled_messages_status_check
        CHECK (status IN ('scheduled', 'sent', 'cancelled', 'failed')),
    -- The delayed job that sends it (a new one when a running job had to be superseded).
    job_id uuid,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    cancelled_at timestamptz
);
CREATE INDEX scheduled_messages_tenant_id_send_at_idx ON scheduled_messages (tenant_id, send_at);

CREATE TABLE reminders (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    {CHANNEL.format(t="reminders")},
    recipient text NOT NULL,
    template text NOT NULL,
    params jsonb NOT NULL DEFAULT '{{}}',
    -- The next (or only) occurrence.
    send_at timestamptz NOT NULL,
    timezone text NOT NULL DEFAULT 'UTC',
    -- A crontab expression in ``timezone`` (e.g. '0 9 * * 1'); NULL: once.
    recurrence text,
    status text NOT NULL DEFAULT 'scheduled' CONSTRAINT reminders_status_check
        CHECK (status IN ('scheduled', 'sent', 'cancelled', 'failed')),
    job_id uuid,
    occurrences integer NOT NULL DEFAULT 0,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_sent_at timestamptz,
    cancelled_at timestamptz
);
CREATE INDEX reminders_tenant_id_send_at_idx ON reminders (tenant_id, send_at);

ALTER TABLE users ADD COLUMN phone text;
ALTER TABLE users ADD COLUMN is_owner boolean NOT NULL DEFAULT false;
ALTER TABLE digests ADD COLUMN notification_job_id uuid;
"""

NEW_TABLES = ("message_templates", "messaging_providers", "deliveries", "scheduled_messages",
              "reminders")

VIEW = """
CREATE VIEW jobs.deliveries WITH (security_invoker = true) AS
SELECT d.id AS delivery_id, d.tenant_id, d.channel, d.recipient, d.template, d.provider,
       d.provider_message_id, d.status, d.attempts, d.error, d.idempotency_key, d.job_id,
       d.created_at, d.updated_at, d.sent_at
FROM deliveries d;
GRANT SELECT ON jobs.deliveries TO app_user, app_actor, app_worker;
"""


def upgrade() -> None:
    op.execute(TABLES)
    for table in NEW_TABLES:
        enable_tenant_rls(op, table)
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW jobs.deliveries")
    op.execute(f"DROP TABLE {', '.join(reversed(NEW_TABLES))}")
    op.execute("ALTER TABLE digests DROP COLUMN notification_job_id")
    op.execute("ALTER TABLE users DROP COLUMN is_owner")
    op.execute("ALTER TABLE users DROP COLUMN phone")
