"""Every statement of the messaging tables, named, with bound parameters.

Each runs in a tenant transaction (``tenant_session``, ``current_session`` or
``separate_session``): RLS keeps it to that tenant, and new rows take their tenant from
``pgjobs.current_tenant()``, so no caller can write a row for another tenant.
"""

from dataclasses import dataclass

from sqlalchemy import TextClause, text

# -- templates ---------------------------------------------------------------------------

SAVE_TEMPLATE = text("""
    INSERT INTO message_templates (tenant_id, name, subject, body_text, body_html)
    VALUES (pgjobs.current_tenant(), :name, :subject, :body_text, :body_html)
    ON CONFLICT (tenant_id, name) DO UPDATE
    SET subject = EXCLUDED.subject, body_text = EXCLUDED.body_text,
        body_html = EXCLUDED.body_html, updated_at = now()
    RETURNING id""")
FIND_TEMPLATE = text("""
    SELECT name, subject, body_text, body_html FROM message_templates WHERE name = :name""")
DELETE_TEMPLATE = text("DELETE FROM message_templates WHERE name = :name")

# -- providers ---------------------------------------------------------------------------

SET_PROVIDER = text("""
    INSERT INTO messaging_providers (tenant_id, channel, provider, settings, secret)
    VALUES (pgjobs.current_tenant(), :channel, :provider, CAST(:settings AS jsonb), :secret)
    ON CONFLICT (tenant_id, channel) DO UPDATE
    SET provider = EXCLUDED.provider, settings = EXCLUDED.settings,
        secret = EXCLUDED.secret, updated_at = now()""")
FIND_PROVIDER = text("""
    SELECT provider, settings, secret FROM messaging_providers WHERE channel = :channel""")
LIST_PROVIDERS = text("""
    SELECT channel, provider, settings, secret IS NOT NULL AS has_secret, updated_at
    FROM messaging_providers ORDER BY channel""")
DELETE_PROVIDER = text("DELETE FROM messaging_providers WHERE channel = :channel")

# -- deliveries (state machine: app/messaging/deliveries.py) -----------------------------

_DELIVERY = "id, status, attempts, provider, provider_message_id, error"

INSERT_DELIVERY = text(f"""
    INSERT INTO deliveries (tenant_id, idempotency_key, job_id, channel, recipient, template,
                            provider, status, attempts)
    VALUES (pgjobs.current_tenant(), :key, :job, :channel, :recipient, :template, :provider,
            'sending', 1)
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING {_DELIVERY}""")
LOCK_DELIVERY = text(f"""
    SELECT {_DELIVERY} FROM deliveries WHERE idempotency_key = :key FOR UPDATE""")
# Another attempt of the same delivery: 'retrying' / 'failed' were certainly not sent and go
# back to 'sending'; 'sending' stays (this attempt reconciles); 'sent' / 'unknown' stay.
RESUME_DELIVERY = text("""
    UPDATE deliveries
    SET attempts = attempts + 1, updated_at = now(), job_id = coalesce(:job, job_id),
        provider = coalesce(:provider, provider),
        status = CASE WHEN status IN ('retrying', 'failed') THEN 'sending' ELSE status END
    WHERE id = :id""")
MARK_SENT = text("""
    UPDATE deliveries
    SET status = 'sent', provider = :provider, provider_message_id = :provider_message_id,
        sent_at = coalesce(sent_at, now()), updated_at = now(), error = :note
    WHERE id = :id""")
MARK_STATUS = text("""
    UPDATE deliveries SET status = :status, error = :error, updated_at = now()
    WHERE id = :id AND status <> 'sent'""")
NOTE_ERROR = text("""
    UPDATE deliveries SET error = :error, updated_at = now() WHERE id = :id""")
# After a failed attempt (the actor's on_failure hook): a delivery that never reached the
# provider stage gets its row; a final failure settles 'retrying' as 'failed' and an
# unsettled 'sending' as 'unknown'; 'sent' is never touched.
RECORD_FAILURE = text("""
    INSERT INTO deliveries (tenant_id, idempotency_key, job_id, channel, recipient, template,
                            status, attempts, error)
    VALUES (pgjobs.current_tenant(), :key, :job, :channel, :recipient, :template,
            CASE WHEN :final THEN 'failed' ELSE 'retrying' END, 1, :error)
    ON CONFLICT (tenant_id, idempotency_key) DO UPDATE
    SET error = CASE WHEN deliveries.status = 'sent' THEN deliveries.error
                     ELSE EXCLUDED.error END,
        updated_at = now(),
        status = CASE
            WHEN NOT :final OR deliveries.status IN ('sent', 'failed', 'unknown')
                THEN deliveries.status
            WHEN deliveries.status = 'sending' THEN 'unknown'
            ELSE 'failed' END""")
