"""Rate limits, concurrency limits and fairness (issue 5)

Jobs of a limited queue carry a ``limit_key`` (their tenant unless the actor or the caller
says otherwise). Only those rows enter the two new partial indexes and fire the new trigger,
so queues without limits pay nothing for them. ``dramatiq.claim_limited`` claims for a
limited queue in one round trip: it serialises the claims of that queue on an advisory lock
(then every count it takes is exact), serves keys round-robin from a cursor, and keeps a
sliding log of claim times per key for rate limits. Concurrency is counted from the rows in
state ``consumed``, so completion, failure, retry and rescue free a slot by themselves.
``jobs.limit_status`` shows, per limited queue and key, what runs, waits and is allowed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = """
ALTER TABLE dramatiq.queue ADD COLUMN limit_key text;

-- Waiting jobs of limited queues, per key in claim order (also walked key by key).
CREATE INDEX queue_limit_waiting_idx ON dramatiq.queue (queue_name, limit_key, priority DESC, eta)
    WHERE "state" = 'queued' AND limit_key IS NOT NULL;
-- Running jobs of limited queues, counted per key and per queue.
CREATE INDEX queue_limit_running_idx ON dramatiq.queue (queue_name, limit_key)
    WHERE "state" = 'consumed' AND limit_key IS NOT NULL;

-- One row per limited queue: the limits its workers enforce (for inspection), the
-- round-robin cursor and the queue-wide sliding window of claim times.
CREATE TABLE dramatiq.queue_limits (
    queue_name text PRIMARY KEY,
    key_rate integer,
    key_rate_seconds float8,
    key_concurrency integer,
    queue_rate integer,
    queue_rate_seconds float8,
    queue_concurrency integer,
    fair boolean NOT NULL DEFAULT false,
    cursor_key text,
    starts timestamptz[] NOT NULL DEFAULT '{}',
    claimed_at timestamptz
);

