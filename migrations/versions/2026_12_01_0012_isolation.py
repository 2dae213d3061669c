"""Isolation by the database: signed job contexts, one insert path, tenant-scoped limits

What changes, and why (issue 10):

* Actor sessions run as ``app_actor``. Their tenant is not a setting they choose: it is set
  from ``pgjobs.enter_job(id, lease)``, which checks that the caller holds the lease of a
  running job (a token only the broker's claim can compute) and returns that job's tenant
  with an HMAC over (tenant, backend pid, transaction start) keyed by a secret only the
  owner can read. ``pgjobs.current_tenant()`` verifies it on every statement for
  ``app_actor``; a forged or replayed ``app.tenant_id`` makes the tenant NULL, so the
  session sees no tenant row and writes none. (``app_user``, application code, still names
  its tenant: it is the code that authenticated the request.)
* Tenant roles have no INSERT, UPDATE or DELETE on the job table. They enqueue through
  ``pgjobs.enqueue()``, which takes the tenant from the transaction, derives every column
  from the message itself, forces the execution columns (waiting state, no worker, no
  attempts, no result), refuses options that would make the broker enqueue later
  (pipelines, callbacks) or name a tenant, and scopes every limit key to the tenant. The
  broker and the scheduler (``app_worker``) use ``pgjobs.enqueue_for_tenants()``; a system
  job (no tenant) fans out to tenants only through ``pgjobs.fan_out()``.
* ``app_worker`` (the broker's own connections) loses every privilege on tenant tables: it
  claims and completes jobs, and reads ``tenants`` to skip inactive ones, nothing else.
* A worker's lease is stored with it (``lease_expires_at``), so rescue judges each worker by
  its own lease, never by the rescuer's setting.

Revision ID: 0012
Revises: 0007
Create Date: 2026-12-01
"""

import os

from alembic import op

from app.db.migration_text import migration_module

revision = "0012"
down_revision = "0007"
branch_labels = None
depends_on = None

TENANT = "(SELECT pgjobs.current_tenant())"
#: What policies compared with before (restored by downgrade).
OLD_TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"

# The HMAC key never leaves the server: made from strong random UUIDs, padded per RFC 2104.
KEY = """
CREATE TABLE pgjobs.keys (
    id integer PRIMARY KEY CONSTRAINT keys_id_check CHECK (id = 1),
    ipad bytea NOT NULL,
    opad bytea NOT NULL
);
REVOKE ALL ON pgjobs.keys FROM PUBLIC;

DO $$
DECLARE
    k bytea := decode(replace(gen_random_uuid()::text || gen_random_uuid()::text
                              || gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
                      'hex');
    i bytea;
    o bytea;
BEGIN
    k := k || decode(repeat('00', 64 - length(k)), 'hex');
    i := k;
    o := k;
    FOR n IN 0 .. 63 LOOP
        i := set_byte(i, n, get_byte(k, n) # 54);   -- 0x36
        o := set_byte(o, n, get_byte(k, n) # 92);   -- 0x5c
    END LOOP;
    INSERT INTO pgjobs.keys VALUES (1, i, o);
END $$;
"""

