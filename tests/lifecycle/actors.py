"""Test actors of the lifecycle tests (queues ``lifecycle*``), also run by real workers.

``dramatiq tests.lifecycle.actors`` loads them with the application's actors; the broker is
configured first, as ``app.actors`` does. Starts are recorded on a connection of their own
(committed at once), so a test sees the order jobs started in and attempts that died.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import dramatiq
import psycopg
from sqlalchemy import text

from app.jobs.setup import configure

broker = configure()

import app.actors  # noqa: E402, F401  (the application's actors share the worker)
from app.jobs import current_job, current_session, job, report_progress  # noqa: E402
from app.jobs.policies import QUEUES, QueuePolicy  # noqa: E402

QUEUE = "lifecycle"
#: Retention tests lower this queue's limits (the policy is looked up at prune time).
RETENTION_QUEUE = "lifecycle_retention"
QUEUES.setdefault(RETENTION_QUEUE, QueuePolicy(max_attempts=1))

DDL = """
CREATE TABLE lifecycle_runs (
    seq bigserial PRIMARY KEY,
    message_id uuid NOT NULL,
    label text,
    attempt integer NOT NULL,
    pid integer NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE lifecycle_gates (name text PRIMARY KEY);
GRANT SELECT, INSERT ON lifecycle_runs, lifecycle_gates TO app_worker, app_actor;
GRANT USAGE ON SEQUENCE lifecycle_runs_seq_seq TO app_worker, app_actor;
"""


def _conn() -> psycopg.Connection:
    return psycopg.connect(dramatiq.get_broker().url, autocommit=True)  # type: ignore[attr-defined]


def record_run(label: str | None = None) -> int:
    """Note this attempt's start, committed at once; returns the attempt number."""
    ctx = current_job()
    assert ctx is not None
    message = ctx.message
    with _conn() as conn:
        conn.execute(
            "INSERT INTO lifecycle_runs (message_id, label, attempt, pid) VALUES (%s, %s, %s, %s)",
            (message.message_id, label, message.attempt, os.getpid()),
        )
    return message.attempt


def wait_gate(name: str, timeout: float = 30.0) -> None:
    """Block until the test opens gate ``name`` (a row in lifecycle_gates)."""
    deadline = time.monotonic() + timeout
    with _conn() as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT 1 FROM lifecycle_gates WHERE name = %s", (name,)).fetchone():
                return
            time.sleep(0.02)
    raise TimeoutError(f"gate {name!r} never opened")


@job(actor_name="lifecycle.noop", queue_name=QUEUE, tenant_free=True)
def noop(*args: Any) -> None:
    pass


@job(actor_name="lifecycle.ordered", queue_name=QUEUE, tenant_free=True)
def ordered(label: str) -> None:
    record_run(label)


@job(actor_name="lifecycle.urgent", queue_name=QUEUE, tenant_free=True, priority=5)
def urgent(label: str) -> None:
    record_run(label)


@job(actor_name="lifecycle.unique", queue_name=QUEUE, unique_window=1.0)
def unique(gate: str | None = None) -> str:
    if gate:
        wait_gate(gate)
    return "ran"


@job(actor_name="lifecycle.sleepy", queue_name=QUEUE, tenant_free=True)
def sleepy(seconds: float, first_attempt_only: bool = False) -> str:
    """The job's own work takes ``seconds`` (the test waits on its completion, not a sleep)."""
    attempt = record_run("sleepy")
    if not first_attempt_only or attempt == 1:
        time.sleep(seconds)
    return f"slept on attempt {attempt}"


@job(actor_name="lifecycle.suicide", queue_name=QUEUE, tenant_free=True, max_attempts=2)
def suicide() -> None:
    """Kills its own worker process on every attempt."""
    record_run("suicide")
    os.kill(os.getpid(), signal.SIGKILL)


@job(actor_name="lifecycle.progress", queue_name=QUEUE)
def progress(gate: str) -> dict[str, Any]:
    report_progress(40, "fetched 2 of 5 pages")
    wait_gate(gate)
    report_progress(100)
    # Uses the tenant session: the result commits with the job's transaction.
    tenants = current_session().execute(text("SELECT count(*) FROM tenants")).scalar()
    return {"pages": 5, "visible_tenants": tenants}


@job(actor_name="lifecycle.echo", queue_name=QUEUE)
def echo(value: Any) -> Any:
    """Returns ``value`` after a statement in its tenant session: the result then travels
    in the completion that commits with the job's transaction."""
    current_session().execute(text("SELECT 1"))
    return value


@job(actor_name="lifecycle.square", queue_name=QUEUE, tenant_free=True)
def square(n: int) -> dict[str, int]:
    return {"n": n, "square": n * n}


@job(actor_name="lifecycle.fails", queue_name=QUEUE, tenant_free=True, max_attempts=2,
     min_backoff=10, max_backoff=10)
def fails(reason: str) -> None:
    raise RuntimeError(f"fails on purpose: {reason}")


@job(actor_name="lifecycle.not_json", queue_name=QUEUE, tenant_free=True, max_attempts=1)
def not_json() -> object:
    return {1, 2, 3}


@job(actor_name="lifecycle.retained", queue_name=RETENTION_QUEUE, tenant_free=True)
def retained(n: int, fail: bool = False) -> None:
    if fail:
        raise RuntimeError(f"failed job {n}")


def note_failure(session: Any, attempt: Any) -> None:
    """``on_failure`` hook: a durable trace of the failed attempt, in the job's tenant."""
    session.execute(text(
        "INSERT INTO activity_events (tenant_id, event_type, title, description, source) "
        "VALUES (pgjobs.current_tenant(), 'job.failed', :title, :error, 'lifecycle')"),
        {"title": f"attempt {attempt.attempt} final={attempt.final}", "error": attempt.error})


@job(actor_name="lifecycle.fails_with_trace", queue_name=QUEUE, max_attempts=2, min_backoff=10,
     max_backoff=10, on_failure=note_failure)
def fails_with_trace(value: str) -> None:
    from app.jobs.context import separate_session

    with separate_session() as early:  # committed at once, whatever the job does next
        early.execute(text(
            "INSERT INTO activity_events (tenant_id, event_type, title, source) "
            "VALUES (pgjobs.current_tenant(), 'job.started', 'recorded before', 'lifecycle')"))
    current_session().execute(text(
        "INSERT INTO activity_events (tenant_id, event_type, title, source) "
        "VALUES (pgjobs.current_tenant(), 'job.work', 'rolled back', 'lifecycle')"))
    raise ValueError(f"bad input {value}")
