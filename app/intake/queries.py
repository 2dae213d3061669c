"""Every statement the intake runs itself (webhook_events has its own owner module)."""

RESOLVE_TOKEN = "SELECT tenant_id, endpoint_id FROM intake.resolve_token(%(source)s, %(hash)s)"
RESOLVE_KEY = "SELECT tenant_id, endpoint_id FROM intake.resolve_key(%(source)s, %(key)s)"
RESOLVE_API_TOKEN = "SELECT intake.resolve_api_token(%(hash)s)"
SCHEMA_VERSIONS = "SELECT * FROM intake.schema_versions()"

# Under the endpoint's tenant: whether the tenant is active, and its endpoint's live secrets.
SECRETS = """
SELECT t.active, s.id, s.sealed, s.created_at, s.retired_at
FROM tenants t
LEFT JOIN webhook_secrets s ON s.endpoint_id = %(endpoint)s
    AND (s.retired_at IS NULL OR s.retired_at > now())
WHERE t.id = pgjobs.current_tenant()
ORDER BY s.created_at DESC
"""

# The activity feed, under the tenant's RLS: rows after the cursor in (xid, seq) order, each
# marked settled when its transaction is older than every transaction still running (then
# no row can ever appear before it).
FEED = """
SELECT a.seq, a.xid::text::bigint AS xid, a.id, a.event_type, a.title, a.description,
       a.source, a.source_id, a.created_at,
       a.xid < pg_snapshot_xmin(pg_current_snapshot()) AS settled
FROM activity_events a
WHERE (a.xid, a.seq) > (%(xid)s::text::xid8, %(seq)s)
ORDER BY a.xid, a.seq
LIMIT %(limit)s
"""
# Where a new client starts: everything from transactions still running or yet to come.
HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
# Where a client that sent Last-Event-ID resumes: just after that event.
CURSOR_OF = "SELECT xid::text::bigint FROM activity_events WHERE seq = %(seq)s"

# --- administration (operators; app.intake.admin) -------------------------------------------
# Routing rows are written by the owner with the tenant bound, so tenant RLS checks them too.
BIND_TENANT = "SELECT set_config('app.tenant_id', %(tenant)s, true)"
ADD_ENDPOINT = """
INSERT INTO intake.endpoints (tenant_id, source, token_hash, external_key, name)
VALUES (pgjobs.current_tenant(), %(source)s, %(hash)s, lower(%(key)s), %(name)s)
RETURNING id
"""
LIST_ENDPOINTS = """
SELECT e.id, e.tenant_id, e.source, e.external_key, e.name, e.created_at, e.disabled_at,
       (SELECT count(*) FROM webhook_secrets s WHERE s.endpoint_id = e.id
          AND (s.retired_at IS NULL OR s.retired_at > now())) AS active_secrets
FROM intake.endpoints e
WHERE %(tenant)s::uuid IS NULL OR e.tenant_id = %(tenant)s
ORDER BY e.created_at
"""
DISABLE_ENDPOINT = """
UPDATE intake.endpoints SET disabled_at = now()
WHERE id = %(id)s AND tenant_id = pgjobs.current_tenant() AND disabled_at IS NULL
"""
ENDPOINT_VISIBLE = "SELECT 1 FROM intake.endpoints WHERE id = %(id)s AND disabled_at IS NULL"
ACTIVE_SECRETS = """
SELECT id, created_at, retired_at FROM webhook_secrets
WHERE endpoint_id = %(endpoint)s AND (retired_at IS NULL OR retired_at > now())
ORDER BY created_at
"""
ADD_SECRET = """
INSERT INTO webhook_secrets (tenant_id, endpoint_id, sealed)
VALUES (pgjobs.current_tenant(), %(endpoint)s, %(sealed)s)
RETURNING id
"""
RETIRE_SECRET = """
UPDATE webhook_secrets SET retired_at = %(at)s
WHERE id = %(id)s AND (retired_at IS NULL OR retired_at > %(at)s)
RETURNING endpoint_id
"""
RETIRE_OTHERS = """
UPDATE webhook_secrets SET retired_at = %(at)s
WHERE endpoint_id = %(endpoint)s AND id <> %(keep)s
  AND (retired_at IS NULL OR retired_at > %(at)s)
"""
ADD_API_TOKEN = """
INSERT INTO intake.api_tokens (tenant_id, token_hash, name)
VALUES (pgjobs.current_tenant(), %(hash)s, %(name)s)
RETURNING id
"""
REVOKE_API_TOKEN = """
UPDATE intake.api_tokens SET revoked_at = now()
WHERE id = %(id)s AND tenant_id = pgjobs.current_tenant() AND revoked_at IS NULL
"""