FUNCTIONS = r"""
-- HMAC-SHA256 of p_value under the server's key (hex). Owner only.
CREATE FUNCTION pgjobs._hmac(p_value text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$
    SELECT encode(sha256(k.opad || sha256(k.ipad || convert_to(p_value, 'UTF8'))), 'hex')
    FROM pgjobs.keys k WHERE k.id = 1
$$;

-- What a job context signs: the tenant (or 'system'), this backend, this transaction.
CREATE FUNCTION pgjobs._context_value(p_tenant text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pgjobs
AS $$
    SELECT p_tenant || '|' || pg_backend_pid()::text || '|'
           || (extract(epoch FROM transaction_timestamp()) * 1000000)::bigint::text
$$;

CREATE FUNCTION pgjobs._context_ok(p_tenant text, p_signature text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$
    SELECT coalesce(p_signature, '') <> ''
       AND p_signature = pgjobs._hmac(pgjobs._context_value(p_tenant))
$$;

-- Whether this session acts as an actor. session_user, not current_user: inside a
-- SECURITY DEFINER function current_user is the owner, and the check must still hold.
CREATE FUNCTION pgjobs._is_actor() RETURNS boolean
LANGUAGE sql STABLE
AS $$ SELECT session_user::text = 'app_actor' OR current_user::text = 'app_actor' $$;

-- The tenant the current transaction acts for. An actor's must carry a valid signature
-- from enter_job(); anything else (a forged setting, one copied from another transaction
-- or backend) is no tenant at all.
CREATE OR REPLACE FUNCTION pgjobs.current_tenant() RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_tenant text := NULLIF(current_setting('app.tenant_id', true), '');
BEGIN
    IF pgjobs._is_actor() AND NOT pgjobs._context_ok(
        coalesce(v_tenant, 'system'), current_setting('pgjobs.context', true)) THEN
        RETURN NULL;
    END IF;
    RETURN v_tenant::uuid;
END $$;

-- True inside a verified system job (tenant_free): the only context that may fan out.
CREATE FUNCTION pgjobs.in_system_job() RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT pgjobs._is_actor()
       AND NULLIF(current_setting('app.tenant_id', true), '') IS NULL
       AND pgjobs._context_ok('system', current_setting('pgjobs.context', true))
$$;

-- The lease of one claim: only the claimer (app_worker) can compute it; a rescued and
-- re-claimed job has a new one, so an old attempt can neither enter nor complete it.
CREATE FUNCTION pgjobs.lease_token(p_id uuid, p_attempts integer, p_worker uuid)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$ SELECT pgjobs._hmac('lease|' || p_id::text || '|' || p_attempts::text || '|'
                          || coalesce(p_worker::text, '')) $$;

-- Open a running job's tenant context. The caller then sets both values with
-- set_config(..., true), in the same statement: returns the tenant and its signature.
CREATE FUNCTION pgjobs.enter_job(p_id uuid, p_lease text)
RETURNS TABLE (tenant_id uuid, context text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$
#variable_conflict use_column
DECLARE
    v_tenant uuid;
BEGIN
    SELECT q.tenant_id INTO v_tenant FROM dramatiq.queue q
    WHERE q.message_id = p_id AND q."state" = 'consumed'
      AND pgjobs.lease_token(q.message_id, q.attempts, q.worker_id) = p_lease;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % is not running under this lease (rescued, or not claimed)', p_id
            USING ERRCODE = 'PJ001';
    END IF;
    RETURN QUERY SELECT v_tenant,
        pgjobs._hmac(pgjobs._context_value(coalesce(v_tenant::text, 'system')));
END $$;

-- Complete a running job inside the actor's transaction (its writes and its completion
-- commit together). Raises PJ001 when the lease was lost meanwhile (the job was rescued):
-- the transaction is then aborted, so a COMMIT sent with it commits nothing.
CREATE FUNCTION pgjobs.complete_job(p_id uuid, p_lease text, p_result jsonb)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$
DECLARE
    v_queue text;
BEGIN
    UPDATE dramatiq.queue q
    SET "state" = 'done', mtime = now(), "result" = p_result,
        unique_until = CASE WHEN q.unique_key IS NULL THEN NULL
            ELSE now() + make_interval(secs => coalesce(
                (q.message->'options'->>'unique_window')::float8, 0)) END
    WHERE q.message_id = p_id AND q."state" = 'consumed'
      AND pgjobs.lease_token(q.message_id, q.attempts, q.worker_id) = p_lease
    RETURNING regexp_replace(q.queue_name, '\.DQ$', '') INTO v_queue;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % is no longer held under this lease (rescued meanwhile): its '
            'work is rolled back', p_id USING ERRCODE = 'PJ001';
    END IF;
    PERFORM pg_notify('pgjobs.events', json_build_object(
        'event', 'completed', 'queue', v_queue, 'ids', json_build_array(p_id))::text);
    RETURN true;
END $$;

-- What is wrong with a message a caller wants to enqueue, or NULL. Every column of the row
-- is derived from it, so this is the whole check. Pipelines and callbacks (pipe_target,
-- on_success, on_failure...) would make the broker enqueue later from data a tenant wrote,
-- and a tenant_id option would contradict the row's tenant: both are refused.
CREATE FUNCTION pgjobs._message_error(m jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    o jsonb := m->'options';
    v_bad text;
BEGIN
    IF jsonb_typeof(m) IS DISTINCT FROM 'object' THEN
        RETURN 'a message must be a JSON object';
    ELSIF jsonb_typeof(m->'message_id') IS DISTINCT FROM 'string' OR (m->>'message_id') !~*
          '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RETURN 'message_id must be a UUID string';
    ELSIF jsonb_typeof(m->'queue_name') IS DISTINCT FROM 'string'
          OR (m->>'queue_name') !~ '^[A-Za-z_][A-Za-z0-9._-]{0,199}$'
          OR (m->>'queue_name') LIKE '%.DQ' THEN
        RETURN 'queue_name must be a queue name (letters, digits, . _ -; not a .DQ queue)';
    ELSIF jsonb_typeof(m->'actor_name') IS DISTINCT FROM 'string'
          OR length(m->>'actor_name') NOT BETWEEN 1 AND 200 THEN
        RETURN 'actor_name must be a string of 1 to 200 characters';
    ELSIF jsonb_typeof(m->'args') IS DISTINCT FROM 'array' THEN
        RETURN 'args must be a JSON array';
    ELSIF jsonb_typeof(m->'kwargs') IS DISTINCT FROM 'object' THEN
        RETURN 'kwargs must be a JSON object';
    ELSIF jsonb_typeof(o) IS DISTINCT FROM 'object' THEN
        RETURN 'options must be a JSON object';
    END IF;
    SELECT k INTO v_bad FROM jsonb_object_keys(o) k
    WHERE k <> ALL (ARRAY['priority', 'unique_key', 'unique_window', 'max_attempts',
                          'limit_key', 'time_limit', 'max_age', 'notify_shutdown'])
    ORDER BY k LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RETURN format('option %L is not accepted (pipelines, callbacks and tenant options are '
                      'refused: the tenant comes from the transaction)', v_bad);
    ELSIF o ? 'priority' AND (jsonb_typeof(o->'priority') <> 'number'
          OR (o->>'priority')::numeric NOT BETWEEN -32768 AND 32767
          OR (o->>'priority')::numeric <> trunc((o->>'priority')::numeric)) THEN
        RETURN 'option priority must be an integer from -32768 to 32767';
    ELSIF o ? 'max_attempts' AND jsonb_typeof(o->'max_attempts') <> 'null'
          AND (jsonb_typeof(o->'max_attempts') <> 'number'
               OR (o->>'max_attempts')::numeric NOT BETWEEN 1 AND 1000
               OR (o->>'max_attempts')::numeric <> trunc((o->>'max_attempts')::numeric)) THEN
        RETURN 'option max_attempts must be an integer from 1 to 1000';
    ELSIF o ? 'unique_window' AND (jsonb_typeof(o->'unique_window') <> 'number'
          OR (o->>'unique_window')::numeric NOT BETWEEN 0 AND 31622400) THEN
        RETURN 'option unique_window must be 0 to 31622400 seconds';
    ELSIF o ? 'unique_key' AND (jsonb_typeof(o->'unique_key') <> 'string'
          OR length(o->>'unique_key') NOT BETWEEN 1 AND 500) THEN
        RETURN 'option unique_key must be a string of 1 to 500 characters';
    ELSIF o ? 'limit_key' AND jsonb_typeof(o->'limit_key') <> 'null'
          AND (jsonb_typeof(o->'limit_key') <> 'string'
               OR length(o->>'limit_key') NOT BETWEEN 1 AND 500) THEN
        RETURN 'option limit_key must be a string of 1 to 500 characters';
    ELSIF o ? 'time_limit' AND jsonb_typeof(o->'time_limit') NOT IN ('number', 'null') THEN
        RETURN 'option time_limit must be a number of milliseconds';
    ELSIF o ? 'max_age' AND jsonb_typeof(o->'max_age') NOT IN ('number', 'null') THEN
        RETURN 'option max_age must be a number of milliseconds';
    END IF;
    RETURN NULL;
END $$;

-- The one insert of job rows. Every column comes from the message itself (so a row cannot
-- disagree with what the worker will run); execution columns take their initial values.
-- Returns, per message in order, its id and, when nothing was inserted, the id of the job
-- holding its unique key (its own id for a duplicate id). Owner only: the three entry
-- points below decide the tenants.
CREATE FUNCTION pgjobs._insert(p_messages jsonb[], p_delays float8[], p_tenants uuid[])
RETURNS TABLE (message_id uuid, existing uuid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$
#variable_conflict use_column
DECLARE
    v_n integer := coalesce(cardinality(p_messages), 0);
    v_error text;
    v_ids uuid[];
    v_skipped boolean[];
    v_keys text[];
    v_tenants uuid[];
BEGIN
    IF coalesce(cardinality(p_delays), 0) <> v_n OR coalesce(cardinality(p_tenants), 0) <> v_n
    THEN
        RAISE EXCEPTION 'enqueue: % messages but % delays and % tenants', v_n,
            coalesce(cardinality(p_delays), 0), coalesce(cardinality(p_tenants), 0)
            USING ERRCODE = '22023';
    END IF;
    SELECT e INTO v_error FROM unnest(p_messages) m, pgjobs._message_error(m) e
    WHERE e IS NOT NULL LIMIT 1;
    IF v_error IS NOT NULL THEN
        RAISE EXCEPTION 'enqueue refused: %', v_error USING ERRCODE = '22023';
    END IF;

    -- Finished jobs past their unique window give their keys up (a statement of its own:
    -- the insert below must see the keys released).
    UPDATE dramatiq.queue q SET unique_key = NULL
    FROM unnest(p_messages, p_tenants) AS r(m, tenant_id)
    WHERE r.m->'options'->>'unique_key' IS NOT NULL
      AND q.unique_key = r.m->'options'->>'unique_key'
      AND q.tenant_id IS NOT DISTINCT FROM r.tenant_id
      AND q."state" IN ('done', 'rejected') AND coalesce(q.unique_until, q.mtime) <= now();

    WITH rows AS (
        SELECT (r.m->>'message_id')::uuid AS message_id,
               CASE WHEN coalesce(r.delay, 0) > 0 THEN (r.m->>'queue_name') || '.DQ'
                    ELSE r.m->>'queue_name' END AS queue_name,
               r.m AS message, r.tenant_id, r.m->>'actor_name' AS actor_name,
               -- A delay counts from this statement (the caller computed it just now), not
               -- from the start of a transaction that may have been open for a while.
               CASE WHEN coalesce(r.delay, 0) > 0
                    THEN clock_timestamp() + make_interval(secs => r.delay)
                    ELSE now() END AS eta,
               coalesce((r.m->'options'->>'priority')::smallint, 0) AS priority,
               r.m->'options'->>'unique_key' AS unique_key,
               (r.m->'options'->>'max_attempts')::integer AS max_attempts,
               -- Every limit key is scoped: '<tenant>/<key>' ('<tenant>/' is the tenant's
               -- default key), 'system/<key>' for jobs without a tenant.
               CASE WHEN r.m->'options' ? 'limit_key'
                    THEN coalesce(r.tenant_id::text, 'system') || '/'
                         || coalesce(r.m->'options'->>'limit_key', '') END AS limit_key,
               r.ord
        FROM unnest(p_messages, p_delays, p_tenants) WITH ORDINALITY
             AS r(m, delay, tenant_id, ord)
    ), inserted AS (
        INSERT INTO dramatiq.queue AS q (message_id, queue_name, "state", message, tenant_id,
                                         actor_name, eta, priority, unique_key, max_attempts,
                                         limit_key, attempts, mtime, enqueued_at)
        SELECT rows.message_id, rows.queue_name, 'queued', rows.message, rows.tenant_id,
               rows.actor_name, rows.eta, rows.priority, rows.unique_key, rows.max_attempts,
               rows.limit_key, 0, now(), now()
        FROM rows ORDER BY rows.ord
        ON CONFLICT DO NOTHING
        RETURNING q.message_id, q.queue_name
    ), woken AS (
        SELECT pg_notify('dramatiq.' || i.queue_name || '.enqueue', '') FROM inserted i
        GROUP BY i.queue_name
    ), announced AS (
        -- At most 100 ids per notification: payloads over 8000 bytes are refused.
        SELECT pg_notify('pgjobs.events', json_build_object(
                   'event', 'enqueued', 'queue', c.queue, 'ids', json_agg(c.id))::text)
        FROM (SELECT regexp_replace(i.queue_name, '\.DQ$', '') AS queue, i.message_id AS id,
                     (row_number() OVER (PARTITION BY i.queue_name) - 1) / 100 AS chunk
              FROM inserted i) c
        GROUP BY c.queue, c.chunk
    )
    SELECT array_agg(rows.message_id ORDER BY rows.ord),
           array_agg(i.message_id IS NULL ORDER BY rows.ord),
           array_agg(rows.unique_key ORDER BY rows.ord),
           array_agg(rows.tenant_id ORDER BY rows.ord)
    INTO v_ids, v_skipped, v_keys, v_tenants
    FROM rows LEFT JOIN inserted i ON i.message_id = rows.message_id
    WHERE (SELECT count(*) FROM woken) >= 0 AND (SELECT count(*) FROM announced) >= 0;

    -- A new statement, so a holder that committed while the insert waited is seen.
    RETURN QUERY
    SELECT x.id, CASE WHEN NOT x.skipped THEN NULL ELSE coalesce(
        (SELECT h.message_id FROM dramatiq.queue h
         WHERE x.key IS NOT NULL AND h.unique_key = x.key
           AND h.tenant_id IS NOT DISTINCT FROM x.tenant AND h.message_id <> x.id LIMIT 1),
        x.id) END
    FROM unnest(v_ids, v_skipped, v_keys, v_tenants) WITH ORDINALITY
         AS x(id, skipped, key, tenant, ord)
    ORDER BY x.ord;
END $$;

-- Every job belongs to the transaction's tenant. Without one, tenant roles are refused;
-- a system job's follow-up jobs, and the broker's own (app_worker), are system jobs (a
-- system job reaches tenants only with fan_out()).
CREATE FUNCTION pgjobs.enqueue(p_messages jsonb[], p_delays float8[])
RETURNS TABLE (message_id uuid, existing uuid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$
DECLARE
    v_tenant uuid := pgjobs.current_tenant();
BEGIN
    IF v_tenant IS NULL AND session_user::text IN ('app_user', 'app_actor')
       AND NOT pgjobs.in_system_job() THEN
        RAISE EXCEPTION 'no tenant in this transaction: enqueue inside a tenant session'
            USING ERRCODE = '42501';
    END IF;
    RETURN QUERY SELECT * FROM pgjobs._insert(p_messages, p_delays,
        array_fill(v_tenant, ARRAY[coalesce(cardinality(p_messages), 0)]));
END $$;

-- A system job (tenant_free) enqueues jobs for named, existing, active tenants.
CREATE FUNCTION pgjobs.fan_out(p_messages jsonb[], p_delays float8[], p_tenants uuid[])
RETURNS TABLE (message_id uuid, existing uuid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$
DECLARE
    v_missing text;
BEGIN
    IF NOT pgjobs.in_system_job() THEN
        RAISE EXCEPTION 'fan_out() is only for system (tenant_free) jobs'
            USING ERRCODE = '42501';
    END IF;
    SELECT coalesce(t::text, 'NULL') INTO v_missing FROM unnest(p_tenants) t
    WHERE t IS NULL OR NOT EXISTS (SELECT 1 FROM public.tenants x WHERE x.id = t AND x.active)
    LIMIT 1;
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'fan_out(): tenant % does not exist or is inactive', v_missing
            USING ERRCODE = '22023';
    END IF;
    RETURN QUERY SELECT * FROM pgjobs._insert(p_messages, p_delays, p_tenants);
END $$;

-- The broker and the scheduler (app_worker): any tenant, or none for a system job.
CREATE FUNCTION pgjobs.enqueue_for_tenants(
    p_messages jsonb[], p_delays float8[], p_tenants uuid[]
) RETURNS TABLE (message_id uuid, existing uuid)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$ SELECT * FROM pgjobs._insert(p_messages, p_delays, p_tenants) $$;

-- The tenant a control function acts for: the caller's, or any for the owner (p_any).
CREATE FUNCTION pgjobs._control_tenant(p_any boolean) RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_tenant uuid := pgjobs.current_tenant();
BEGIN
    IF v_tenant IS NULL AND NOT p_any THEN
        RAISE EXCEPTION 'no tenant in this transaction: act on jobs inside a tenant session'
            USING ERRCODE = '42501';
    END IF;
    RETURN v_tenant;
END $$;

-- Cancel waiting or delayed jobs. Returns every named job in scope with its outcome:
-- 'cancelled', or the status that ruled it out ('running', 'finished').
CREATE FUNCTION pgjobs._cancel(p_ids uuid[], p_reason text, p_tenant uuid)
RETURNS TABLE (message_id uuid, outcome text, queue text, actor_name text, tenant_id uuid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH mine AS (
        SELECT q.message_id, q."state", q.queue_name, q.actor_name, q.tenant_id
        FROM dramatiq.queue q
        WHERE q.message_id = ANY(p_ids) AND (p_tenant IS NULL OR q.tenant_id = p_tenant)
        FOR UPDATE
    ), cancelled AS (
        UPDATE dramatiq.queue q
        SET "state" = 'rejected', cancelled_at = now(), last_error = left(p_reason, 1000),
            mtime = now(), unique_until = now(), worker_id = NULL
        FROM mine WHERE q.message_id = mine.message_id AND mine."state" = 'queued'
        RETURNING q.message_id, regexp_replace(q.queue_name, '\.DQ$', '') AS queue
    ), announced AS (
        SELECT pg_notify('pgjobs.events', json_build_object(
                   'event', 'cancelled', 'queue', x.queue, 'ids', json_agg(x.id))::text)
        FROM (SELECT c.queue, c.message_id AS id,
                     (row_number() OVER (PARTITION BY c.queue) - 1) / 100 AS chunk
              FROM cancelled c) x
        GROUP BY x.queue, x.chunk
    )
    SELECT m.message_id,
           CASE WHEN c.message_id IS NOT NULL THEN 'cancelled'
                WHEN m."state" = 'consumed' THEN 'running'
                ELSE 'finished' END,
           regexp_replace(m.queue_name, '\.DQ$', ''), m.actor_name, m.tenant_id
    FROM mine m LEFT JOIN cancelled c ON c.message_id = m.message_id
    WHERE (SELECT count(*) FROM announced) >= 0;
END $$;

-- Run finished jobs (in p_states: 'done', 'dead', 'cancelled') again from scratch: attempts,
-- progress and result reset, the unique key held again. A job whose key a newer live job
-- holds is left alone ('key_held'): running both would double its work. Outcomes per
-- named job in scope: 'rerun', 'key_held', or the status that ruled it out.
CREATE FUNCTION pgjobs._rerun(p_ids uuid[], p_states text[], p_tenant uuid)
RETURNS TABLE (message_id uuid, outcome text, queue text, actor_name text, tenant_id uuid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$
#variable_conflict use_column
DECLARE
    r record;
    v_holder uuid;
    v_status text;
BEGIN
    FOR r IN
        SELECT q.message_id, q."state"::text AS state, q.cancelled_at, q.unique_key,
               q.message->'options'->>'unique_key' AS wanted_key, q.tenant_id,
               regexp_replace(q.queue_name, '\.DQ$', '') AS queue, q.actor_name
        FROM dramatiq.queue q
        WHERE q.message_id = ANY(p_ids) AND (p_tenant IS NULL OR q.tenant_id = p_tenant)
        ORDER BY q.message_id
        FOR UPDATE
    LOOP
        v_status := CASE r.state WHEN 'queued' THEN 'waiting' WHEN 'consumed' THEN 'running'
                                 WHEN 'done' THEN 'done'
                                 ELSE CASE WHEN r.cancelled_at IS NULL THEN 'dead'
                                           ELSE 'cancelled' END END;
        IF NOT v_status = ANY(p_states) THEN
            message_id := r.message_id; outcome := v_status; queue := r.queue;
            actor_name := r.actor_name; tenant_id := r.tenant_id;
            RETURN NEXT;
            CONTINUE;
        END IF;
        v_holder := NULL;
        IF r.unique_key IS NULL AND r.wanted_key IS NOT NULL THEN
            UPDATE dramatiq.queue h SET unique_key = NULL
            WHERE h.tenant_id IS NOT DISTINCT FROM r.tenant_id AND h.unique_key = r.wanted_key
              AND h.message_id <> r.message_id AND h."state" IN ('done', 'rejected')
              AND coalesce(h.unique_until, h.mtime) <= now();
            SELECT h.message_id INTO v_holder FROM dramatiq.queue h
            WHERE h.tenant_id IS NOT DISTINCT FROM r.tenant_id AND h.unique_key = r.wanted_key
              AND h.message_id <> r.message_id;
        END IF;
        IF v_holder IS NOT NULL THEN
            outcome := 'key_held';
        ELSE
            UPDATE dramatiq.queue q
            SET "state" = 'queued', queue_name = r.queue, eta = now(), mtime = now(),
                attempts = 0, worker_id = NULL, started_at = NULL, cancelled_at = NULL,
                progress = NULL, progress_message = NULL, "result" = NULL,
                unique_key = coalesce(r.unique_key, r.wanted_key), unique_until = NULL
            WHERE q.message_id = r.message_id;
            PERFORM pg_notify('dramatiq.' || r.queue || '.enqueue', '');
            outcome := 'rerun';
        END IF;
        message_id := r.message_id; queue := r.queue; actor_name := r.actor_name;
        tenant_id := r.tenant_id;
        RETURN NEXT;
    END LOOP;
END $$;

-- Move waiting or delayed jobs to p_eta (now or later), attempts kept. Outcomes:
-- 'rescheduled', 'running', 'finished'.
CREATE FUNCTION pgjobs._reschedule(p_ids uuid[], p_eta timestamptz, p_tenant uuid)
RETURNS TABLE (message_id uuid, outcome text, queue text, actor_name text, tenant_id uuid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$
#variable_conflict use_column
DECLARE
    v_due boolean := p_eta <= clock_timestamp();
BEGIN
    RETURN QUERY
    WITH mine AS (
        SELECT q.message_id, q."state", regexp_replace(q.queue_name, '\.DQ$', '') AS queue,
               q.actor_name, q.tenant_id
        FROM dramatiq.queue q
        WHERE q.message_id = ANY(p_ids) AND (p_tenant IS NULL OR q.tenant_id = p_tenant)
        FOR UPDATE
    ), moved AS (
        UPDATE dramatiq.queue q
        SET eta = greatest(p_eta, now()), mtime = now(),
            queue_name = CASE WHEN v_due THEN mine.queue ELSE mine.queue || '.DQ' END
        FROM mine WHERE q.message_id = mine.message_id AND mine."state" = 'queued'
        RETURNING q.message_id, mine.queue
    ), woken AS (
        -- Wake the consumers: a delayed job moved earlier must not wait for a poll.
        SELECT pg_notify('dramatiq.' || m.queue || CASE WHEN v_due THEN '' ELSE '.DQ' END
                         || '.enqueue', '')
        FROM moved m GROUP BY m.queue
    )
    SELECT m.message_id,
           CASE WHEN v.message_id IS NOT NULL THEN 'rescheduled'
                WHEN m."state" = 'consumed' THEN 'running' ELSE 'finished' END,
           m.queue, m.actor_name, m.tenant_id
    FROM mine m LEFT JOIN moved v ON v.message_id = m.message_id
    WHERE (SELECT count(*) FROM woken) >= 0;
END $$;

-- Tenant entry points (application code and actors; the owner may pass any job).
CREATE OR REPLACE FUNCTION pgjobs.cancel_jobs(p_ids uuid[], p_reason text DEFAULT 'cancelled')
RETURNS TABLE (message_id uuid, outcome text)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$ SELECT c.message_id, c.outcome
      FROM pgjobs._cancel(p_ids, p_reason, pgjobs._control_tenant(false)) c $$;

CREATE OR REPLACE FUNCTION pgjobs.reschedule_job(p_id uuid, p_eta timestamptz)
RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$ SELECT r.outcome
      FROM pgjobs._reschedule(ARRAY[p_id], p_eta, pgjobs._control_tenant(false)) r $$;

CREATE FUNCTION pgjobs.retry_jobs(p_ids uuid[])
RETURNS TABLE (message_id uuid, outcome text)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pgjobs
AS $$ SELECT r.message_id, r.outcome
      FROM pgjobs._rerun(p_ids, ARRAY['dead'], pgjobs._control_tenant(false)) r $$;

REVOKE ALL ON FUNCTION pgjobs._hmac(text), pgjobs._context_ok(text, text),
    pgjobs.lease_token(uuid, integer, uuid), pgjobs.enter_job(uuid, text),
    pgjobs.complete_job(uuid, text, jsonb), pgjobs._insert(jsonb[], float8[], uuid[]),
    pgjobs.enqueue(jsonb[], float8[]), pgjobs.fan_out(jsonb[], float8[], uuid[]),
    pgjobs.enqueue_for_tenants(jsonb[], float8[], uuid[]), pgjobs.retry_jobs(uuid[]),
    pgjobs._cancel(uuid[], text, uuid), pgjobs._rerun(uuid[], text[], uuid),
    pgjobs._reschedule(uuid[], timestamptz, uuid)
    FROM PUBLIC;
-- current_tenant() runs as its caller and asks _context_ok() to check the signature.
GRANT EXECUTE ON FUNCTION pgjobs._context_ok(text, text) TO app_user, app_actor, app_worker;
GRANT EXECUTE ON FUNCTION pgjobs.lease_token(uuid, integer, uuid) TO app_worker;
GRANT EXECUTE ON FUNCTION pgjobs.enter_job(uuid, text), pgjobs.complete_job(uuid, text, jsonb),
    pgjobs.fan_out(jsonb[], float8[], uuid[]) TO app_actor;
GRANT EXECUTE ON FUNCTION pgjobs.enqueue(jsonb[], float8[]) TO app_user, app_actor, app_worker;
GRANT EXECUTE ON FUNCTION pgjobs.retry_jobs(uuid[]) TO app_user, app_actor;
GRANT EXECUTE ON FUNCTION pgjobs.enqueue_for_tenants(jsonb[], float8[], uuid[]) TO app_worker;
REVOKE EXECUTE ON FUNCTION pgjobs.cancel_jobs(uuid[], text),
    pgjobs.reschedule_job(uuid, timestamptz) FROM app_worker;
"""

