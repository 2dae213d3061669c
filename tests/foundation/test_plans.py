"""Where the job store trades planning or flush waits for speed, and where it must not.

The insert path runs with generic plans (planned once per session instead of per call);
claims commit without waiting for their WAL flush, which is safe only because a
job's own transaction, which makes everything before it durable, still waits for it.
"""

from __future__ import annotations

import dramatiq

from app.db.tenant import tenant_session
from app.jobs import enqueue, wait_for_results
from tests.foundation import actors
from tests.support import TestDB


def test_claims_skip_the_flush_wait_and_keep_custom_plans(broker: dramatiq.Broker) -> None:
    with broker.claim_connection() as conn:  # type: ignore[attr-defined]
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
        # Generic plans made claims 12x slower on a table of 1,100,000 rows.
        assert conn.execute("SHOW plan_cache_mode").fetchone() == ("auto",)


def test_a_jobs_own_transaction_still_waits_for_its_flush(
    db: TestDB, worker: dramatiq.Worker
) -> None:
    tenant = db.create_tenant("durable")
    with tenant_session(tenant) as session:
        message = enqueue(session, actors.durability)
    done = wait_for_results([message.message_id], timeout=30, tenant=tenant)
    assert done[message.message_id].result == "on"


def test_the_insert_path_plans_once_per_session(db: TestDB) -> None:
    with db.owner() as conn:
        (config,) = conn.execute(
            "SELECT proconfig FROM pg_proc WHERE oid = "
            "'pgjobs._insert(jsonb[], float8[], uuid[])'::regprocedure").fetchone()
    assert "plan_cache_mode=force_generic_plan" in config
