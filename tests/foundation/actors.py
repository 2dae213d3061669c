"""Test actors for the foundation tests (queue ``foundation``), also run by real workers.

``dramatiq tests.foundation.actors`` loads them together with the application's actors:
the broker is configured first, as ``app.actors`` does, so every actor binds to it.
Runs are recorded on a connection of their own (committed at once, whatever the job's
transaction does), so a test sees attempts that failed or whose worker was killed.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import dramatiq
import httpx
import psycopg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.jobs.setup import configure

broker = configure()

import app.actors  # noqa: E402, F401  (the application's actors share the worker)
from app.jobs import (  # noqa: E402
    current_job,
    current_session,
    current_tenant,
    in_session,
    job,
)

QUEUE = "foundation"

RUNS_DDL = """
CREATE TABLE foundation_runs (
    message_id uuid NOT NULL,
    actor_name text NOT NULL,
    attempt integer NOT NULL,
    pid integer NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE foundation_marks (
    message_id uuid NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
GRANT SELECT, INSERT ON foundation_runs, foundation_marks TO app_worker, app_actor;
"""

_RECORD_RUN = (
    "INSERT INTO foundation_runs (message_id, actor_name, attempt, pid) VALUES (%s, %s, %s, %s)"
)
_MARK = text("INSERT INTO foundation_marks (message_id) VALUES (:id)")


def record_run() -> None:
    """Note this attempt's start, committed at once on a connection of its own."""
    ctx = current_job()
    assert ctx is not None
    message = ctx.message
    url = dramatiq.get_broker().url  # type: ignore[attr-defined]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_RECORD_RUN, (message.message_id, message.actor_name, message.attempt,
                                   os.getpid()))


@job(actor_name="foundation.work", queue_name=QUEUE)
def work(seconds: float = 0.0, first_attempt_only: bool = False) -> None:
    """Take ``seconds``, then leave a mark that commits with the job's completion."""
    record_run()
    ctx = current_job()
    assert ctx is not None
    if seconds and (not first_attempt_only or ctx.message.attempt == 1):
        time.sleep(seconds)  # the job's own work, not a wait on the test
    current_session().execute(_MARK, {"id": uuid.UUID(ctx.message.message_id)})


@job(actor_name="foundation.pause", queue_name=QUEUE)
def pause(seconds: float) -> None:
    """Take ``seconds`` without touching the job's session (its completion is grouped)."""
    time.sleep(seconds)  # the job's own work, not a wait on the test


_FETCHED = text("INSERT INTO activity_events (tenant_id, event_type, title, source) "
                "VALUES (:tenant, 'fetched', :title, 'async')")


def _write_fetched(session: Any, title: str) -> int:
    """Write one row as the job's tenant; how many tenants' rows this session can see."""
    session.execute(_FETCHED, {"tenant": str(current_tenant()), "title": title})
    return int(session.execute(text("SELECT count(DISTINCT tenant_id) FROM activity_events"))
               .scalar_one())


@job(actor_name="foundation.fetch_and_write", queue_name=QUEUE)
async def fetch_and_write(url: str, title: str) -> dict[str, Any]:
    """An ``async def`` actor: await an HTTP call, then write through the job's session."""
    async with httpx.AsyncClient(timeout=10) as client:
        answer = (await client.get(url, params={"title": title})).json()
    visible = await in_session(_write_fetched, title)
    return {"tenant": str(current_tenant()), "answer": answer, "tenants_visible": visible}


@job(actor_name="foundation.fetch_then_fail", queue_name=QUEUE, max_attempts=2,
     min_backoff=100)
async def fetch_then_fail(url: str, title: str) -> None:
    """Writes, then fails: each attempt's write is rolled back with it."""
    async with httpx.AsyncClient(timeout=10) as client:
        await client.get(url, params={"title": title})
    await in_session(_write_fetched, title)
    raise RuntimeError(f"failed after fetching {title}")


@job(actor_name="foundation.fetch_twice", queue_name=QUEUE)
async def fetch_twice(url: str, title: str) -> None:
    """Two statements on its session with an await between them (the connection is held)."""
    await in_session(_write_fetched, f"{title}-a")
    async with httpx.AsyncClient(timeout=10) as client:
        await client.get(url, params={"title": title})
    await in_session(_write_fetched, f"{title}-b")


@job(actor_name="foundation.async_direct_session", queue_name=QUEUE, max_attempts=1)
async def async_direct_session() -> str:
    """Opens its session on the event loop, as a plain actor would: the tenant it sees."""
    await asyncio.sleep(0.01)
    return str(current_session().execute(text("SELECT pgjobs.current_tenant()")).scalar())


@job(actor_name="foundation.async_overruns", queue_name=QUEUE, max_attempts=1,
     time_limit=300)
async def async_overruns(seconds: float) -> None:
    """Awaits longer than its time limit allows."""
    await asyncio.sleep(seconds)


@job(actor_name="foundation.always_fails", queue_name=QUEUE, max_attempts=3, min_backoff=200)
def always_fails(reason: str) -> None:
    record_run()
    raise RuntimeError(f"always fails: {reason}")


def _refused(session: Any, statement: str, params: dict[str, Any]) -> str | None:
    """Run ``statement`` in a savepoint; the SQLSTATE it failed with, or None."""
    try:
        with session.begin_nested():
            session.execute(text(statement), params)
    except DBAPIError as exc:
        return getattr(exc.orig, "sqlstate", None) or str(exc.orig)
    return None


@job(actor_name="foundation.tenant_probe", queue_name=QUEUE)
def tenant_probe(other_tenant: str) -> dict[str, Any]:
    """Report what a job of one tenant can see and do to another tenant's rows."""
    session = current_session()
    tenant = current_tenant()
    seen = sorted({str(t) for (t,) in session.execute(
        text("SELECT tenant_id FROM activity_events"))})
    webhooks_seen = sorted({str(t) for (t,) in session.execute(
        text("SELECT tenant_id FROM webhook_events"))})
    other = {"other": other_tenant}
    return {
        "tenant": str(tenant),
        "activity_tenants": seen,
        "webhook_tenants": webhooks_seen,
        "other_by_id": session.execute(
            text("SELECT count(*) FROM activity_events WHERE tenant_id = :other"), other
        ).scalar(),
        "insert_other": _refused(session, (
            "INSERT INTO activity_events (tenant_id, event_type, title, source) "
            "VALUES (:other, 'probe', 'written by another tenant', 'probe')"), other),
        "insert_own": _refused(session, (
            "INSERT INTO activity_events (tenant_id, event_type, title, source) "
            "VALUES (:own, 'probe', 'written by its own tenant', 'probe')"),
            {"own": str(tenant)}),
        "updated_other": session.execute(
            text("UPDATE activity_events SET title = 'hijacked' WHERE tenant_id = :other"),
            other).rowcount,  # type: ignore[attr-defined]
        "deleted_other": session.execute(
            text("DELETE FROM activity_events WHERE tenant_id = :other"),
            other).rowcount,  # type: ignore[attr-defined]
        "moved_own_to_other": _refused(session, (
            "UPDATE activity_events SET tenant_id = :other WHERE tenant_id = :own"),
            {"other": other_tenant, "own": str(tenant)}),
    }


@job(actor_name="foundation.durability", queue_name=QUEUE)
def durability() -> str:
    """What the job's own transaction commits with (``SHOW synchronous_commit``)."""
    return str(current_session().execute(text("SHOW synchronous_commit")).scalar_one())