#: Tenant tables of migrations 0001 and 0004 (their policies are rewritten on the function).
TENANT_TABLES = ("activity_events", "webhook_events", "users", "digests", "integrations",
                 "locations", "reviews", "photo_requests", "scheduler.tenant_overrides")

POLICIES = "\n".join(
    f"""DROP POLICY tenant_isolation ON {table};
CREATE POLICY tenant_isolation ON {table}
    USING (tenant_id = {TENANT}) WITH CHECK (tenant_id = {TENANT});
GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO app_actor;"""
    for table in TENANT_TABLES
) + f"""
-- Tenant data is not the broker's: app_worker keeps only what the scheduler reads.
REVOKE ALL ON activity_events, webhook_events, users, digests, integrations, locations,
    reviews, photo_requests FROM app_worker;
REVOKE INSERT, UPDATE, DELETE ON scheduler.tenant_overrides FROM app_worker;
GRANT USAGE ON SCHEMA scheduler TO app_actor;
GRANT SELECT ON scheduler.recurring TO app_actor;
-- Every view reads as its caller (none is readable by tenant roles today; none may leak).
ALTER VIEW scheduler.jobs SET (security_invoker = true);
ALTER VIEW scheduler.health SET (security_invoker = true);
-- The scheduler fans out as app_worker and now writes its ledger only: it enqueues
-- through pgjobs.enqueue_for_tenants().

DROP POLICY tenant_isolation ON tenants;
CREATE POLICY tenant_isolation ON tenants FOR SELECT USING (id = {TENANT});
-- Operators (the owner, which may not be a superuser) manage tenants.
CREATE POLICY owner_tenants ON tenants TO CURRENT_USER USING (true) WITH CHECK (true);
GRANT SELECT ON tenants TO app_actor;

-- Job rows: tenant roles read their tenant's, write none (pgjobs.enqueue and the control
-- functions are the only way); the broker (app_worker) and the owner see all.
DROP POLICY tenant_jobs ON dramatiq.queue;
CREATE POLICY tenant_jobs ON dramatiq.queue FOR SELECT TO app_user, app_actor
    USING (tenant_id = {TENANT});
REVOKE INSERT, UPDATE, DELETE ON dramatiq.queue FROM app_user;
REVOKE UPDATE (unique_key) ON dramatiq.queue FROM app_user;
GRANT USAGE ON SCHEMA dramatiq, jobs TO app_actor;
GRANT SELECT ON dramatiq.queue, dramatiq.paused_queues, dramatiq.workers TO app_actor;
GRANT SELECT ON jobs.jobs, jobs.queue_stats, jobs.by_tenant, jobs.failed, jobs.scheduled,
    jobs.recent, jobs.active, jobs.workers TO app_actor;
"""

