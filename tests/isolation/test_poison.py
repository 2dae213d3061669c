"""Poison values never stall a worker: a value PostgreSQL refuses to store dead-letters only
its own job, at once, with a clear error, while every other job completes; then SIGTERM
stops the worker within its shutdown timeout."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psycopg

from app.jobs import enqueue, enqueue_many
from tests.isolation import actors
from tests.support import TestDB, wait_for

KINDS = {
    "nan": "cannot be stored as JSON: Out of range float values are not JSON compliant",
    "nul": "contains a NUL character",
    "set": "cannot be stored as JSON: Object of type set is not JSON serializable",
    "progress": "the progress message contains a NUL character",
    "session_nan": "cannot be stored as JSON",
}


def test_poison_values_dead_letter_their_own_job_and_stall_nothing(
    db: TestDB, tmp_path: Path
) -> None:
    proc = db.start_worker("tests.isolation.actors", threads=4, queues=[actors.POISON],
                           log=tmp_path / "worker.log")
    with psycopg.connect(db.worker_url, autocommit=True) as conn:
        bad = {kind: enqueue(conn, actors.poison, kind).message_id for kind in KINDS}
        good = [r.message_id for r in enqueue_many(
            conn, actors.fine, [((n,), {}) for n in range(20)])]

    def settled() -> bool:
        states = dict(db.query('SELECT message_id::text, "state"::text FROM dramatiq.queue'))
        return all(states.get(i) == "rejected" for i in bad.values()) and all(
            states.get(i) == "done" for i in good)

    wait_for(settled, timeout=30, message="poison jobs dead, the others done")
    for kind, fragment in KINDS.items():
        attempts, error = db.query("SELECT attempts, last_error FROM dramatiq.queue "
                                   "WHERE message_id = %s", (bad[kind],))[0]
        assert attempts == 1, f"{kind}: retried a value that can never be stored"
        assert error.startswith("PoisonValue: ") and fragment in error, (kind, error)
    assert sorted(r["n"] for (r,) in db.query(
        "SELECT result FROM dramatiq.queue WHERE message_id = ANY(%s::uuid[])", (good,))
    ) == list(range(20))

    stopped = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    print(f"\nSIGTERM to exit: {time.monotonic() - stopped:.2f}s")
