"""Claims from floors: cheap under an old snapshot, and no ready row is left behind.

A claimed row leaves a dead entry at the start of the claim index, which nothing can prune
while a transaction holds an older snapshot (an idle-in-transaction session, a long
report). A claim from the oldest row walks all of them; a claim from its band's floor (the
eta of the last row claimed there) walks what is newer only. Rows that become ready behind
a floor are found through the eta their NOTIFY carries, or the periodic sweep.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.broker.notifier import Wakeup
from app.db.tenant import tenant_session
from app.jobs import enqueue
from app.store import claim
from app.store.enqueue import insert_for_tenants
from tests.foundation import actors
from tests.foundation.helpers import start, state
from tests.support import TestDB, wait_for

QUEUE = "floors"


def message(priority: int = 0) -> dict[str, Any]:
    return {"queue_name": QUEUE, "actor_name": "floors.noop", "args": [], "kwargs": {},
            "options": {"priority": priority}, "message_id": str(uuid.uuid4()),
            "message_timestamp": 0}


@pytest.fixture
def worker_conn(db: TestDB) -> Iterator[tuple[psycopg.Connection[Any], uuid.UUID]]:
    with psycopg.connect(db.worker_url, autocommit=True) as conn:
        worker = conn.execute(
            "INSERT INTO dramatiq.workers (worker_id, hostname, pid, queues, lease_expires_at)"
            " VALUES (gen_random_uuid(), 'test', 1, %s, now() + interval '1 hour')"
            " RETURNING worker_id", ([QUEUE],)).fetchone()[0]
        yield conn, worker


def add(conn: psycopg.Connection[Any], n: int, priority: int = 0) -> list[str]:
    msgs = [message(priority) for _ in range(n)]
    insert_for_tenants(conn, msgs, [None] * n, [None] * n)
    return [m["message_id"] for m in msgs]


def claim_all(conn: psycopg.Connection[Any], worker: uuid.UUID,
              floors: dict[int, datetime]) -> int:
    """Claim until the queue is empty, keeping floors as the consumer does."""
    total = 0
    while rows := claim.claim(conn, QUEUE, 200, worker, floors or None):
        total += len(rows)
        for row in rows:
            floors[row.priority] = max(floors.get(row.priority, row.eta), row.eta)
    return total


def scan_buffers(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any],
                 cte: str) -> int:
    """Shared buffers the row-finding part (CTE ``cte``) of one claim statement touches (the
    update of the rows it finds costs the same either way); its claims are rolled back."""
    with conn.transaction(force_rollback=True):
        (plan,) = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql,
                               params).fetchone()
    nodes = [(plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if node.get("Subplan Name") == f"CTE {cte}":
            return int(node["Shared Hit Blocks"]) + int(node["Shared Read Blocks"])
        nodes.extend(node.get("Plans", []))
    raise AssertionError(f"no CTE {cte} in the plan")


def test_a_claim_from_floors_skips_what_an_old_snapshot_keeps(
    db: TestDB, worker_conn: tuple[psycopg.Connection[Any], uuid.UUID]
) -> None:
    conn, worker = worker_conn
    floors: dict[int, datetime] = {}
    with db.owner() as holder:
        holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT 1")  # this snapshot pins every row version from now on
        for _ in range(5):  # 5,000 claimed rows, enqueued 100 per transaction
            for _ in range(10):
                add(conn, 100)
            assert claim_all(conn, worker, floors) == 1000
        fresh = set(add(conn, 50))

        params = {"queue": QUEUE, "limit": 200, "worker": worker}
        full = scan_buffers(conn, claim.CLAIM, params, "next")
        lows, highs = claim.gaps([0])
        banded = scan_buffers(conn, claim.CLAIM_FROM, {
            **params, "priorities": [0], "floors": [floors[0]], "gap_lo": lows,
            "gap_hi": highs}, "candidates")
        assert banded * 4 < full, (banded, full)

        got = claim.claim(conn, QUEUE, 200, worker, floors)
        assert {str(r.message_id) for r in got} == fresh
        holder.rollback()


def test_priorities_outside_the_known_bands_come_first(
    worker_conn: tuple[psycopg.Connection[Any], uuid.UUID]
) -> None:
    conn, worker = worker_conn
    floors: dict[int, datetime] = {}
    add(conn, 10)
    claim_all(conn, worker, floors)
    assert list(floors) == [0]
    low, high, middle = add(conn, 3, priority=-5), add(conn, 2, priority=9), add(conn, 2)
    got = claim.claim(conn, QUEUE, 4, worker, floors)  # a new band above, the known one
    assert {str(r.message_id) for r in got} == set(high) | set(middle)
    rest = claim.claim(conn, QUEUE, 10, worker, floors)
    assert {str(r.message_id) for r in rest} == set(low)


def test_the_gaps_cover_every_priority_outside_the_bands() -> None:
    lows, highs = claim.gaps([5, 4, 0])
    assert list(zip(lows, highs, strict=True)) == [(6, 32767), (1, 3), (-32768, -1)]
    assert claim.gaps([32767]) == ([-32768], [32766])


@pytest.mark.parametrize("payload", ["", "{}", "abc", "nan", "inf", "-1", "1e400", "1e30"])
def test_a_wakeup_takes_any_payload_but_a_plausible_eta_as_anywhere(payload: str) -> None:
    # Any role may NOTIFY a queue's channel: nothing it sends raises or raises a floor.
    wakeup = Wakeup()
    wakeup.ring(payload=payload)
    assert wakeup.take_hint() == (True, None)
    assert wakeup.event.is_set()


def test_a_wakeup_keeps_the_oldest_eta_until_taken() -> None:
    wakeup = Wakeup()
    for eta in ("1764600000.5", "1764599999.25", "1764600001"):
        wakeup.ring(payload=eta)
    assert wakeup.take_hint() == (False, 1764599999.25)
    assert wakeup.take_hint() == (False, None)
    wakeup.ring(delayed=True, payload="")  # the delayed side: promotion, not floors
    assert wakeup.take_hint() == (False, None) and wakeup.delayed


@pytest.mark.slow
def test_a_job_committed_behind_the_floor_still_runs(probes: TestDB, tmp_path: Path) -> None:
    """A transaction's rows take its start time as eta: committed late, they are behind
    the rows claimed meanwhile. With floors always on and the sweep out of the picture (a
    minute), only the eta in the NOTIFY gets them claimed."""
    db = probes
    tenant = db.create_tenant()
    start(db, tmp_path, "worker", queues=[actors.QUEUE], threads=2,
          JOBS_CLAIM_SWEEP_SECONDS="60", JOBS_CLAIM_FLOORS_AFTER_MS="0")
    with tenant_session(tenant) as late_session:
        late = enqueue(late_session, actors.work).message_id
        with tenant_session(tenant) as session:
            early = [enqueue(session, actors.work).message_id for _ in range(5)]
        wait_for(lambda: all(state(db, m) == "done" for m in early),
                 message="the jobs committed first to run (the floor passes the late one)")
    wait_for(lambda: state(db, late) == "done", timeout=20,
             message="the job committed behind the floor to run")