LEASES = """
ALTER TABLE dramatiq.workers
    ADD COLUMN lease_seconds float8 NOT NULL DEFAULT 10,
    ADD COLUMN lease_expires_at timestamptz NOT NULL DEFAULT now() + interval '10 seconds';
CREATE INDEX workers_lease_expires_at_idx ON dramatiq.workers (lease_expires_at);

CREATE OR REPLACE VIEW jobs.workers WITH (security_invoker = true) AS
SELECT w.worker_id,
       w.hostname,
       w.pid,
       w.queues,
       w.started_at,
       w.heartbeat_at,
       extract(epoch FROM now() - w.heartbeat_at)::float8 AS heartbeat_age_seconds,
       w.lease_expires_at > now() AS alive,
       (SELECT count(*) FROM dramatiq.queue q
        WHERE q."state" = 'consumed' AND q.worker_id = w.worker_id) AS active_jobs,
       w.lease_seconds,
       w.lease_expires_at
FROM dramatiq.workers w;

-- Limit keys are scoped by tenant now: waiting and running rows get their scope.
UPDATE dramatiq.queue SET limit_key = coalesce(tenant_id::text, 'system') || '/'
    || CASE WHEN limit_key = coalesce(tenant_id::text, 'system') THEN '' ELSE limit_key END
WHERE limit_key IS NOT NULL AND "state" IN ('queued', 'consumed');
"""


