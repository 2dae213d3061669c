"""Operations observed by real workers: pause/resume across processes, retry, cancel."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import dramatiq
import pytest

from app.jobs import enqueue_many
from tests.ops import actors
from tests.ops.rows import status_of
from tests.support import Run, TestDB, wait_for

Cli = Callable[..., Run]

PAUSE_WINDOW = 2.0


def send_sleeps(broker: dramatiq.Broker, count: int, seconds: float) -> None:
    with broker.jobs_pool.connection() as conn:
        enqueue_many(conn, actors.sleep, [((seconds,), {}) for _ in range(count)])


def holds_for(seconds: float, condition: Callable[[], bool], message: str) -> None:
    """Assert ``condition`` stays true for ``seconds``: here the window IS the assertion."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition(), message
        time.sleep(0.05)


@pytest.mark.slow
def test_pause_stops_two_worker_processes_and_resume_restarts_them(
    db: TestDB, broker: dramatiq.Broker, cli: Cli, tmp_path: Path
) -> None:
    for n in range(2):
        db.start_worker("tests.ops.actors", threads=2, queues=["ops"],
                        log=tmp_path / f"worker{n}.log", JOBS_HEARTBEAT_SECONDS="0.5")
    wait_for(lambda: db.scalar("SELECT count(*) FROM jobs.workers WHERE alive") == 2,
             timeout=30, message="two worker processes to register")

    def both_consume() -> bool:
        # More than one process prefetches (2 threads x 2), so the NOTIFY race's winner
        # cannot take them all.
        send_sleeps(broker, 16, 0.05)
        return db.scalar("SELECT count(DISTINCT worker_id) FROM dramatiq.queue "
                         "WHERE state = 'done'") == 2

    wait_for(both_consume, timeout=30, interval=0.3, message="both processes to run jobs")
    db.query("DELETE FROM dramatiq.queue RETURNING 1")

    # A backlog is flowing through both processes when the queue is paused.
    send_sleeps(broker, 300, 0.02)
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state = 'done'")
             >= 20, message="the backlog to start flowing")
    assert cli("pause", "ops").code == 0
    send_sleeps(broker, 10, 0.02)  # new jobs are accepted (and their NOTIFY wakes workers)
    # What the workers had claimed before the pause (their windows) still runs, and ends.
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state = 'consumed'")
             == 0, timeout=20, message="what was claimed before the pause to finish")
    waiting = [m for (m,) in db.query(
        "SELECT message_id FROM dramatiq.queue WHERE state = 'queued'")]
    assert len(waiting) >= 10, "jobs are still waiting"

    def nothing_claimed() -> bool:
        return db.scalar("SELECT count(*) FROM dramatiq.queue WHERE message_id = ANY(%s)"
                         " AND state = 'queued'", (waiting,)) == len(waiting)

    holds_for(PAUSE_WINDOW, nothing_claimed, "a job was claimed after the queue was paused")

    resumed_at = db.scalar("SELECT now()")
    assert cli("resume", "ops").code == 0
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state <> 'done'")
             == 0, timeout=20, message="every job to finish after resume")
    first_start = db.scalar("SELECT extract(epoch FROM min(started_at) - %s) FROM "
                            "dramatiq.queue WHERE started_at > %s", (resumed_at, resumed_at))
    print(f"first job started {first_start * 1000:.0f} ms after resume")
    assert first_start < 1.0, "resume takes effect within a second"
    assert db.scalar("SELECT count(DISTINCT worker_id) FROM dramatiq.queue "
                     "WHERE started_at > %s", (resumed_at,)) == 2


def test_retried_dead_letter_runs_again(db: TestDB, worker: dramatiq.Worker, cli: Cli) -> None:
    message = actors.fail_first.send("order-1")
    wait_for(lambda: status_of(db, message.message_id) == "dead", message="a dead letter")
    assert "first run of order-1 fails" in cli("failed").out

    assert cli("retry", message.message_id).code == 0
    wait_for(lambda: status_of(db, message.message_id) == "completed",
             message="the retried job to complete")
    shown = cli("show", message.message_id, "--json").json
    assert shown["attempts"] == 1 and shown["result"] == {"key": "order-1", "ok": True}


def test_cancelled_delayed_job_never_runs(
    db: TestDB, worker: dramatiq.Worker, cli: Cli
) -> None:
    doomed = actors.sleep.send_with_options(args=(0,), delay=300)
    control = actors.sleep.send_with_options(args=(0,), delay=300)
    assert status_of(db, doomed.message_id) == "delayed"
    assert cli("cancel", doomed.message_id).code == 0
    # The job sent with the same delay completing proves the delay passed on a live worker.
    wait_for(lambda: status_of(db, control.message_id) == "completed",
             message="the other delayed job to run")
    row = db.query("SELECT attempts, started_at FROM dramatiq.queue WHERE message_id = %s",
                   (doomed.message_id,))
    assert status_of(db, doomed.message_id) == "cancelled" and row == [(0, None)]


def test_requeued_delayed_job_runs_now(db: TestDB, worker: dramatiq.Worker, cli: Cli) -> None:
    later = actors.sleep.send_with_options(args=(0,), delay=3_600_000)
    assert cli("requeue", later.message_id).code == 0
    wait_for(lambda: status_of(db, later.message_id) == "completed", timeout=5,
             message="the job due in an hour to run after requeue")
