"""Progress is visible while a job runs; results and errors are readable by id, under RLS;
many jobs are awaited at once on one connection."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from app.db.tenant import tenant_session
from app.jobs import enqueue, enqueue_many, get_job, get_result, wait_for_results
from app.jobs.results import JobFailed, JobNotFinished, JobNotFound, JobsTimeout
from tests.lifecycle import actors
from tests.support import TestDB, wait_for


def test_progress_is_visible_while_running_and_the_result_after(
    probes: TestDB, worker: object
) -> None:
    db = probes
    tenant = db.create_tenant()
    gate = f"g-{uuid.uuid4().hex[:8]}"
    with tenant_session(tenant) as session:
        job_id = enqueue(session, actors.progress, gate).message_id

    # Read as the application would: its tenant session, under RLS.
    def reported() -> bool:
        with tenant_session(tenant) as session:
            job = get_job(job_id, db=session)
        return job.status == "active" and job.progress == 40

    wait_for(reported, message="progress 40 while the job runs")
    with tenant_session(tenant) as session:
        job = get_job(job_id, db=session)
        assert job.progress_message == "fetched 2 of 5 pages"
        with pytest.raises(JobNotFinished):
            get_result(job_id, db=session)

    db.query("INSERT INTO lifecycle_gates VALUES (%s) RETURNING 1", (gate,))
    done = wait_for_results([job_id], timeout=20, tenant=tenant)
    assert done[job_id].status == "completed" and done[job_id].progress == 100
    # Returned from a job that used its tenant session: the result committed with it.
    assert done[job_id].result == {"pages": 5, "visible_tenants": 1}
    assert get_result(job_id, tenant=tenant) == {"pages": 5, "visible_tenants": 1}
    # Another tenant cannot read it.
    with pytest.raises(JobNotFound):
        get_job(job_id, tenant=db.create_tenant("other"))


def test_wait_for_many_results_at_once(db: TestDB, worker: object) -> None:
    with psycopg.connect(db.worker_url) as conn:
        ids = [r.message_id for r in enqueue_many(
            conn, actors.square, [((n,), {}) for n in range(300)])]
        failing = enqueue(conn, actors.fails, "for the batch").message_id
    started = time.monotonic()
    done = wait_for_results([*ids, failing], timeout=30, operator=True)
    print(f"\n301 jobs awaited together in {time.monotonic() - started:.2f}s")
    assert {done[i].result["n"] for i in ids} == set(range(300))
    assert all(done[i].result["square"] == done[i].result["n"] ** 2 for i in ids)
    assert done[failing].status == "dead"
    assert "fails on purpose" in (done[failing].last_error or "")
    with pytest.raises(JobFailed, match="fails on purpose"):
        get_result(failing, operator=True)


def test_waiting_times_out_with_what_finished(db: TestDB, broker: object) -> None:
    with psycopg.connect(db.worker_url) as conn:
        job_id = enqueue(conn, actors.noop).message_id  # no worker runs
    db.query("UPDATE dramatiq.queue SET state = 'done', result = '7' RETURNING 1")
    with psycopg.connect(db.worker_url) as conn:
        pending = enqueue(conn, actors.noop).message_id
    with pytest.raises(JobsTimeout) as caught:
        wait_for_results([job_id, pending], timeout=0.3, operator=True)
    assert caught.value.pending == {pending}
    assert caught.value.finished[job_id].result == 7
    with pytest.raises(JobNotFound):
        get_job(uuid.uuid4(), operator=True)


def test_a_result_committed_with_the_jobs_writes_is_stored_verbatim(
    db: TestDB, worker: object
) -> None:
    # Whatever the job returns reaches the database as data, never as SQL: quotes,
    # backslashes, dollar quotes and statement text come back unchanged.
    tenant = db.create_tenant()
    value = {"quote": "it's", "backslash": "C:\\tmp\\", "sql": "'); DROP TABLE tenants; --",
             "dollar": "$$ $x$ ;", "text": "é 漢 \n\t", "nested": [None, 1.5, True, "''"]}
    with tenant_session(tenant) as session:
        job_id = enqueue(session, actors.echo, value).message_id
    done = wait_for_results([job_id], timeout=20, tenant=tenant)
    assert done[job_id].status == "completed"
    assert get_result(job_id, tenant=tenant) == value
    assert db.query("SELECT count(*) FROM tenants WHERE id = %s", (tenant,)) == [(1,)]


def test_a_result_that_is_not_json_dead_letters_only_its_job(
    db: TestDB, worker: object
) -> None:
    with psycopg.connect(db.worker_url) as conn:
        bad = enqueue(conn, actors.not_json).message_id
        good = [r.message_id for r in enqueue_many(
            conn, actors.square, [((n,), {}) for n in range(20)])]
    done = wait_for_results([bad, *good], timeout=20, operator=True)
    assert done[bad].status == "dead"
    assert "PoisonValue: the job's result cannot be stored as JSON" in (done[bad].last_error or "")
    assert all(done[i].status == "completed" for i in good)