# jobs.active as migration 0002 made it (it depends on jobs.workers).
ACTIVE_VIEW = """
CREATE VIEW jobs.active WITH (security_invoker = true) AS
SELECT j.message_id, j.queue, j.actor_name, j.tenant_id, j.worker_id, w.hostname, w.pid,
       coalesce(w.alive, false) AS worker_alive, j.started_at,
       extract(epoch FROM now() - j.started_at)::float8 AS running_seconds,
       j.attempts, j.max_attempts, j.progress, j.progress_message
FROM jobs.jobs j
LEFT JOIN jobs.workers w ON w.worker_id = j.worker_id
WHERE j.status = 'active'
ORDER BY j.started_at;
"""


# jobs.limit_status shows scoped keys as (tenant, key).
LIMIT_STATUS = r"""
CREATE OR REPLACE VIEW jobs.limit_status WITH (security_invoker = true) AS
WITH live AS (
    SELECT q.queue_name, q.limit_key,
           count(*) FILTER (WHERE q."state" = 'consumed') AS running,
           count(*) FILTER (WHERE q."state" = 'queued') AS waiting
    FROM dramatiq.queue q
    JOIN dramatiq.queue_limits l ON l.queue_name = q.queue_name
    WHERE q.limit_key IS NOT NULL AND q."state" IN ('queued', 'consumed')
    GROUP BY q.queue_name, q.limit_key
), windows AS (
    SELECT rw.queue_name, rw.limit_key,
           (SELECT count(*) FROM unnest(rw.starts) s
            WHERE s > now() - make_interval(secs => l.key_rate_seconds)) AS used,
           (SELECT min(s) + make_interval(secs => l.key_rate_seconds) FROM unnest(rw.starts) s
            WHERE s > now() - make_interval(secs => l.key_rate_seconds)) AS oldest_expires
    FROM dramatiq.rate_windows rw
    JOIN dramatiq.queue_limits l ON l.queue_name = rw.queue_name
    WHERE l.key_rate IS NOT NULL
), keys AS (
    SELECT coalesce(lv.queue_name, w.queue_name) AS queue_name,
           coalesce(lv.limit_key, w.limit_key) AS limit_key,
           coalesce(lv.running, 0) AS running, coalesce(lv.waiting, 0) AS waiting,
           coalesce(w.used, 0) AS rate_used, w.oldest_expires
    FROM live lv FULL JOIN windows w
      ON w.queue_name = lv.queue_name AND w.limit_key = lv.limit_key
    WHERE coalesce(lv.running, 0) + coalesce(lv.waiting, 0) + coalesce(w.used, 0) > 0
)
SELECT l.queue_name AS queue,
       -- Keys are '<tenant>/<key>' (or 'system/<key>'): shown as the tenant and its key,
       -- '' being the tenant's default key.
       CASE WHEN strpos(k.limit_key, '/') > 0
            THEN substr(k.limit_key, strpos(k.limit_key, '/') + 1) ELSE k.limit_key END AS key,
       k.running,
       l.key_concurrency AS concurrency_limit,
       k.rate_used,
       l.key_rate AS rate_limit,
       l.key_rate_seconds AS rate_seconds,
       k.waiting,
       CASE WHEN l.key_rate IS NOT NULL AND k.rate_used >= l.key_rate
            THEN k.oldest_expires END AS next_slot_at,
       coalesce(wt.weight, 1) AS weight,
       l.fair,
       CASE WHEN split_part(k.limit_key, '/', 1)
                 ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
            THEN split_part(k.limit_key, '/', 1)::uuid END AS tenant_id
FROM keys k
JOIN dramatiq.queue_limits l ON l.queue_name = k.queue_name
LEFT JOIN dramatiq.limit_weights wt
       ON wt.queue_name = k.queue_name AND wt.limit_key = k.limit_key
UNION ALL
SELECT l.queue_name,
       NULL,
       (SELECT count(*) FROM dramatiq.queue q
        WHERE q.queue_name = l.queue_name AND q."state" = 'consumed'),
       l.queue_concurrency,
       (SELECT count(*) FROM unnest(l.starts) s
        WHERE s > now() - make_interval(secs => l.queue_rate_seconds)),
       l.queue_rate,
       l.queue_rate_seconds,
       (SELECT count(*) FROM dramatiq.queue q
        WHERE q.queue_name = l.queue_name AND q."state" = 'queued'),
       NULL,
       NULL,
       l.fair,
       NULL::uuid
FROM dramatiq.queue_limits l;
"""


