"""``async def`` actors: they await on their worker's event loop, many in flight at once,
with the job's tenant session (``in_session``) committed with their completion.

A slow local HTTP server answers each request after ``DELAY``: jobs that awaited it one at
a time would never overlap there. Failures roll the attempt's writes back and retry; a
time limit cancels the coroutine and frees the worker thread.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from app.db.tenant import tenant_session
from app.fakes.base import Answer, FakeServer, Received
from app.jobs import enqueue, wait_for_results
from tests.foundation import actors
from tests.foundation.helpers import start
from tests.support import TestDB

DELAY = 0.5


class SlowServer(FakeServer):
    name = "slow"

    def answer(self, request: Received) -> Answer:
        time.sleep(DELAY)  # the server's latency, which the jobs await
        return Answer(200, {"title": request.param("title")})


@pytest.fixture
def server() -> Any:
    with SlowServer() as fake:
        yield fake


def _peak_overlap(requests: list[Received]) -> int:
    edges = sorted([(r.started, 1) for r in requests] +
                   [(r.ended or r.started, -1) for r in requests])
    peak = now = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def _titles(db: TestDB, tenant: Any) -> list[str]:
    return sorted(t for (t,) in db.query(
        "SELECT title FROM activity_events WHERE tenant_id = %s AND source = 'async'",
        (tenant,)))


def test_async_actors_overlap_and_commit_as_their_tenant(
    probes: TestDB, server: SlowServer, tmp_path: Path,
) -> None:
    db = probes
    start(db, tmp_path, "async", queues=[actors.QUEUE], threads=4)
    tenants = [db.create_tenant(), db.create_tenant()]
    sent: dict[Any, list[str]] = {}
    for n, tenant in enumerate(tenants):
        with tenant_session(tenant) as session:
            sent[tenant] = [enqueue(session, actors.fetch_and_write, server.url,
                                    f"t{n}-{i}").message_id for i in range(4)]
    for n, tenant in enumerate(tenants):
        done = wait_for_results(sent[tenant], timeout=60, tenant=tenant)
        assert {j.status for j in done.values()} == {"completed"}
        assert {j.result["tenant"] for j in done.values()} == {str(tenant)}
        assert {j.result["tenants_visible"] for j in done.values()} == {1}  # RLS held
        assert sorted(j.result["answer"]["title"] for j in done.values()) == \
            [f"t{n}-{i}" for i in range(4)]
        assert _titles(db, tenant) == [f"t{n}-{i}" for i in range(4)]
    # Four worker threads awaited the server together, not one after the other.
    assert _peak_overlap(server.requests()) >= 2


def test_a_failing_async_actor_rolls_back_retries_and_dead_letters(
    probes: TestDB, server: SlowServer, tmp_path: Path,
) -> None:
    db = probes
    start(db, tmp_path, "async", queues=[actors.QUEUE], threads=2)
    tenant = db.create_tenant()
    with tenant_session(tenant) as session:
        failing = enqueue(session, actors.fetch_then_fail, server.url, "doomed").message_id
        overrun = enqueue(session, actors.async_overruns, 30).message_id
        direct = enqueue(session, actors.async_direct_session).message_id
    done = wait_for_results([failing, overrun, direct], timeout=60, tenant=tenant)
    assert done[failing].status == "dead" and done[failing].attempts == 2
    assert done[failing].last_error == "RuntimeError: failed after fetching doomed"
    assert len(server.requests()) == 2  # both attempts ran
    assert _titles(db, tenant) == []  # and neither attempt's write committed
    # The time limit cancelled the coroutine long before its 30 s: the thread is free.
    assert done[overrun].status == "dead"
    assert "TimeLimitExceeded" in (done[overrun].last_error or "")
    # current_session() as in a plain actor: a connection per thread, so it opens on the loop.
    assert done[direct].status == "completed" and done[direct].result == str(tenant)
    with tenant_session(tenant) as session:
        after = enqueue(session, actors.fetch_and_write, server.url, "after").message_id
    assert wait_for_results([after], timeout=30, tenant=tenant)[after].status == "completed"


def test_more_async_jobs_than_connections_all_finish(
    probes: TestDB, server: SlowServer, tmp_path: Path,
) -> None:
    """8 jobs in flight, 2 actor connections, each job holding its connection across an
    await: the jobs waiting for a connection must not take the threads the holders need."""
    db = probes
    start(db, tmp_path, "async", queues=[actors.QUEUE], threads=8,
          JOBS_WORKER_POOL_SIZE="4", JOBS_POOL_TIMEOUT="60")  # 4 - the broker's 2
    tenant = db.create_tenant()
    with tenant_session(tenant) as session:
        ids = [enqueue(session, actors.fetch_twice, server.url, f"j{i}").message_id
               for i in range(8)]
        direct = enqueue(session, actors.async_direct_session).message_id
    done = wait_for_results(ids, timeout=50, tenant=tenant)
    assert {j.status for j in done.values()} == {"completed"}
    assert _titles(db, tenant) == sorted(f"j{i}-{x}" for i in range(8) for x in "ab")
    # Fewer connections than threads: opening the session on the loop could wait for good,
    # so it is refused at once, saying what to do instead.
    refused = wait_for_results([direct], timeout=30, tenant=tenant)[direct]
    assert refused.status == "dead" and "SessionNeedsThread" in (refused.last_error or "")
    assert "await in_session" in (refused.last_error or "")
