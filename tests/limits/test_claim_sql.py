"""The limited claim itself, statement by statement, as the worker role: what it hands out."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest

from app.broker.limits import Limits
from app.store import claim as store
from app.store.rows import Claimed
from tests.support import TestDB

WORKER = uuid.uuid4()


def claim(conn: psycopg.Connection, queue: str, limit: int, worker: uuid.UUID,
          limits: Limits) -> tuple[list[Claimed], float | None]:
    return store.claim_limited(conn, queue, limit, worker, limits.params())


@pytest.fixture
def conn(db: TestDB) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db.worker_url, autocommit=True) as c:
        yield c


def add_jobs(db: TestDB, queue: str, key: str, count: int, priority: int = 0) -> list[uuid.UUID]:
    """``count`` waiting jobs of ``key``, oldest first."""
    rows = db.query(
        "INSERT INTO dramatiq.queue (message_id, queue_name, state, message, limit_key, "
        "priority, eta) SELECT gen_random_uuid(), %s, 'queued', '{}', %s, %s, "
        "now() - make_interval(secs => 1000 - i) FROM generate_series(1, %s) i "
        "RETURNING message_id, eta",
        (queue, key, priority, count),
    )
    return [mid for mid, _ in sorted(rows, key=lambda r: r[1])]


def keys_of(db: TestDB, rows: list[Claimed]) -> list[str]:
    ids = [r.message_id for r in rows]
    found = dict(db.query("SELECT message_id, limit_key FROM dramatiq.queue "
                          "WHERE message_id = ANY(%s)", (ids,)))
    return [found[i] for i in ids]


def finish(db: TestDB, ids: list[object]) -> None:
    db.query("UPDATE dramatiq.queue SET state = 'done' WHERE message_id = ANY(%s) RETURNING 1",
             (ids,))


def test_keys_are_served_round_robin_so_a_backlog_does_not_starve_a_newcomer(
    db: TestDB, conn: psycopg.Connection
) -> None:
    add_jobs(db, "q", "big", 500)
    small = add_jobs(db, "q", "small", 3)
    fair = Limits(fair=True)
    first, _ = claim(conn, "q", 4, WORKER, fair)
    second, _ = claim(conn, "q", 4, WORKER, fair)
    assert Counter(keys_of(db, first)) == {"big": 2, "small": 2}
    # Each open key gets at most its share of a claim (here 2): the claim may come back
    # short when a key runs dry, and the consumer claims again at once.
    assert Counter(keys_of(db, second)) == {"big": 2, "small": 1}
    claimed = {r.message_id for r in first + second}
    assert set(small) <= claimed


def test_a_key_keeps_its_order_priority_first_then_eta(
    db: TestDB, conn: psycopg.Connection
) -> None:
    old = add_jobs(db, "q", "k", 3)
    urgent = add_jobs(db, "q", "k", 1, priority=5)
    rows, _ = claim(conn, "q", 2, WORKER, Limits(concurrency=10))
    assert {r.message_id for r in rows} == {urgent[0], old[0]}


def test_concurrency_counts_running_rows_and_a_finished_job_frees_its_slot_with_a_notify(
    db: TestDB, conn: psycopg.Connection
) -> None:
    add_jobs(db, "q", "a", 5)
    add_jobs(db, "q", "b", 5)
    cap = Limits(concurrency=2)
    rows, _ = claim(conn, "q", 10, WORKER, cap)
    assert Counter(keys_of(db, rows)) == {"a": 2, "b": 2}
    assert claim(conn, "q", 10, WORKER, cap) == ([], None)  # no timer: wait for a slot
    with psycopg.connect(db.worker_url, autocommit=True) as listener:
        listener.execute('LISTEN "dramatiq.q.enqueue"')
        a_job = next(r.message_id for r, k in zip(rows, keys_of(db, rows), strict=True) if k == "a")
        finish(db, [a_job])
        assert [n.channel for n in listener.notifies(timeout=5, stop_after=1)] == [
            "dramatiq.q.enqueue"
        ]
    again, _ = claim(conn, "q", 10, WORKER, cap)
    assert keys_of(db, again) == ["a"]


def test_rate_allows_a_burst_up_to_the_limit_then_says_when_the_next_slot_opens(
    db: TestDB, conn: psycopg.Connection
) -> None:
    add_jobs(db, "q", "a", 10)
    rate = Limits(rate=(3, 1.0))
    rows, _ = claim(conn, "q", 10, WORKER, rate)
    assert len(rows) == 3
    finish(db, [r.message_id for r in rows])  # finishing does not give rate back
    rows, wait = claim(conn, "q", 10, WORKER, rate)
    assert rows == []
    assert wait is not None and 0.5 < wait <= 1.0
    # Pretend the window has passed: its claims age out and three more may start.
    db.query("UPDATE dramatiq.rate_windows SET starts = ARRAY(SELECT s - interval '1 second' "
             "FROM unnest(starts) s) RETURNING 1")
    rows, _ = claim(conn, "q", 10, WORKER, rate)
    assert len(rows) == 3


def test_queue_caps_apply_across_keys(db: TestDB, conn: psycopg.Connection) -> None:
    for key in ("a", "b", "c"):
        add_jobs(db, "q", key, 5)
    rows, _ = claim(conn, "q", 50, WORKER, Limits(queue_concurrency=4, fair=True))
    assert len(rows) == 4 and len(set(keys_of(db, rows))) == 3
    rows, _ = claim(conn, "q", 50, WORKER, Limits(queue_rate=(5, 60.0)))
    assert len(rows) == 5
    rows, wait = claim(conn, "q", 50, WORKER, Limits(queue_rate=(5, 60.0)))
    assert rows == [] and wait is not None and 55 < wait <= 60


def test_weights_give_a_key_more_jobs_per_round(db: TestDB, conn: psycopg.Connection) -> None:
    add_jobs(db, "q", "gold", 50)
    add_jobs(db, "q", "basic", 50)
    db.query("INSERT INTO dramatiq.limit_weights VALUES ('q', 'gold', 3) RETURNING 1")
    rows, _ = claim(conn, "q", 8, WORKER, Limits(fair=True))
    assert Counter(keys_of(db, rows)) == {"gold": 6, "basic": 2}


def test_a_paused_queue_hands_out_nothing(db: TestDB, conn: psycopg.Connection) -> None:
    add_jobs(db, "q", "a", 3)
    db.query("INSERT INTO dramatiq.paused_queues (queue_name) VALUES ('q') RETURNING 1")
    assert claim(conn, "q", 10, WORKER, Limits(fair=True)) == ([], None)


def test_limit_status_shows_running_waiting_and_limits_per_key(
    db: TestDB, conn: psycopg.Connection
) -> None:
    add_jobs(db, "q", "a", 4)
    add_jobs(db, "q", "b", 1)
    claim(conn, "q", 10, WORKER, Limits(rate=(2, 60.0), concurrency=1))
    status = {row[1]: row for row in db.query(
        "SELECT queue, key, running, concurrency_limit, rate_used, rate_limit, waiting, "
        "next_slot_at IS NOT NULL FROM jobs.limit_status WHERE queue = 'q'")}
    assert status["a"][2:] == (1, 1, 1, 2, 3, False)
    assert status["b"][2:] == (1, 1, 1, 2, 0, False)
    assert status[None][2:7] == (2, None, 0, None, 3)