def _set_passwords() -> None:
    """Role passwords as SCRAM verifiers computed here: the password never reaches the server."""
    from app.db.roles import set_password

    conn = op.get_bind().connection.driver_connection
    for role, env in (("app_user", "APP_USER_PASSWORD"), ("app_worker", "APP_WORKER_PASSWORD"),
                      ("app_actor", "APP_ACTOR_PASSWORD")):
        password = os.environ.get(env)
        if password:
            set_password(conn, role, password)


def upgrade() -> None:
    _set_passwords()
    op.execute(KEY)
    op.execute(FUNCTIONS)
    op.execute(POLICIES)
    op.execute(LEASES)
    op.execute(LIMIT_STATUS)


DOWNGRADE = """
UPDATE dramatiq.queue SET limit_key = split_part(limit_key, '/', 1)
WHERE limit_key LIKE '%/' AND "state" IN ('queued', 'consumed');
UPDATE dramatiq.queue SET limit_key = substr(limit_key, strpos(limit_key, '/') + 1)
WHERE limit_key LIKE '%/%' AND "state" IN ('queued', 'consumed');

DROP VIEW jobs.active, jobs.workers;
CREATE VIEW jobs.workers WITH (security_invoker = true) AS
SELECT w.worker_id,
       w.hostname,
       w.pid,
       w.queues,
       w.started_at,
       w.heartbeat_at,
       extract(epoch FROM now() - w.heartbeat_at)::float8 AS heartbeat_age_seconds,
       w.heartbeat_at > now() - make_interval(secs =>
           coalesce(nullif(current_setting('pgjobs.lease_seconds', true), '')::float8, 10))
           AS alive,
       (SELECT count(*) FROM dramatiq.queue q
        WHERE q."state" = 'consumed' AND q.worker_id = w.worker_id) AS active_jobs
FROM dramatiq.workers w;
""" + ACTIVE_VIEW + f"""
GRANT SELECT ON jobs.workers, jobs.active TO app_user, app_worker;
DROP INDEX dramatiq.workers_lease_expires_at_idx;
ALTER TABLE dramatiq.workers DROP COLUMN lease_seconds, DROP COLUMN lease_expires_at;

REVOKE ALL ON jobs.jobs, jobs.queue_stats, jobs.by_tenant, jobs.failed, jobs.scheduled,
    jobs.recent, jobs.active FROM app_actor;
REVOKE ALL ON dramatiq.queue, dramatiq.paused_queues, dramatiq.workers FROM app_actor;
REVOKE ALL ON SCHEMA dramatiq, jobs FROM app_actor;
DROP POLICY tenant_jobs ON dramatiq.queue;
CREATE POLICY tenant_jobs ON dramatiq.queue TO app_user
    USING (tenant_id = {OLD_TENANT}) WITH CHECK (tenant_id = {OLD_TENANT});
GRANT INSERT ON dramatiq.queue TO app_user;
GRANT UPDATE (unique_key) ON dramatiq.queue TO app_user;

REVOKE ALL ON tenants FROM app_actor;
REVOKE ALL ON scheduler.recurring FROM app_actor;
ALTER VIEW scheduler.jobs RESET (security_invoker);
ALTER VIEW scheduler.health RESET (security_invoker);
REVOKE ALL ON SCHEMA scheduler FROM app_actor;
DROP POLICY owner_tenants ON tenants;
DROP POLICY tenant_isolation ON tenants;
CREATE POLICY tenant_isolation ON tenants USING (id = {OLD_TENANT});

GRANT SELECT, INSERT, UPDATE, DELETE ON activity_events, webhook_events, users, digests,
    integrations, locations, reviews, photo_requests TO app_worker;
""" + "\n".join(f"""REVOKE ALL ON {table} FROM app_actor;
DROP POLICY tenant_isolation ON {table};
CREATE POLICY tenant_isolation ON {table}
    USING (tenant_id = {OLD_TENANT}) WITH CHECK (tenant_id = {OLD_TENANT});"""
                for table in TENANT_TABLES) + """
DROP FUNCTION pgjobs.cancel_jobs(uuid[], text), pgjobs.reschedule_job(uuid, timestamptz),
    pgjobs.retry_jobs(uuid[]), pgjobs._reschedule(uuid[], timestamptz, uuid),
    pgjobs._rerun(uuid[], text[], uuid), pgjobs._cancel(uuid[], text, uuid),
    pgjobs._control_tenant(boolean), pgjobs.enqueue_for_tenants(jsonb[], float8[], uuid[]),
    pgjobs.fan_out(jsonb[], float8[], uuid[]), pgjobs.enqueue(jsonb[], float8[]),
    pgjobs._insert(jsonb[], float8[], uuid[]), pgjobs._message_error(jsonb),
    pgjobs.complete_job(uuid, text, jsonb), pgjobs.enter_job(uuid, text),
    pgjobs.lease_token(uuid, integer, uuid), pgjobs.in_system_job();
CREATE OR REPLACE FUNCTION pgjobs.current_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;
DROP FUNCTION pgjobs._is_actor(), pgjobs._context_ok(text, text), pgjobs._context_value(text),
    pgjobs._hmac(text);
DROP TABLE pgjobs.keys;
"""


def _restored_control() -> str:
    """Migration 0007's cancel and reschedule functions, which this one replaced."""
    return str(migration_module("2026_12_01_0007_tenant_function.py").CONTROL)


def _previous_limit_status() -> str:
    """Migration 0005's jobs.limit_status (a column fewer), restored by the downgrade."""
    return (str(migration_module("2026_11_22_0005_limits.py").VIEW)
            + "GRANT SELECT ON jobs.limit_status TO app_worker;")


def downgrade() -> None:
    op.execute("DROP VIEW jobs.limit_status")
    op.execute(_previous_limit_status())
    op.execute(DOWNGRADE)
    op.execute(_restored_control())
