"""Read jobs by id: status, progress, result, error; wait for many jobs at once.

Reads by id are tenant reads: they go through Row-Level Security for the caller's tenant,
so a job id of another tenant is simply not found. Pass the transaction to read in
(``db=``: a tenant session, or ``current_session()`` in a job), or ``tenant=`` (application
code naming its tenant, as ``tenant_session`` does); inside a job or a ``tenant_session``
block the tenant is that one. Operators read any job explicitly with ``operator=True``
(the owner's connection).

``wait_for_results(ids, timeout)`` uses one connection that LISTENs on ``pgjobs.events``
and runs one query per wake-up for all the ids still awaited (a safety-net poll covers a
missed notification), instead of a blocking connection per id. LISTEN needs a session of its
own: behind a transaction pooler that connection uses the role's direct URL
(``APP_DIRECT_URL``, ``DATABASE_DIRECT_URL``), and fails at once without one. One-off reads
set the tenant for their transaction only, so they work through the pooler.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from app.config import get_settings
from app.db.connections import connect, session_url
from app.db.engine import Target, raw_connection
from app.db.tenant import open_tenant_session, parse_tenant
from app.jobs.context import current_job
from app.store import reads
from app.store.channels import EVENTS_CHANNEL, TERMINAL_EVENTS, parse_events
from app.store.rows import JobInfo

__all__ = ["JobFailed", "JobInfo", "JobNotFinished", "JobNotFound", "JobsTimeout",
           "get_job", "get_jobs", "get_result", "wait_for_results"]

#: For one read (its transaction), or for a waiting session's lifetime (its own connection).
SET_TENANT = "SELECT set_config('app.tenant_id', %(tenant)s, true)"
SET_SESSION_TENANT = "SELECT set_config('app.tenant_id', %(tenant)s, false)"
WAITING = "wait_for_results() (LISTEN on pgjobs.events)"


class JobNotFound(LookupError):
    """No job with this id (or not one the caller's tenant may see)."""


class JobNotFinished(RuntimeError):
    """The job has no result yet: it is still waiting, delayed or running."""


class JobFailed(RuntimeError):
    """The job ended as a dead letter (or was cancelled); ``error`` says why."""

    def __init__(self, job: JobInfo) -> None:
        super().__init__(f"job {job.message_id} is {job.status}: {job.last_error}")
        self.job = job
        self.error = job.last_error


class JobsTimeout(TimeoutError):
    """Not every awaited job finished in time; ``finished`` holds those that did."""

    def __init__(self, finished: dict[str, JobInfo], pending: set[str]) -> None:
        super().__init__(f"{len(pending)} of {len(pending) + len(finished)} jobs not finished")
        self.finished = finished
        self.pending = pending


def _implicit_tenant() -> uuid.UUID | None:
    ctx = current_job()
    return ctx.tenant_id if ctx is not None else None


def _reader_tenant(tenant: uuid.UUID | str | None) -> str:
    if tenant is None:
        tenant = _implicit_tenant()
    if tenant is None:
        raise TypeError("reading jobs by id is a tenant read: pass db= (the transaction to "
                        "read in), tenant=, or operator=True for the operator path")
    return str(parse_tenant(tenant))


def _read(tenant: uuid.UUID | str | None, operator: bool, wanted: list[str]
          ) -> dict[str, JobInfo]:
    """One read on a connection of its own: as the operator, or in ``tenant``'s transaction."""
    settings = get_settings()
    if operator:
        with connect(settings.database_url, name="pgjobs-results") as conn:
            return reads.jobs(conn, wanted)
    tenant_id = _reader_tenant(tenant)
    with connect(settings.app_database_url, name="pgjobs-results") as conn, \
            conn.transaction():
        conn.execute(SET_TENANT, {"tenant": tenant_id})
        return reads.jobs(conn, wanted)


def _listener(tenant: uuid.UUID | str | None, operator: bool) -> psycopg.Connection[Any]:
    """A session to LISTEN and read on, as the operator or with ``tenant`` for its lifetime
    (its own direct connection, never shared)."""
    settings = get_settings()
    if operator:
        return connect(session_url(settings.database_url, WAITING), name="pgjobs-results")
    tenant_id = _reader_tenant(tenant)
    conn = connect(session_url(settings.app_database_url, WAITING), name="pgjobs-results")
    try:
        conn.execute(SET_SESSION_TENANT, {"tenant": tenant_id})
    except BaseException:
        conn.close()
        raise
    return conn


def get_jobs(
    ids: Iterable[str | uuid.UUID], *, db: Target | None = None,
    tenant: uuid.UUID | str | None = None, operator: bool = False,
) -> dict[str, JobInfo]:
    """The jobs among ``ids`` that exist and are visible to the caller, by id, in one query."""
    wanted = [str(i) for i in ids]
    if db is None and tenant is None and not operator:
        db = open_tenant_session()
    if db is not None:
        return reads.jobs(raw_connection(db), wanted)
    return _read(tenant, operator, wanted)


def get_job(
    job_id: str | uuid.UUID, *, db: Target | None = None,
    tenant: uuid.UUID | str | None = None, operator: bool = False,
) -> JobInfo:
    """One job's status, progress, result and error; JobNotFound if there is none."""
    job = get_jobs([job_id], db=db, tenant=tenant, operator=operator).get(str(job_id))
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    return job


def get_result(
    job_id: str | uuid.UUID, *, db: Target | None = None,
    tenant: uuid.UUID | str | None = None, operator: bool = False,
) -> Any:
    """A completed job's JSON result (None if it returned nothing).

    Raises JobNotFinished while it is pending or running, JobFailed if it is dead or
    cancelled, JobNotFound if there is no such job.
    """
    job = get_job(job_id, db=db, tenant=tenant, operator=operator)
    if job.status == "completed":
        return job.result
    if job.finished:
        raise JobFailed(job)
    raise JobNotFinished(f"job {job_id} is {job.status}")


def wait_for_results(
    ids: Iterable[str | uuid.UUID], timeout: float = 30.0, *,
    tenant: uuid.UUID | str | None = None, operator: bool = False, poll: float = 1.0,
) -> dict[str, JobInfo]:
    """Wait until every job in ``ids`` is finished (completed, dead or cancelled).

    Returns them by id (``.result``, ``.status``, ``.last_error``); raises JobsTimeout,
    carrying those that finished, if some are still pending after ``timeout`` seconds.
    An id that does not exist (or is not visible to the tenant) stays pending.
    """
    pending = {str(i) for i in ids}
    finished: dict[str, JobInfo] = {}
    deadline = time.monotonic() + timeout
    if tenant is None and not operator:
        session = open_tenant_session()
        if session is not None:
            tenant = session.info.get("tenant_id")
    conn = _listener(tenant, operator)
    with conn:
        # LISTEN before the first query: a job finishing in between is still heard of.
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(EVENTS_CHANNEL)))
        while True:
            done = reads.jobs(conn, sorted(pending), finished_only=True)
            finished.update(done)
            pending -= done.keys()
            left = deadline - time.monotonic()
            if not pending:
                return finished
            if left <= 0:
                raise JobsTimeout(finished, pending)
            _wait_for_news(conn, pending, min(left, poll))


def _wait_for_news(conn: psycopg.Connection[Any], pending: set[str], timeout: float) -> None:
    """Block until an awaited job reaches a terminal event (or ``timeout``); drain the rest."""
    for notify in conn.notifies(timeout=timeout):
        if any(e.event in TERMINAL_EVENTS and e.message_id in pending
               for e in parse_events(notify.payload)):
            break
    # Everything already delivered is read without waiting, so one query covers a burst.
    for _ in conn.notifies(timeout=0):
        pass
