"""Unique jobs: one job per key while it is queued, delayed or running, and for its window.

Race-safe because the database decides (a partial unique index on (tenant, key) and
``ON CONFLICT DO NOTHING``), not a check-then-insert in Python.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import dramatiq

from app.db.engine import engine_for
from app.db.tenant import tenant_session
from app.jobs import EnqueueResult, enqueue
from tests.lifecycle import actors
from tests.support import TestDB, wait_for


def state(db: TestDB, message_id: str) -> str:
    return str(db.scalar('SELECT "state"::text FROM dramatiq.queue WHERE message_id = %s',
                         (message_id,)))


def test_50_concurrent_enqueues_of_one_key_make_one_job(db: TestDB, broker: object) -> None:
    tenant = db.create_tenant()
    engine = engine_for(db.app_url, pool_size=50)  # one connection per thread, as app_user
    start = threading.Barrier(50)

    def enqueue_once(_: int) -> EnqueueResult:
        with tenant_session(tenant, engine=engine) as session:
            session.connection()  # connected and in its transaction before the race starts
            start.wait(timeout=30)
            return enqueue(session, actors.unique, unique_key="shopify-orders-channel-123")

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(enqueue_once, range(50)))

    assert db.scalar("SELECT count(*) FROM dramatiq.queue") == 1
    created = [r for r in results if not r.duplicate]
    assert len(created) == 1
    assert {r.message_id for r in results} == {created[0].message_id}
    # The same key in another tenant is another job.
    with tenant_session(db.create_tenant("other")) as session:
        other = enqueue(session, actors.unique, unique_key="shopify-orders-channel-123")
    assert not other.duplicate


def test_duplicate_while_delayed_waiting_running_then_window_then_new_job(
    probes: TestDB, broker: dramatiq.Broker
) -> None:
    db = probes
    tenant = db.create_tenant()

    def again(**kw: object) -> EnqueueResult:
        with tenant_session(tenant) as session:
            return enqueue(session, actors.unique, unique_key="k-1", **kw)  # type: ignore[arg-type]

    gate = f"g-{uuid.uuid4().hex[:8]}"
    first = again(gate=gate, delay=3600)
    assert not first.duplicate
    assert again().message_id == first.message_id and again().duplicate  # delayed

    db.query("UPDATE dramatiq.queue SET queue_name = 'lifecycle', eta = now() RETURNING 1")
    assert again() == EnqueueResult(first.message_id, duplicate=True)  # waiting

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        wait_for(lambda: state(db, first.message_id) == "consumed", message="job to start")
        assert again() == EnqueueResult(first.message_id, duplicate=True)  # running
        db.query("INSERT INTO lifecycle_gates VALUES (%s) RETURNING 1", (gate,))
        wait_for(lambda: state(db, first.message_id) == "done", message="job to finish")
        # The actor's 1 s window: still a duplicate right after completion...
        assert again() == EnqueueResult(first.message_id, duplicate=True)
        assert db.scalar("SELECT unique_until > now() FROM dramatiq.queue") is True
        # ...and a new job once it has passed.
        def new_job() -> EnqueueResult | None:
            result = again()
            return None if result.duplicate else result

        second = wait_for(new_job, timeout=5, message="the window to pass")
        assert second.message_id != first.message_id
        wait_for(lambda: state(db, second.message_id) == "done", message="new job to run")
    finally:
        worker.stop(timeout=10_000)
    rows = db.query("SELECT message_id::text, unique_key FROM dramatiq.queue ORDER BY enqueued_at")
    assert rows == [(first.message_id, None), (second.message_id, "k-1")]


def test_dead_letter_releases_its_key(db: TestDB, broker: dramatiq.Broker) -> None:
    tenant = db.create_tenant()
    with tenant_session(tenant) as session:
        first = enqueue(session, actors.unique, unique_key="k-dead")
    db.query("UPDATE dramatiq.queue SET state = 'rejected', unique_until = now(), "
             "last_error = 'boom' RETURNING 1")
    with tenant_session(tenant) as session:
        retry = enqueue(session, actors.unique, unique_key="k-dead")
    assert not retry.duplicate and retry.message_id != first.message_id
