"""Jobs claimed through the limited path announce themselves on the events channel too."""

from __future__ import annotations

import dramatiq
import psycopg

from app.jobs import enqueue
from tests.lifecycle.test_events import heard, listener
from tests.support import TestDB, wait_for


def test_limited_claims_notify_active_between_enqueued_and_completed(
    db: TestDB, broker: dramatiq.Broker
) -> None:
    from tests.limits import actors

    db.start_worker("tests.limits.actors", threads=2, queues=["lim_keyed"])
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.workers") == 1, timeout=30,
             message="the worker to register")
    with listener(db) as conn:
        with psycopg.connect(db.worker_url) as wconn:
            job = enqueue(wconn, actors.noop_keyed, 1, limit_key="shop-1").message_id
        events = heard(conn, job, until="completed")
    assert [e["event"] for e in events] == ["enqueued", "active", "completed"]
    assert {e["queue"] for e in events} == {"lim_keyed"}
