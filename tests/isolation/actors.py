"""A hostile tenant's actors: every attack actor code of tenant A can make on tenant B.

``isolation.attack`` runs as a job of tenant A and tries, on its own ``current_session()``
(raw SQL, each attempt in a savepoint so one refusal does not end the others) and through
the public API, to read, change, create or run jobs and rows of tenant B. It returns what
each attempt got: rows seen, or the error that refused it. ``isolation.mark`` records the
tenant it really ran as, so a test can prove that nothing ever ran as B by mistake.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.jobs import (
    EnqueueRefused,
    JobNotFound,
    cancel_many,
    current_session,
    current_tenant,
    declare_queue,
    enqueue,
    fan_out,
    get_job,
    job,
    reschedule,
    retry_dead,
)

QUEUE = "isolation"

DDL = """
CREATE TABLE isolation_runs (
    message_id uuid NOT NULL,
    tenant_id_seen uuid,
    label text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE isolation_gates (name text PRIMARY KEY);
GRANT SELECT, INSERT ON isolation_runs TO app_actor, app_worker;
GRANT SELECT ON isolation_gates TO app_worker;
"""

LIMITED = "isolation_limited"
declare_queue(LIMITED, rate_limit=(3, 30.0), concurrency=1)


@job(actor_name="isolation.mark", queue_name=QUEUE)
def mark(label: str) -> str:
    """Record which tenant this job really runs as (its context, from the database)."""
    from app.jobs import current_job

    ctx = current_job()
    assert ctx is not None
    current_session().execute(
        text("INSERT INTO isolation_runs (message_id, tenant_id_seen, label) "
             "VALUES (:id, pgjobs.current_tenant(), :label)"),
        {"id": ctx.message.message_id, "label": label})
    return str(current_tenant())


@job(actor_name="isolation.system_mark", queue_name=QUEUE, tenant_free=True)
def system_mark(label: str) -> None:
    """A system job: only fan_out() reaches tenants from here."""


def wait_gate(name: str, timeout: float = 60.0) -> None:
    """Block until the test opens gate ``name`` (test plumbing, on the broker's role)."""
    import time

    import dramatiq
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(dramatiq.get_broker().url, autocommit=True) as conn:  # type: ignore[attr-defined]
        while time.monotonic() < deadline:
            if conn.execute("SELECT 1 FROM isolation_gates WHERE name = %s", (name,)).fetchone():
                return
            time.sleep(0.02)
    raise TimeoutError(f"gate {name!r} never opened")


@job(actor_name="isolation.limited", queue_name=LIMITED)
def limited(label: str, gate: str | None = None) -> None:
    """A job of a limited queue (rate 3 per 30 s, one at a time per key)."""
    mark.fn(label)
    if gate:
        wait_gate(gate)


def _try(session: Any, statement: str, params: dict[str, Any] | None = None) -> Any:
    """Rows an attempt returned (as a list), or the SQLSTATE that refused it."""
    try:
        with session.begin_nested():
            result = session.execute(text(statement), params or {})
            if result.returns_rows:
                return [list(map(_plain, row)) for row in result]
            return {"rowcount": result.rowcount}
    except DBAPIError as exc:
        return {"refused": getattr(exc.orig, "sqlstate", None) or type(exc.orig).__name__}


def _forged(session: Any, b: str) -> dict[str, Any]:
    """Set ``app.tenant_id`` to B by hand, then read and write as if it were B's."""
    nested = session.begin_nested()
    try:
        session.execute(text("SELECT set_config('app.tenant_id', :b, true)"), {"b": b})
        seen = {
            "current_tenant": session.execute(text("SELECT pgjobs.current_tenant()")).scalar(),
            "b_jobs": session.execute(text(
                "SELECT count(*) FROM dramatiq.queue WHERE tenant_id = :b"), {"b": b}).scalar(),
            "activity": session.execute(text("SELECT count(*) FROM activity_events")).scalar(),
            "tenants": session.execute(text("SELECT count(*) FROM tenants")).scalar(),
        }
        seen["insert_as_b"] = _try(session, (
            "INSERT INTO activity_events (tenant_id, event_type, title, source) "
            "VALUES (:b, 'attack', 'written with a forged context', 'attack')"), {"b": b})
        seen["enqueue_as_b"] = _api(lambda: enqueue(session, mark, "forged-context").message_id)
        return {k: _plain(v) for k, v in seen.items()}
    finally:
        nested.rollback()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value if isinstance(value, int | float | str | bool | type(None)) else str(value)


def _api(call: Any) -> Any:
    try:
        return {"ok": _plain(call())}
    except (EnqueueRefused, JobNotFound, LookupError, ValueError, TypeError) as exc:
        return {"refused": type(exc).__name__, "message": str(exc)[:300]}
    except DBAPIError as exc:
        return {"refused": getattr(exc.orig, "sqlstate", None) or type(exc.orig).__name__}


@job(actor_name="isolation.attack", queue_name=QUEUE, max_attempts=1)
def attack(victim: dict[str, Any]) -> dict[str, Any]:
    """Everything tenant A's code can try against tenant B (``victim``'s ids)."""
    s = current_session()
    b = victim["tenant"]
    jobs = victim["jobs"]  # B's job ids: waiting, dead, completed, running
    ids = list(jobs.values())
    forged = json.dumps({
        "queue_name": QUEUE, "actor_name": "isolation.mark", "args": ["forged"],
        "kwargs": {}, "options": {"tenant_id": b}, "message_id": str(uuid.uuid4()),
        "message_timestamp": 0,
    })
    report: dict[str, Any] = {"tenant": str(current_tenant())}
    # -- reads: every table and view with tenant rows -------------------------------------
    report["reads"] = {
        name: _try(s, sql, {"b": b, "ids": ids}) for name, sql in {
            "queue": "SELECT tenant_id FROM dramatiq.queue "
                     "WHERE tenant_id IS DISTINCT FROM pgjobs.current_tenant()",
            "queue_by_id": "SELECT message_id, message, result, progress, last_error "
                           "FROM dramatiq.queue WHERE message_id = ANY(CAST(:ids AS uuid[]))",
            "jobs_view": "SELECT message_id, args FROM jobs.jobs WHERE tenant_id = :b",
            "by_tenant": "SELECT tenant_id FROM jobs.by_tenant WHERE tenant_id = :b",
            "failed": "SELECT message_id FROM jobs.failed WHERE tenant_id = :b",
            "recent": "SELECT message_id, result FROM jobs.recent WHERE tenant_id = :b",
            "active": "SELECT message_id FROM jobs.active WHERE tenant_id = :b",
            "scheduled": "SELECT message_id FROM jobs.scheduled WHERE tenant_id = :b",
            "queue_stats": "SELECT CAST(sum(waiting + delayed + active + completed + dead) "
                           "AS integer) FROM jobs.queue_stats",
            "tenants": "SELECT id FROM tenants WHERE id <> pgjobs.current_tenant()",
            "overrides": "SELECT tenant_id FROM scheduler.tenant_overrides WHERE tenant_id = :b",
            "activity": "SELECT id FROM activity_events WHERE tenant_id = :b",
            "webhooks": "SELECT id FROM webhook_events WHERE tenant_id = :b",
            "users": "SELECT id FROM users WHERE tenant_id = :b",
        }.items()
    }
    # -- writes on the job table, and the database's own functions ------------------------
    report["writes"] = {
        name: _try(s, sql, {"b": b, "ids": ids, "forged": forged}) for name, sql in {
            "update": "UPDATE dramatiq.queue SET last_error = 'x' WHERE tenant_id = :b",
            "delete": "DELETE FROM dramatiq.queue WHERE tenant_id = :b",
            "insert_for_b": "INSERT INTO dramatiq.queue (message_id, queue_name, state, "
                            "message, tenant_id) VALUES (gen_random_uuid(), 'isolation', "
                            "'queued', '{}', :b)",
            "insert_running_own": "INSERT INTO dramatiq.queue (message_id, queue_name, state, "
                                  "message, tenant_id, limit_key) VALUES (gen_random_uuid(), "
                                  "'isolation', 'consumed', '{}', pgjobs.current_tenant(), :b)",
            "enqueue_with_tenant_option": "SELECT * FROM pgjobs.enqueue("
                                          "ARRAY[CAST(:forged AS jsonb)], ARRAY[NULL::float8])",
            "enqueue_for_tenants": "SELECT * FROM pgjobs.enqueue_for_tenants("
                                   "ARRAY[CAST(:forged AS jsonb)], ARRAY[NULL::float8], "
                                   "ARRAY[CAST(:b AS uuid)])",
            "fan_out": "SELECT * FROM pgjobs.fan_out(ARRAY[CAST(:forged AS jsonb)], "
                       "ARRAY[NULL::float8], ARRAY[CAST(:b AS uuid)])",
            "lease_token": "SELECT pgjobs.lease_token(CAST(:b AS uuid), 1, NULL)",
            "keys": "SELECT * FROM pgjobs.keys",
            "enter_b_job": "SELECT * FROM pgjobs.enter_job(CAST(:b AS uuid), 'guess')",
            "complete_b_job": "SELECT pgjobs.complete_job(CAST(:b AS uuid), 'guess', NULL)",
            "complete_b_job_started": "SELECT pgjobs.complete_job(CAST(:b AS uuid), 'guess', "
                                      "NULL, now() - interval '1 day')",
            "started_between": "SELECT pgjobs.started_between(now(), now())",
            "cancel_b_jobs": "SELECT * FROM pgjobs.cancel_jobs(CAST(:ids AS uuid[]))",
            "retry_b_jobs": "SELECT * FROM pgjobs.retry_jobs(CAST(:ids AS uuid[]))",
            "internal_cancel": "SELECT * FROM pgjobs._cancel(CAST(:ids AS uuid[]), 'x', NULL)",
            "internal_rerun": "SELECT * FROM pgjobs._rerun(CAST(:ids AS uuid[]), "
                              "ARRAY['dead', 'done'], NULL)",
            "activity_for_b": "INSERT INTO activity_events (tenant_id, event_type, title, source) "
                              "VALUES (:b, 'attack', 'written for b', 'attack')",
            "activity_own": "INSERT INTO activity_events (tenant_id, event_type, title, source) "
                            "VALUES (pgjobs.current_tenant(), 'attack', 'mine', 'attack')",
            "move_own_to_b": "UPDATE activity_events SET tenant_id = :b",
            "tenants_update": "UPDATE tenants SET name = 'hijacked' WHERE id = :b",
        }.items()
    }
    # -- choosing another tenant: a forged setting is no tenant at all (done last: it breaks
    # this transaction's context until the savepoint is rolled back) ----------------------
    report["forged_context"] = _forged(s, b)
    # -- the public API -------------------------------------------------------------------
    report["api"] = {
        "send_with_tenant_option": _api(lambda: mark.send_with_options(
            args=("sent-with-option",), tenant_id=b)),
        "enqueue_is_bound_to_us": _api(lambda: enqueue(s, mark, "enqueued-by-attacker")
                                       .message_id),
        "send_is_bound_to_us": _api(lambda: mark.send("sent-by-attacker").message_id),
        "fan_out_from_a_tenant_job": _api(lambda: fan_out(mark, [b], "fanned-out")),
        "system_job_from_a_tenant_job": _api(lambda: system_mark.send("system").message_id),
        "get_b_job": _api(lambda: get_job(jobs["completed"]).status),
        "cancel_b_jobs": _api(lambda: cancel_many(s, ids)),
        "reschedule_b_job": _api(lambda: reschedule(s, jobs["waiting"], delay=0)),
        "retry_b_dead": _api(lambda: retry_dead(s, [jobs["dead"]])),
    }
    return report


POISON = "isolation_poison"


@job(actor_name="isolation.poison", queue_name=POISON, max_attempts=5, tenant_free=True)
def poison(kind: str) -> Any:
    """Returns (or reports) a value PostgreSQL refuses to store."""
    if kind == "nan":
        return {"score": float("nan")}
    if kind == "nul":
        return "before\x00after"
    if kind == "set":
        return {1, 2}
    if kind == "progress":
        from app.jobs import report_progress

        report_progress(50, "half\x00way")
    if kind == "session_nan":  # the completion would commit with the job's writes
        current_session().execute(text("SELECT 1"))
        return float("inf")
    return None


@job(actor_name="isolation.fine", queue_name=POISON, tenant_free=True)
def fine(n: int) -> dict[str, int]:
    return {"n": n}


@job(actor_name="isolation.slow", queue_name=POISON, tenant_free=True, max_attempts=1)
def slow(seconds: float) -> float:
    """The job's own work takes ``seconds`` (the lease tests run jobs longer than a lease)."""
    import time

    time.sleep(seconds)
    return seconds


#: Twenty queues, one actor each, every job using its tenant session (an actor connection).
MANY_QUEUES = [f"isolation_q{n:02d}" for n in range(20)]


def _session_job(n: int) -> Any:
    def touch(value: int) -> int:
        current_session().execute(text("SELECT 1"))
        return value

    return job(actor_name=f"isolation.q{n:02d}", queue_name=MANY_QUEUES[n])(touch)


SESSION_JOBS = [_session_job(n) for n in range(len(MANY_QUEUES))]


# -- session state left on a pooled connection (tests/isolation/test_session_state.py) --

SHADOW = """CREATE TEMP TABLE activity_events (
    tenant_id uuid, event_type text, title text, source text, created_at timestamptz)"""


@job(actor_name="isolation.leave_state", queue_name=QUEUE)
def leave_state() -> int:
    """Everything a session can leave for the next job on its connection: a temporary table
    shadowing a tenant table, a session search_path putting it first, a held advisory lock."""
    session = current_session()
    session.execute(text(SHADOW))
    session.execute(text("SELECT set_config('search_path', 'pg_temp, public', false)"))
    session.execute(text("SELECT pg_advisory_lock(4242)"))
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


@job(actor_name="isolation.note", queue_name=QUEUE)
def note(label: str) -> dict[str, Any]:
    """Write one event the plain way, and say what this session found."""
    session = current_session()
    session.execute(text(
        "INSERT INTO activity_events (tenant_id, event_type, title, source) VALUES "
        "(current_setting('app.tenant_id')::uuid, 'isolation', :label, 'seed')"),
        {"label": label})
    held = session.execute(text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
        "AND pid = pg_backend_pid()")).scalar_one()
    return {
        "pid": int(session.execute(text("SELECT pg_backend_pid()")).scalar_one()),
        "advisory_locks_held": int(held),
        "search_path": session.execute(text("SHOW search_path")).scalar_one(),
        "labels_seen": sorted(session.execute(text(
            "SELECT title FROM activity_events WHERE event_type = 'isolation'")).scalars()),
    }
