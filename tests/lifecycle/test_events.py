"""Lifecycle events: the LISTEN channel (ids only, at commit), one log line per event, and
Prometheus metrics per process on ports that never clash."""

from __future__ import annotations

import json
import logging
import socket
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from app.db.tenant import tenant_session
from app.jobs import cancel, enqueue, wait_for_results
from app.jobs.events import EVENTS_CHANNEL
from app.jobs.metrics import REGISTRY
from tests.lifecycle import actors
from tests.support import TestDB, wait_for


def listener(db: TestDB) -> psycopg.Connection:
    conn = psycopg.connect(db.app_url, autocommit=True)  # any role may listen: ids only
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(EVENTS_CHANNEL)))
    return conn


def heard(conn: psycopg.Connection, message_id: str, until: str) -> list[dict[str, str]]:
    """The events of one job, in order, until ``until``; each payload carries ids only."""
    events: list[dict[str, str]] = []
    for notify in conn.notifies(timeout=20):
        payload = json.loads(notify.payload)
        # Ids only: no tenant, arguments or results travel where RLS does not apply.
        assert set(payload) == {"event", "queue", "ids"}, payload
        if message_id in payload["ids"]:
            events.append({"event": payload["event"], "message_id": message_id,
                           "queue": payload["queue"]})
            if payload["event"] == until:
                break
    return events


def test_channel_logs_and_counters_for_a_job_that_succeeds_and_one_that_dies(
    probes: TestDB, worker: object, caplog: pytest.LogCaptureFixture
) -> None:
    db = probes
    caplog.set_level(logging.DEBUG, logger="pgjobs.events")  # happy path: DEBUG by default
    tenant = db.create_tenant()
    gate = f"g-{uuid.uuid4().hex[:8]}"
    before = REGISTRY.get_sample_value(
        "pgjobs_events_total",
        {"queue": actors.QUEUE, "actor": "lifecycle.fails", "event": "dead"}) or 0
    with listener(db) as conn:
        with tenant_session(tenant) as session:
            ok = enqueue(session, actors.progress, gate).message_id
        db.query("INSERT INTO lifecycle_gates VALUES (%s) RETURNING 1", (gate,))
        events = heard(conn, ok, until="completed")
        assert [e["event"] for e in events] == [
            "enqueued", "active", "progress", "progress", "completed"]
        assert {e["queue"] for e in events} == {actors.QUEUE}

        with psycopg.connect(db.worker_url) as wconn:
            bad = enqueue(wconn, actors.fails, "on purpose").message_id
        assert [e["event"] for e in heard(conn, bad, until="dead")] == [
            "enqueued", "active", "retrying", "active", "dead"]

    lines = [r.getMessage() for r in caplog.records if r.name == "pgjobs.events"]
    mine = [line for line in lines if f"message_id={ok} " in line]
    assert [line.split()[0] for line in mine] == [
        "event=enqueued", "event=active", "event=progress", "event=progress", "event=completed"]
    assert f"actor=lifecycle.progress queue=lifecycle tenant={tenant} attempt=1" in mine[-1]
    assert "duration=" in mine[-1]
    theirs = [line.split()[0] for line in lines if f"message_id={bad} " in line]
    # Each failed attempt logs 'failed' once, then what happens next: no double logging.
    assert theirs == ["event=enqueued", "event=active", "event=failed", "event=retrying",
                      "event=active", "event=failed", "event=dead"]
    dead_line = next(line for line in lines if line.startswith(f"event=dead message_id={bad}"))
    assert "attempt=2" in dead_line and "fails on purpose" in dead_line
    after = REGISTRY.get_sample_value(
        "pgjobs_events_total",
        {"queue": actors.QUEUE, "actor": "lifecycle.fails", "event": "dead"})
    assert after == before + 1
    assert REGISTRY.get_sample_value(
        "pgjobs_job_duration_seconds_count",
        {"queue": actors.QUEUE, "actor": "lifecycle.progress", "outcome": "completed"})


def test_cancelled_events_from_application_code(db: TestDB, broker: object) -> None:
    tenant = db.create_tenant()
    with tenant_session(tenant) as session:
        job_id = enqueue(session, actors.progress, "never", delay=3600).message_id
    with listener(db) as conn:
        with tenant_session(tenant) as session:
            assert cancel(session, job_id)
        assert heard(conn, job_id, until="cancelled") == [
            {"event": "cancelled", "message_id": job_id, "queue": actors.QUEUE}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def test_each_worker_process_serves_metrics_on_its_own_port(
    probes: TestDB, tmp_path: Path
) -> None:
    db = probes
    base = free_port()
    with socket.socket() as taken:  # base + 1 is busy: that process must pick another port
        taken.bind(("0.0.0.0", base + 1))
        taken.listen()
        db.start_worker("tests.lifecycle.actors", processes=2, threads=1, queues=[actors.QUEUE],
                        log=tmp_path / "w.log", JOBS_METRICS_PORT=str(base))
        ports = wait_for(
            lambda: sorted(p for (p,) in db.query("SELECT metrics_port FROM dramatiq.workers"))
            if db.scalar("SELECT count(metrics_port) FROM dramatiq.workers") == 2 else None,
            timeout=30, message="both worker processes to record their metrics port")
    assert base in ports and base + 1 not in ports and len(set(ports)) == 2
    with psycopg.connect(db.worker_url) as conn:
        ids = [enqueue(conn, actors.square, n).message_id for n in range(6)]
    wait_for_results(ids, timeout=20, operator=True)
    texts = [scrape(p) for p in ports]
    total = 0.0
    for text in texts:
        for line in text.splitlines():
            if line.startswith('pgjobs_events_total{actor="lifecycle.square",event="completed"'):
                total += float(line.rsplit(" ", 1)[1])
    assert total == 6  # every completion counted once, in the process that ran it
