"""Every SQL statement of the commerce family, bound parameters only, run on the psycopg
connection under the caller's session (so under its tenant's RLS and in its transaction)."""

# -- channels -------------------------------------------------------------------------------

ADD_CHANNEL = """
INSERT INTO commerce_channels (tenant_id, platform, name, base_url, credentials)
VALUES (%(tenant)s, %(platform)s, %(name)s, %(base_url)s, %(credentials)s)
RETURNING id
"""

GET_CHANNEL = """
SELECT id, tenant_id, platform, name, base_url, credentials, active
FROM commerce_channels WHERE id = %(id)s
"""

CHANNELS_OF = """
SELECT id, tenant_id, platform, name, base_url, credentials, active
FROM commerce_channels WHERE platform = %(platform)s AND active ORDER BY created_at, id
"""

# -- sync cursors ---------------------------------------------------------------------------

ENSURE_CURSOR = """
INSERT INTO sync_cursors (tenant_id, channel_id, resource)
VALUES (%(tenant)s, %(channel)s, %(resource)s)
ON CONFLICT (channel_id, resource) DO NOTHING
"""

# A run in progress (run_started_at set) is resumed as it is; otherwise a new run starts
# from the watermark (or from nothing when full). ``resumed`` says which.
START_OR_RESUME = """
WITH old AS (
    SELECT channel_id, resource, run_started_at FROM sync_cursors
    WHERE channel_id = %(channel)s AND resource = %(resource)s FOR UPDATE
)
UPDATE sync_cursors c SET
    run_since = CASE WHEN c.run_started_at IS NOT NULL THEN c.run_since
                     WHEN %(full)s THEN NULL ELSE c.since END,
    high_water = CASE WHEN c.run_started_at IS NOT NULL THEN c.high_water
                      WHEN %(full)s THEN NULL ELSE c.since END,
    page_cursor = CASE WHEN c.run_started_at IS NOT NULL THEN c.page_cursor END,
    run_pages = CASE WHEN c.run_started_at IS NOT NULL THEN c.run_pages ELSE 0 END,
    run_records = CASE WHEN c.run_started_at IS NOT NULL THEN c.run_records ELSE 0 END,
    run_started_at = coalesce(c.run_started_at, now()),
    updated_at = now()
FROM old
WHERE c.channel_id = old.channel_id AND c.resource = old.resource
RETURNING c.channel_id, c.resource, c.run_since, c.page_cursor, c.high_water, c.run_pages,
          c.run_records, old.run_started_at IS NOT NULL AS resumed
"""

# Compare-and-set on run_pages: an attempt that lost its job to a rescue (and still runs)
# finds the count moved on and writes nothing.
ADVANCE = """
UPDATE sync_cursors SET
    page_cursor = %(next)s, high_water = greatest(high_water, %(high_water)s),
    run_pages = run_pages + 1, run_records = run_records + %(records)s, updated_at = now()
WHERE channel_id = %(channel)s AND resource = %(resource)s
  AND run_started_at IS NOT NULL AND run_pages = %(pages)s
RETURNING channel_id, resource, run_since, page_cursor, high_water, run_pages, run_records,
          true AS resumed
"""

FINISH = """
UPDATE sync_cursors SET
    since = coalesce(high_water, run_since, since), completed_at = now(), runs = runs + 1,
    run_started_at = NULL, run_since = NULL, page_cursor = NULL, high_water = NULL,
    updated_at = now()
WHERE channel_id = %(channel)s AND resource = %(resource)s
  AND run_started_at IS NOT NULL AND run_pages = %(pages)s
RETURNING since, runs
"""

# -- records --------------------------------------------------------------------------------

# Unchanged data is not rewritten (``writes`` counts real changes), and an older version
# (a late webhook) never overwrites a newer one.
UPSERT_RECORDS = """
INSERT INTO commerce_records AS r (tenant_id, channel_id, resource, external_id, data,
                                   remote_updated_at, source)
SELECT %(tenant)s, %(channel)s, %(resource)s, x.external_id, x.data, x.updated_at, %(source)s
FROM unnest(%(ids)s::text[], %(datas)s::jsonb[], %(times)s::timestamptz[])
     AS x(external_id, data, updated_at)
ON CONFLICT (channel_id, resource, external_id) DO UPDATE
SET data = EXCLUDED.data, remote_updated_at = EXCLUDED.remote_updated_at,
    writes = r.writes + 1, source = EXCLUDED.source, synced_at = now()
WHERE r.data IS DISTINCT FROM EXCLUDED.data
  AND (r.remote_updated_at IS NULL OR EXCLUDED.remote_updated_at IS NULL
       OR EXCLUDED.remote_updated_at >= r.remote_updated_at)
RETURNING external_id
"""

# -- shipments ------------------------------------------------------------------------------

# Recorded before the carrier is called: a retry finds the row and its idempotency key. A
# failed shipment asked for again (an operator's retry) is tried again, with the same key.
RECORD_SHIPMENT = """
INSERT INTO shipments AS s (tenant_id, carrier_channel_id, order_ref)
VALUES (%(tenant)s, %(channel)s, %(order_ref)s)
ON CONFLICT (carrier_channel_id, order_ref) DO UPDATE
SET status = CASE WHEN s.status = 'failed' THEN 'creating' ELSE s.status END,
    error = CASE WHEN s.status = 'failed' THEN NULL ELSE s.error END, updated_at = now()
RETURNING id, carrier_channel_id, order_ref, idempotency_key, status, carrier_shipment_id,
          tracking_number, label_url, error
"""

SHIPMENT_CREATED = """
UPDATE shipments SET status = 'created', carrier_shipment_id = %(carrier_id)s,
    tracking_number = %(tracking)s, label_url = %(label)s, error = NULL, updated_at = now()
WHERE id = %(id)s
"""

SHIPMENT_FAILED = """
UPDATE shipments SET status = 'failed', error = %(error)s, updated_at = now()
WHERE carrier_channel_id = %(channel)s AND order_ref = %(order_ref)s AND status = 'creating'
"""

GET_SHIPMENT = """
SELECT id, carrier_channel_id, order_ref, idempotency_key, status, carrier_shipment_id,
       tracking_number, label_url, error
FROM shipments WHERE id = %(id)s
"""

SHIPMENT_BY_CARRIER_ID = """
SELECT id, carrier_channel_id, order_ref, idempotency_key, status, carrier_shipment_id,
       tracking_number, label_url, error
FROM shipments WHERE carrier_shipment_id = %(carrier_id)s
"""

TRACKED = """
UPDATE shipments SET status = %(status)s, tracking_events = %(events)s, updated_at = now()
WHERE id = %(id)s
"""

OPEN_SHIPMENTS = """
SELECT id FROM shipments
WHERE carrier_shipment_id IS NOT NULL AND status NOT IN ('delivered', 'failed', 'returned')
ORDER BY updated_at LIMIT %(limit)s
"""

# -- webhook events (the intake's table) ----------------------------------------------------

WEBHOOK_STATUS = """
UPDATE webhook_events SET status = %(status)s, error = %(error)s,
    processed_at = CASE WHEN %(status)s IN ('COMPLETED', 'FAILED') THEN now() END
WHERE source = %(source)s AND external_event_id = %(event_id)s AND status <> 'COMPLETED'
"""