RESOLVE_UNKNOWN = text("""
    UPDATE deliveries
    SET status = CASE WHEN :sent THEN 'sent' ELSE 'retrying' END,
        sent_at = CASE WHEN :sent THEN now() END, updated_at = now(),
        error = CASE WHEN :sent THEN 'confirmed sent by the tenant'
                     ELSE 'confirmed not sent: the next attempt sends it' END
    WHERE id = :id AND status = 'unknown'
    RETURNING id""")
GET_DELIVERY = text("""
    SELECT id, idempotency_key, job_id, channel, recipient, template, provider,
           provider_message_id, status, attempts, error, created_at, sent_at
    FROM deliveries WHERE id = :id""")
DELIVERY_OF_JOB = text("""
    SELECT id, idempotency_key, job_id, channel, recipient, template, provider,
           provider_message_id, status, attempts, error, created_at, sent_at
    FROM deliveries WHERE job_id = :job""")

# -- scheduled messages and reminders (app/messaging/scheduling.py, timed.py) ------------

CLOCK = text("SELECT clock_timestamp()")

INSERT_SCHEDULED = text("""
    INSERT INTO scheduled_messages (tenant_id, channel, recipient, template, params, send_at,
                                    timezone)
    VALUES (pgjobs.current_tenant(), :channel, :recipient, :template, CAST(:params AS jsonb),
            :send_at, :timezone)
    RETURNING id""")
INSERT_REMINDER = text("""
    INSERT INTO reminders (tenant_id, channel, recipient, template, params, send_at, timezone,
                           recurrence)
    VALUES (pgjobs.current_tenant(), :channel, :recipient, :template, CAST(:params AS jsonb),
            :send_at, :timezone, :recurrence)
    RETURNING id""")


@dataclass(frozen=True)
class TimedQueries:
    """The statements one kind of timed message (scheduled message, reminder) needs."""

    lock: TextClause
    moved: TextClause
    cancelled: TextClause
    failed: TextClause
    noted: TextClause


def _timed(table: str, extra: str) -> TimedQueries:
    return TimedQueries(
        lock=text(f"""
            SELECT id, channel, recipient, template, params, send_at, timezone, status,
                   job_id, {extra}
            FROM {table} WHERE id = :id FOR UPDATE"""),
        moved=text(f"""
            UPDATE {table} SET send_at = :send_at, timezone = :timezone, job_id = :job,
                updated_at = now()
            WHERE id = :id"""),
        cancelled=text(f"""
            UPDATE {table} SET status = 'cancelled', cancelled_at = now(), updated_at = now()
            WHERE id = :id"""),
        # Only the row's current job may fail it: a superseded job's failure is not the row's.
        failed=text(f"""
            UPDATE {table} SET status = 'failed', error = :error, updated_at = now()
            WHERE id = :id AND status = 'scheduled' AND job_id = :job"""),
        noted=text(f"""
            UPDATE {table} SET error = :error, updated_at = now()
            WHERE id = :id AND status = 'scheduled' AND job_id = :job"""),
    )


TIMED = {
    "scheduled_messages": _timed("scheduled_messages", "NULL AS recurrence, 0 AS occurrences"),
    "reminders": _timed("reminders", "recurrence, occurrences"),
}

SET_JOB = {
    "scheduled_messages": text("UPDATE scheduled_messages SET job_id = :job WHERE id = :id"),
    "reminders": text("UPDATE reminders SET job_id = :job WHERE id = :id"),
}

SENT_MESSAGE = text("""
    UPDATE scheduled_messages SET status = 'sent', sent_at = now(), error = NULL,
        updated_at = now()
    WHERE id = :id""")
# A recurring reminder stays 'scheduled' with its next occurrence; a one-off one is 'sent'.
SENT_REMINDER = text("""
    UPDATE reminders
    SET occurrences = occurrences + 1, last_sent_at = now(), error = NULL, updated_at = now(),
        status = CASE WHEN CAST(:next_at AS timestamptz) IS NULL THEN 'sent' ELSE status END,
        send_at = coalesce(CAST(:next_at AS timestamptz), send_at),
        job_id = coalesce(CAST(:job AS uuid), job_id)
    WHERE id = :id""")
