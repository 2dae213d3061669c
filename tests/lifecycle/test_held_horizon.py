"""A transaction left open (idle in transaction, a long report) holds the xmin horizon: no
version written meanwhile can be removed. The worker's statements must not walk them."""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg

from app.store import outcomes
from tests.lifecycle import actors
from tests.support import TestDB, queue_reads


def test_a_completion_batch_reads_its_own_rows_while_old_versions_pile_up(db: TestDB) -> None:
    """Under a held horizon each job a worker ran leaves its 'consumed' version, and its
    entry in the leased index, behind; a completion batch keyed by the worker alone read
    every one of them (30 ms a batch after 2.5 minutes of an idle transaction at 400/s)."""
    worker, ran, batch = uuid.uuid4(), 50_000, 20
    db.query("INSERT INTO dramatiq.workers (worker_id, hostname, pid, queues, lease_expires_at) "
             "VALUES (%s, 'here', 1, %s, now() + interval '1 hour') RETURNING 1",
             (worker, [actors.QUEUE]))

    def claimed(n: int) -> tuple[list[uuid.UUID], datetime]:
        """``n`` jobs this worker holds, as a claim leaves them; and the claim's time."""
        rows = db.query(
            "INSERT INTO dramatiq.queue (message_id, queue_name, \"state\", worker_id, "
            "started_at, message) SELECT gen_random_uuid(), %s, 'consumed', %s, now(), '{}' "
            "FROM generate_series(1, %s) RETURNING message_id, started_at",
            (actors.QUEUE, worker, n))
        return [r[0] for r in rows], rows[0][1]

    earlier, first_claim = claimed(ran)
    with db.owner() as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT txid_current()")  # idle in transaction from here on
        with psycopg.connect(db.owner_url, autocommit=True) as conn:
            for n in range(0, ran, 1_000):  # the worker completes what it ran, batch by batch
                chunk = earlier[n:n + 1_000]
                outcomes.complete_many(conn, chunk, [None] * len(chunk), [None] * len(chunk),
                                       worker, first_claim)
            ids, claim = claimed(batch)
            before, _ = queue_reads(conn)
            outcomes.complete_many(conn, ids, [None] * batch, [None] * batch, worker, claim)
            after, _ = queue_reads(conn)
        holder.execute("ROLLBACK")
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE \"state\" = 'done'") \
        == ran + batch
    # Each row: its page, its lookup and its new index entries, ~12 blocks. The leased
    # index's 50,000 held entries and their heap pages added ~40 a row.
    per_row = (after - before) / batch
    assert per_row < 25, f"{per_row:.1f} blocks a completed row"
