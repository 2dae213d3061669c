"""Retention keeps the job table bounded under sustained load and prunes by age; one
maintenance leader at a time, which also publishes the queue gauges."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import psycopg
import pytest

from app.jobs import enqueue, enqueue_many, metrics
from app.jobs.policies import QUEUES, QueuePolicy
from app.maintenance import retention
from app.maintenance.leader import DedicatedSession, Leadership
from app.maintenance.service import LEADER, Maintenance
from tests.lifecycle import actors
from tests.lifecycle.conftest import run_worker
from tests.support import TestDB, queue_reads, wait_for


@pytest.fixture
def small_policy(monkeypatch: pytest.MonkeyPatch) -> QueuePolicy:
    policy = QueuePolicy(max_attempts=1, completed_max_count=100, failed_max_count=20)
    monkeypatch.setitem(QUEUES, actors.RETENTION_QUEUE, policy)
    return policy


@pytest.fixture
def busy_worker(broker: dramatiq.Broker, maintenance: Maintenance) -> Iterator[dramatiq.Worker]:
    yield from run_worker(broker, threads=2)


def finished(db: TestDB) -> dict[str, int]:
    return dict(db.query('SELECT "state"::text, count(*) FROM dramatiq.queue '
                         "WHERE state IN ('done', 'rejected') GROUP BY 1"))


def test_retention_keeps_the_table_bounded_over_a_sustained_run(
    db: TestDB, small_policy: QueuePolicy, busy_worker: dramatiq.Worker
) -> None:
    total, batch = 3000, 250
    sizes: list[int] = []  # table size after each batch
    with psycopg.connect(db.worker_url, autocommit=True) as conn:
        for start in range(0, total, batch):
            with conn.transaction():
                enqueue_many(conn, actors.retained, [
                    ((n,), {"fail": n % 50 == 0}) for n in range(start, start + batch)])
            # Steady load: the next batch goes in once this one is mostly through.
            wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue "
                                       "WHERE state IN ('queued', 'consumed')") < 50,
                     timeout=20, message="the worker to keep up")
            sizes.append(db.scalar("SELECT count(*) FROM dramatiq.queue"))
    try:
        wait_for(lambda: finished(db) == {"done": 100, "rejected": 20}, timeout=20,
                 message="retention to reach the policy's counts")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: finished jobs {finished(db)}") from None
    peak = max(sizes)
    print(f"\n{total} jobs through: sizes {sizes}, "
          f"{db.scalar('SELECT count(*) FROM dramatiq.queue')} at the end")
    # Bounded: without retention the table would grow by a batch each time and end at 3000.
    # How many batches pruning lags behind depends on the machine's load, not on the run's
    # length; the settled counts above show it catches up to the policy.
    assert peak < 1000
    # The newest are the ones kept.
    assert db.scalar("SELECT min((message->'args'->>0)::int) FROM dramatiq.queue "
                     "WHERE state = 'done'") > total - 300


def test_age_limits_prune_old_finished_jobs_only(db: TestDB, broker: object) -> None:
    with psycopg.connect(db.worker_url, autocommit=True) as conn:
        items = [((n,), {}) for n in range(11)]
        ids = [r.message_id for r in enqueue_many(conn, actors.noop, items)]
        keyed = enqueue(conn, actors.noop, 99, unique_key="still-held").message_id
    ages = [  # (state, finished hours ago) per job; the default policy: 24 h done, 7 d failed
        *[("done", 25)] * 5, *[("done", 1)] * 2, ("rejected", 8 * 24), ("rejected", 6 * 24),
        ("queued", 30 * 24), ("consumed", 30 * 24),
    ]
    for job_id, (state, hours) in zip(ids, ages, strict=True):
        db.query("UPDATE dramatiq.queue SET state = %s, mtime = now() - make_interval("
                 "hours => %s) WHERE message_id = %s RETURNING 1", (state, hours, job_id))
    # Finished long ago but its unique window is still open: kept (a duplicate stays out).
    db.query("UPDATE dramatiq.queue SET state = 'done', mtime = now() - interval '3 days', "
             "unique_until = now() + interval '1 hour' WHERE message_id = %s RETURNING 1",
             (keyed,))

    with psycopg.connect(db.worker_url, autocommit=True) as conn:
        deleted = retention.prune(conn, [actors.QUEUE], batch=2)
    assert deleted == {(actors.QUEUE, "done"): 5, (actors.QUEUE, "rejected"): 1}
    left = db.query('SELECT "state"::text, count(*) FROM dramatiq.queue GROUP BY 1 ORDER BY 1')
    assert left == [("consumed", 1), ("done", 3), ("queued", 1), ("rejected", 1)]


def test_one_leader_prunes_and_publishes_queue_gauges(db: TestDB, broker: dramatiq.Broker) -> None:
    with psycopg.connect(db.worker_url, autocommit=True) as conn:
        enqueue_many(conn, actors.noop, [((n,), {}) for n in range(3)])
        enqueue_many(conn, actors.noop, [((n,), {}) for n in range(2)], delay=3600)
    # Two processes' maintenance, each with its own session (a worker's claim connection).
    sessions = [DedicatedSession(db.worker_url, f"maintenance-{n}") for n in range(2)]
    first, second = Maintenance(), Maintenance()
    for maintenance, session in zip((first, second), sessions, strict=True):
        maintenance.leadership = Leadership(LEADER, session, lambda s=session: s.generation)
    try:
        first.tick(broker)
        second.tick(broker)
        assert (first.leader, second.leader) == (True, False)

        def gauge(status: str) -> float | None:
            return metrics.REGISTRY.get_sample_value(
                "pgjobs_queue_jobs", {"queue": actors.QUEUE, "status": status})

        first.tick(broker)
        assert (gauge("waiting"), gauge("delayed"), gauge("active")) == (3, 2, 0)
        oldest = metrics.REGISTRY.get_sample_value(
            "pgjobs_queue_oldest_waiting_seconds", {"queue": actors.QUEUE})
        assert oldest is not None and oldest >= 0
        sessions[0].close()  # the leader's connection ends (its process died): another leads

        def second_leads() -> bool:
            second.tick(broker)  # the server frees the lock once it sees the session end
            return second.leader

        wait_for(second_leads, timeout=10, message="the other maintenance to take the lead")
        first.tick(broker)
        assert not first.leader
    finally:
        for session in sessions:
            session.close()


def test_pruning_ties_reads_index_ranges_whatever_plan_the_cache_picks(db: TestDB) -> None:
    """A burst finished in one transaction (or a bulk import) leaves many rows of one mtime.
    Each batch must read what it deletes, not sort the whole queue: 1,000,000 such rows
    made every batch of 500 take 590 ms while workers drained beside it."""
    rows, keep, batch = 100_000, 1_000, 50
    db.query("INSERT INTO dramatiq.queue (message_id, queue_name, \"state\", mtime, message) "
             "SELECT gen_random_uuid(), %s, 'done', now(), '{}' FROM generate_series(1, %s) "
             "RETURNING 1", (actors.QUEUE, rows))
    with db.owner() as conn:
        conn.execute("VACUUM ANALYZE dramatiq.queue")
    newest = db.query("SELECT message_id FROM dramatiq.queue ORDER BY message_id DESC LIMIT %s",
                      (keep,))
    policy = QueuePolicy(completed_max_count=keep)
    # Every statement prepared and planned once for any parameters: the plan a long-running
    # maintenance leader ends up with after psycopg prepares its repeated statements.
    with psycopg.connect(db.owner_url, autocommit=True, prepare_threshold=0) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        blocks, scans = queue_reads(conn)
        deleted = retention.prune(conn, [actors.QUEUE], batch=batch, policy=lambda q: policy)
        after_blocks, after_scans = queue_reads(conn)
        n = deleted[(actors.QUEUE, "done")]  # one pass: up to MAX_BATCHES batches
        assert n > (retention.MAX_BATCHES - 5) * batch
        per_row = (after_blocks - blocks) / n
        # Each deleted row costs its heap page and a primary-key lookup, a few blocks; a
        # sort of the queue per batch would add its ~1,800 pages / 50 rows = 36 a row.
        assert (after_scans - scans, per_row < 12) == (0, True), f"{per_row:.1f} blocks a row"
        while retention.prune(conn, [actors.QUEUE], batch=5_000, policy=lambda q: policy):
            pass
    # Exactly the newest ``keep`` stay, ties on mtime broken by id.
    assert db.query("SELECT message_id FROM dramatiq.queue ORDER BY message_id DESC") == newest
