"""Bad rows in the queue: each ends in a clear, inspectable state and none blocks the queue.

Rows a worker cannot run (not a dramatiq message, an actor nobody defines, a tenant that
does not exist) become dead letters whose ``last_error`` names the problem; an oversized
payload (beyond NOTIFY's 8,000-byte limit, and 5 MB) runs like any job, since NOTIFY carries
only the id. Good jobs enqueued after the bad rows, at a lower priority, still all run, and
the worker's threads are all alive at the end.
"""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq
import psycopg
from dramatiq import Message
from psycopg.types.json import Jsonb

from app.db.tenant import tenant_session
from app.jobs import enqueue
from app.store.enqueue import insert_for_tenants
from tests.faults import actors
from tests.faults.helpers import enqueue_jobs
from tests.support import TestDB, wait_for

BAD_PRIORITY = 10  # claimed before the good jobs, which must still run

INSERT_RAW = """
INSERT INTO dramatiq.queue (message_id, queue_name, "state", message, tenant_id, actor_name,
                            priority)
VALUES (%s, %s, 'queued', %s, %s, %s, %s)
"""


def insert_raw(db: TestDB, message: Any, tenant: uuid.UUID, *, message_id: uuid.UUID | None = None,
               queue: str = actors.QUEUE) -> uuid.UUID:
    """A row written behind the API's back (a bug elsewhere, a hand-made INSERT)."""
    message_id = message_id or uuid.uuid4()
    with db.owner() as conn:
        conn.execute(INSERT_RAW, (message_id, queue, message, tenant, "faults.write",
                                  BAD_PRIORITY))
        conn.execute("SELECT pg_notify(%s, '{}')", (f"dramatiq.{queue}.enqueue",))
    return message_id


def dramatiq_message(actor_name: str, *args: Any, queue: str = actors.QUEUE) -> Message:
    return Message(queue_name=queue, actor_name=actor_name, args=args, kwargs={},
                   options={"priority": BAD_PRIORITY})


def row(db: TestDB, message_id: object) -> tuple[str, str | None, int]:
    found = db.query('SELECT "state"::text, last_error, attempts FROM dramatiq.queue '
                     "WHERE message_id = %s", (message_id,))
    assert found, f"job {message_id} vanished"
    return found[0]


def finished(db: TestDB, ids: list[Any]) -> bool:
    return all(row(db, i)[0] in ("done", "rejected") for i in ids)


def test_bad_rows_end_inspectable_and_block_nothing(
    effects: TestDB, tenants: list[uuid.UUID], broker: dramatiq.Broker,
) -> None:
    db = effects
    tenant = tenants[0]
    malformed = {
        "an object that is not a message": insert_raw(db, Jsonb({"nope": 1}), tenant),
        "JSON null": insert_raw(db, Jsonb(None), tenant),
        "a JSON string": insert_raw(db, Jsonb("just a string"), tenant),
        "SQL NULL": insert_raw(db, None, tenant),
    }
    good_body = dramatiq_message("faults.write", 1).asdict()
    mismatched = {
        "another job's id": insert_raw(db, Jsonb(good_body), tenant),
        "another queue's name": insert_raw(
            db, Jsonb(elsewhere := dramatiq_message("faults.write", 2, queue="elsewhere")
                      .asdict()), tenant, message_id=uuid.UUID(elsewhere["message_id"])),
        "options not an object": insert_raw(db, Jsonb({**good_body, "options": "x"}), tenant,
                                            message_id=uuid.UUID(good_body["message_id"])),
        "a stock dramatiq eta option": insert_raw(
            db, Jsonb(eta_body := {**good_body, "message_id": str(uuid.uuid4()),
                                   "options": {"eta": 0}}),
            tenant, message_id=uuid.UUID(eta_body["message_id"])),
    }
    # Through the system enqueue path, which names each job's tenant (as the scheduler does):
    # one for an actor no worker has, one for a tenant that does not exist.
    with psycopg.connect(db.worker_url, autocommit=True) as conn:
        unknown_actor = dramatiq_message("faults.nobody_defines_this")
        unknown_tenant = dramatiq_message("faults.write", 3)
        insert_for_tenants(conn, [unknown_actor.asdict(), unknown_tenant.asdict()],
                           [None, None], [tenant, uuid.uuid4()])
    with tenant_session(tenant) as session:
        over_notify = enqueue(session, actors.write, 4, blob="x" * 10_000).message_id
        huge = enqueue(session, actors.write, 5, blob="y" * 5_000_000).message_id
    good = enqueue_jobs(tenants, 40, start=100)

    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        everything = [*malformed.values(), *mismatched.values(), unknown_actor.message_id,
                      unknown_tenant.message_id, over_notify, huge, *good]
        wait_for(lambda: finished(db, everything), timeout=30, interval=0.1,
                 message="every row to end done or dead")
        threads = [*worker.workers, *worker.consumers.values()]
        assert all(t.is_alive() for t in threads), "a worker thread died on a bad row"
    finally:
        worker.stop(timeout=10_000)

    print()
    for name, mid in {**malformed, **mismatched, "unknown actor": unknown_actor.message_id,
                      "unknown tenant": unknown_tenant.message_id}.items():
        state, error, attempts = row(db, mid)
        print(f"bad input: {name:28} {state:8} attempts={attempts} last_error={error}")
    for name, mid in {**malformed, **mismatched}.items():
        state, error, attempts = row(db, mid)
        assert state == "rejected" and attempts == 1, (name, state, error)
        assert (error or "").startswith("malformed message: "), (name, error)
    assert not db.scalar("SELECT count(*) FROM fault_effects WHERE n IN (1, 2)")
    state, error, _ = row(db, unknown_actor.message_id)
    assert state == "rejected", error
    assert "faults.nobody_defines_this" in (error or "") and "ActorNotFound" in (error or "")
    state, error, attempts = row(db, unknown_tenant.message_id)
    assert state == "rejected" and attempts == 1, error
    assert "unknown tenant" in (error or "")
    for mid, size in ((over_notify, 10_000), (huge, 5_000_000)):
        assert row(db, mid)[0] == "done"
        assert db.scalar("SELECT size FROM fault_effects WHERE message_id = %s", (mid,)) == size
    assert all(row(db, mid)[0] == "done" for mid in good)
    assert db.scalar("SELECT count(*) FROM fault_effects WHERE n >= 100") == len(good)
