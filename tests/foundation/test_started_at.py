"""``started_at`` is when a job started running, not when its worker claimed it.

A worker claims a window of jobs ahead of its threads: with one thread, the second job of a
batch is claimed with the first and waits behind it. Its ``started_at`` (what users read
for queue wait and duration) must say when it really started, on every path that finishes
an attempt: the grouped completion, the completion in the job's own transaction, a retry
and a dead letter (the attempt history keeps each failed attempt's start).
"""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from app.db.tenant import tenant_session
from app.jobs import enqueue, wait_for_results
from tests.foundation import actors
from tests.foundation.helpers import start
from tests.support import TestDB, wait_for

PAUSE = 0.4


def _starts(db: TestDB, ids: list[str]) -> list[Any]:
    """started_at of ``ids``, in the order they finished."""
    rows = db.query("SELECT started_at FROM dramatiq.queue WHERE message_id = ANY(%s::uuid[])"
                    " ORDER BY mtime", (ids,))
    return [at for (at,) in rows]


def _gaps(starts: list[Any]) -> list[float]:
    return [(b - a).total_seconds() for a, b in pairwise(starts)]


def test_a_job_waiting_in_the_window_starts_when_its_thread_takes_it(
    probes: TestDB, tmp_path: Path,
) -> None:
    db = probes
    start(db, tmp_path, "one-thread", queues=[actors.QUEUE], threads=1)
    tenant = db.create_tenant()
    for actor in (actors.pause, actors.work):  # grouped completion; in the job's transaction
        with tenant_session(tenant) as session:  # one commit: claimed together
            ids = [enqueue(session, actor, PAUSE).message_id for _ in range(3)]
        done = wait_for_results(ids, timeout=30, tenant=tenant)
        assert {j.status for j in done.values()} == {"completed"}, actor
        gaps = _gaps(_starts(db, ids))
        # One thread: each job started once the one before had taken its PAUSE.
        assert all(gap >= PAUSE - 0.01 for gap in gaps), (actor.actor_name, gaps)


def test_retries_and_dead_letters_record_when_each_attempt_started(
    probes: TestDB, tmp_path: Path,
) -> None:
    db = probes
    start(db, tmp_path, "one-thread", queues=[actors.QUEUE], threads=1)
    tenant = db.create_tenant()
    with tenant_session(tenant) as session:
        slow = enqueue(session, actors.pause, PAUSE).message_id
        failing = enqueue(session, actors.always_fails, "late").message_id
    wait_for(lambda: db.scalar("SELECT state FROM dramatiq.queue WHERE message_id = %s",
                               (failing,)) == "rejected", timeout=30,
             message="the failing job to use its attempts")
    (slow_started,) = _starts(db, [slow])
    history = db.query("SELECT attempt, outcome, started_at FROM dashboard_job_attempts"
                       " WHERE message_id = %s ORDER BY attempt", (failing,))
    assert [(a, o) for a, o, _ in history] == [(1, "retrying"), (2, "retrying"), (3, "dead")]
    # Its first attempt was claimed with the slow job but ran after it.
    assert (history[0][2] - slow_started).total_seconds() >= PAUSE - 0.01, history
    (row_started,) = _starts(db, [failing])
    assert row_started == history[-1][2]


def test_a_reported_start_stays_between_the_claim_and_now(db: TestDB) -> None:
    """A worker's clock (or an actor passing its own value to ``complete_job``) cannot put
    a start before the claim or after the completion."""
    claimed = db.scalar("SELECT now() - interval '1 minute'")

    def bounded(reported: Any) -> Any:
        return db.scalar("SELECT pgjobs.started_between(%s, %s)", (claimed, reported))

    assert bounded(None) == claimed
    assert bounded(claimed - timedelta(days=365)) == claimed
    far = bounded(claimed + timedelta(days=365))
    assert claimed < far <= db.scalar("SELECT now()")  # the statement's own time
    inside = claimed + timedelta(seconds=30)
    assert bounded(inside) == inside