-- Claim times within the rate window, per key (a sliding log, oldest first).
CREATE TABLE dramatiq.rate_windows (
    queue_name text NOT NULL,
    limit_key text NOT NULL,
    starts timestamptz[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (queue_name, limit_key)
);

-- Weighted round-robin: a key with weight 3 gets 3 jobs per round (default 1).
CREATE TABLE dramatiq.limit_weights (
    queue_name text NOT NULL,
    limit_key text NOT NULL,
    weight integer NOT NULL CONSTRAINT limit_weights_weight_check CHECK (weight > 0),
    PRIMARY KEY (queue_name, limit_key)
);
"""

# A job leaving 'consumed' frees a concurrency slot: wake the queue's consumers (the
# payload carries no job data, as every NOTIFY of the broker).
SLOT_FREED = """
CREATE FUNCTION dramatiq.limit_slot_freed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dramatiq.' || OLD.queue_name || '.enqueue', '{}');
    RETURN NULL;
END $$;

CREATE TRIGGER queue_limit_slot_freed
    AFTER UPDATE OF "state" ON dramatiq.queue
    FOR EACH ROW
    WHEN (OLD."state" = 'consumed' AND NEW."state" IS DISTINCT FROM 'consumed'
          AND OLD.limit_key IS NOT NULL)
    EXECUTE FUNCTION dramatiq.limit_slot_freed();
"""

CLAIM = """
CREATE FUNCTION dramatiq.claim_limited(
    p_queue text, p_limit integer, p_worker uuid,
    p_key_rate integer, p_key_rate_seconds float8, p_key_concurrency integer,
    p_queue_rate integer, p_queue_rate_seconds float8, p_queue_concurrency integer,
    p_fair boolean
) RETURNS TABLE (
    message_id uuid, message jsonb, tenant_id uuid, attempts integer, max_attempts integer,
    priority smallint, eta timestamptz, wait_seconds float8
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz;
    v_budget integer := p_limit;
    v_keyed boolean := p_fair OR p_key_rate IS NOT NULL OR p_key_concurrency IS NOT NULL;
    v_limits dramatiq.queue_limits;
    v_starts timestamptz[] := '{}';
    v_ids uuid[];
    v_keys text[];
    v_claimed text[] := '{}';
    v_wait float8;
    r record;
BEGIN
    IF EXISTS (SELECT 1 FROM dramatiq.paused_queues p WHERE p.queue_name = p_queue) THEN
        RETURN NEXT;
        RETURN;
    END IF;
    -- One claimer per queue at a time; every statement below sees the others' commits.
    PERFORM pg_advisory_xact_lock(hashtext('pgjobs.limits'), hashtext(p_queue));
    SELECT * INTO v_limits FROM dramatiq.queue_limits l WHERE l.queue_name = p_queue;
    IF NOT FOUND THEN
        INSERT INTO dramatiq.queue_limits (queue_name) VALUES (p_queue)
        ON CONFLICT DO NOTHING RETURNING * INTO v_limits;
    END IF;
    v_now := clock_timestamp();

    IF p_queue_concurrency IS NOT NULL THEN
        v_budget := least(v_budget, p_queue_concurrency - (
            SELECT count(*) FROM dramatiq.queue q
            WHERE q.queue_name = p_queue AND q."state" = 'consumed' AND q.limit_key IS NOT NULL
        )::integer);
    END IF;
    IF p_queue_rate IS NOT NULL THEN
        v_starts := ARRAY(
            SELECT s FROM unnest(v_limits.starts) s
            WHERE s > v_now - make_interval(secs => p_queue_rate_seconds) ORDER BY s);
        v_budget := least(v_budget, p_queue_rate - cardinality(v_starts));
    END IF;

    IF v_budget > 0 AND NOT v_keyed THEN
        SELECT array_agg(c.message_id), array_agg(c.limit_key) INTO v_ids, v_keys
        FROM (SELECT q.message_id, q.limit_key FROM dramatiq.queue q
              WHERE q.queue_name = p_queue AND q."state" = 'queued'
              ORDER BY q.priority DESC, q.eta LIMIT v_budget) c;
    ELSIF v_budget > 0 THEN
        -- Walk the keys that have waiting jobs, starting after the cursor and wrapping
        -- around (a skip scan of the waiting index), keep those with room, and take up to
        -- a fair share from each; the result is ordered by round, so it is round-robin.
        WITH RECURSIVE after_cursor AS (
            (SELECT q.limit_key, 1 AS pos FROM dramatiq.queue q
             WHERE q.queue_name = p_queue AND q."state" = 'queued'
               AND q.limit_key > coalesce(v_limits.cursor_key, '')
             ORDER BY q.limit_key LIMIT 1)
            UNION ALL
            SELECT (SELECT q.limit_key FROM dramatiq.queue q
                    WHERE q.queue_name = p_queue AND q."state" = 'queued'
                      AND q.limit_key > a.limit_key
                    ORDER BY q.limit_key LIMIT 1), a.pos + 1
            FROM after_cursor a WHERE a.limit_key IS NOT NULL
        ), up_to_cursor AS (
            (SELECT q.limit_key, 1000000000 AS pos FROM dramatiq.queue q
             WHERE q.queue_name = p_queue AND q."state" = 'queued' AND q.limit_key IS NOT NULL
               AND v_limits.cursor_key IS NOT NULL
             ORDER BY q.limit_key LIMIT 1)
            UNION ALL
            SELECT (SELECT q.limit_key FROM dramatiq.queue q
                    WHERE q.queue_name = p_queue AND q."state" = 'queued'
                      AND q.limit_key > u.limit_key
                    ORDER BY q.limit_key LIMIT 1), u.pos + 1
            FROM up_to_cursor u WHERE u.limit_key < v_limits.cursor_key
        ), walk AS (
            SELECT a.limit_key, a.pos FROM after_cursor a WHERE a.limit_key IS NOT NULL
            UNION ALL
            SELECT u.limit_key, u.pos FROM up_to_cursor u
            WHERE u.limit_key <= v_limits.cursor_key
        ), open_keys AS (
            SELECT w.limit_key, w.pos, room.free,
                   coalesce((SELECT kw.weight FROM dramatiq.limit_weights kw
                             WHERE kw.queue_name = p_queue AND kw.limit_key = w.limit_key),
                            1) AS weight
            FROM walk w
            CROSS JOIN LATERAL (SELECT least(
                v_budget,
                CASE WHEN p_key_concurrency IS NOT NULL THEN p_key_concurrency - (
                    SELECT count(*) FROM dramatiq.queue q
                    WHERE q.queue_name = p_queue AND q.limit_key = w.limit_key
                      AND q."state" = 'consumed')::integer END,
                CASE WHEN p_key_rate IS NOT NULL THEN p_key_rate - (
                    SELECT count(*) FROM dramatiq.rate_windows rw, unnest(rw.starts) s
                    WHERE rw.queue_name = p_queue AND rw.limit_key = w.limit_key
                      AND s > v_now - make_interval(secs => p_key_rate_seconds))::integer END
            ) AS free) room
            WHERE room.free > 0
            LIMIT v_budget
        ), counted AS (
            SELECT o.*, count(*) OVER () AS n_open FROM open_keys o
        ), candidates AS (
            SELECT j.message_id, j.priority, j.eta, c.limit_key, c.pos, c.weight,
                   row_number() OVER (PARTITION BY c.limit_key
                                      ORDER BY j.priority DESC, j.eta) AS rn
            FROM counted c
            CROSS JOIN LATERAL (
                SELECT q.message_id, q.priority, q.eta FROM dramatiq.queue q
                WHERE q.queue_name = p_queue AND q.limit_key = c.limit_key
                  AND q."state" = 'queued'
                ORDER BY q.priority DESC, q.eta
                LIMIT least(c.free, ceil(v_budget::numeric / c.n_open)::integer * c.weight)
            ) j
        ), picked AS (
            SELECT cd.message_id, cd.limit_key FROM candidates cd
            ORDER BY (cd.rn - 1) / cd.weight, cd.priority DESC, cd.pos
            LIMIT v_budget
        )
        SELECT array_agg(pk.message_id), array_agg(pk.limit_key) INTO v_ids, v_keys
        FROM picked pk;
    END IF;

    IF v_ids IS NOT NULL THEN
        -- The state check re-reads each row under its lock: a job cancelled meanwhile, or
        -- claimed by a worker that does not know the limits, is skipped, never claimed twice.
        FOR r IN
            UPDATE dramatiq.queue q
            SET "state" = 'consumed', worker_id = p_worker, started_at = v_now, mtime = v_now,
                attempts = q.attempts + 1
            FROM unnest(v_ids) AS c(id)
            WHERE q.message_id = c.id AND q."state" = 'queued'
            RETURNING q.message_id AS id, q.message AS msg, q.tenant_id AS tenant,
                      q.attempts AS n, q.max_attempts AS max_n, q.priority AS prio,
                      q.eta AS due, q.limit_key AS k
        LOOP
            v_claimed := v_claimed || r.k;
            message_id := r.id; message := r.msg; tenant_id := r.tenant; attempts := r.n;
            max_attempts := r.max_n; priority := r.prio; eta := r.due; wait_seconds := NULL;
            RETURN NEXT;
        END LOOP;
    END IF;

    IF cardinality(v_claimed) > 0 AND p_key_rate IS NOT NULL THEN
        INSERT INTO dramatiq.rate_windows AS rw (queue_name, limit_key, starts)
        SELECT p_queue, k.key, array_fill(v_now, ARRAY[count(*)::integer])
        FROM unnest(v_claimed) AS k(key) GROUP BY k.key
        ON CONFLICT (queue_name, limit_key) DO UPDATE
        SET starts = ARRAY(SELECT s FROM unnest(rw.starts) s
                           WHERE s > v_now - make_interval(secs => p_key_rate_seconds)
                           ORDER BY s) || EXCLUDED.starts;
    END IF;

    IF cardinality(v_claimed) > 0
       OR (v_limits.key_rate, v_limits.key_rate_seconds, v_limits.key_concurrency,
           v_limits.queue_rate, v_limits.queue_rate_seconds, v_limits.queue_concurrency,
           v_limits.fair)
          IS DISTINCT FROM (p_key_rate, p_key_rate_seconds, p_key_concurrency,
                            p_queue_rate, p_queue_rate_seconds, p_queue_concurrency, p_fair)
    THEN
        UPDATE dramatiq.queue_limits l
        SET key_rate = p_key_rate, key_rate_seconds = p_key_rate_seconds,
            key_concurrency = p_key_concurrency, queue_rate = p_queue_rate,
            queue_rate_seconds = p_queue_rate_seconds, queue_concurrency = p_queue_concurrency,
            fair = p_fair,
            cursor_key = coalesce(v_keys[cardinality(v_keys)], l.cursor_key),
            starts = CASE WHEN p_queue_rate IS NULL THEN '{}'::timestamptz[]
                          ELSE v_starts || array_fill(v_now, ARRAY[cardinality(v_claimed)]) END,
            claimed_at = CASE WHEN cardinality(v_claimed) > 0 THEN v_now ELSE l.claimed_at END
        WHERE l.queue_name = p_queue;
    END IF;

    IF cardinality(v_claimed) = 0 THEN
        -- Nothing to claim now: say when the next rate slot of a waiting key (or of the
        -- queue) opens. A full concurrency slot needs no timer: its release sends a NOTIFY.
        IF p_queue_rate IS NOT NULL AND cardinality(v_starts) >= p_queue_rate THEN
            v_wait := extract(epoch FROM v_starts[1]
                              + make_interval(secs => p_queue_rate_seconds) - v_now);
        END IF;
        IF p_key_rate IS NOT NULL THEN
            v_wait := least(v_wait, (
                SELECT min(extract(epoch FROM first.s
                                   + make_interval(secs => p_key_rate_seconds) - v_now))
                FROM dramatiq.rate_windows rw
                CROSS JOIN LATERAL (
                    SELECT min(s) AS s FROM unnest(rw.starts) s
                    WHERE s > v_now - make_interval(secs => p_key_rate_seconds)) first
                WHERE rw.queue_name = p_queue AND first.s IS NOT NULL
                  AND EXISTS (SELECT 1 FROM dramatiq.queue q
                              WHERE q.queue_name = p_queue AND q.limit_key = rw.limit_key
                                AND q."state" = 'queued')));
        END IF;
    ELSIF p_key_rate IS NOT NULL AND random() < 0.02 THEN
        -- Forget keys whose whole window has passed (now and then: it is only tidying).
        DELETE FROM dramatiq.rate_windows rw
        WHERE rw.queue_name = p_queue
          AND rw.starts[cardinality(rw.starts)]
              <= v_now - make_interval(secs => p_key_rate_seconds);
    END IF;
    message_id := NULL; message := NULL; tenant_id := NULL; attempts := NULL;
    max_attempts := NULL; priority := NULL; eta := NULL; wait_seconds := v_wait;
    RETURN NEXT;
END $$;
"""

# Per limited queue and key: what runs, waits and is allowed now. Key NULL is the queue.
VIEW = """
CREATE VIEW jobs.limit_status WITH (security_invoker = true) AS
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
       k.limit_key AS key,
       k.running,
       l.key_concurrency AS concurrency_limit,
       k.rate_used,
       l.key_rate AS rate_limit,
       l.key_rate_seconds AS rate_seconds,
       k.waiting,
       CASE WHEN l.key_rate IS NOT NULL AND k.rate_used >= l.key_rate
            THEN k.oldest_expires END AS next_slot_at,
       coalesce(wt.weight, 1) AS weight,
       l.fair
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
       l.fair
FROM dramatiq.queue_limits l;

COMMENT ON VIEW jobs.limit_status IS
    'Per limited queue and key (key NULL = the whole queue): running jobs and the '
    'concurrency limit, claims in the current rate window and the rate limit, waiting jobs.';
"""

GRANTS = """
GRANT SELECT, INSERT, UPDATE, DELETE ON dramatiq.queue_limits, dramatiq.rate_windows
    TO app_worker;
GRANT SELECT ON dramatiq.limit_weights TO app_worker;
GRANT SELECT ON jobs.limit_status TO app_worker;
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(SLOT_FREED)
    op.execute(CLAIM)
    op.execute(VIEW)
    op.execute(GRANTS)


def downgrade() -> None:
    op.execute("DROP VIEW jobs.limit_status")
    op.execute("DROP FUNCTION dramatiq.claim_limited")
    op.execute("DROP TRIGGER queue_limit_slot_freed ON dramatiq.queue")
    op.execute("DROP FUNCTION dramatiq.limit_slot_freed")
    op.execute("DROP TABLE dramatiq.limit_weights, dramatiq.rate_windows, dramatiq.queue_limits")
    op.execute("DROP INDEX dramatiq.queue_limit_running_idx, dramatiq.queue_limit_waiting_idx")
    op.execute("ALTER TABLE dramatiq.queue DROP COLUMN limit_key")
