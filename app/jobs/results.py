"""Read jobs by id: status, progress, result, error; wait for many jobs at once.

Reads by id are tenant reads: they go through Row-Level Security for the caller's tenant,
so a job id of another tenant is simply not found. Pass the transaction to read in
(``db=``: a tenant session, or ``current_session()`` in a job), or ``tenant=`` (application
code naming its tenant, as ``tenant_session`` does); inside a job or a ``tenant_session``
block the tenant is that one. Operators read any job explicitly with ``operator=True``
(the owner's connection).

``wait_for_results(ids, timeout)`` uses one connection that LISTENs on ``pgjobs.events``
and runs one query per wake-up for all the ids still awaited (a safety-net poll covers a
missed notification), instead of a blocking connection per id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from app.config import get_settings
from app.db.connections import connect
from app.db.engine import Target, raw_connection
from app.db.tenant import open_tenant_session, parse_tenant
from app.jobs.context import current_job
from app.store import reads
from app.store.channels import EVENTS_CHANNEL, TERMINAL_EVENTS, parse_events
from app.store.rows import JobInfo

__all__ = ["JobFailed", "JobInfo", "JobNotFinished", "JobNotFound", "JobsTimeout",
           "get_job", "get_jobs", "get_result", "wait_for_results"]

SET_TENANT = "SELECT set_config('app.tenant_id', %(tenant)s, false)"


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


def _reader(
    db: Target | None, tenant: uuid.UUID | str | None, operator: bool
) -> psycopg.Connection[Any] | None:
    """A connection of the caller's own to read on, or None when ``db`` is used."""
    if db is not None:
        return None
    settings = get_settings()
    if operator:
        return connect(settings.database_url, name="pgjobs-results")
    if tenant is None:
        tenant = _implicit_tenant()
    if tenant is None:
        raise TypeError("reading jobs by id is a tenant read: pass db= (the transaction to "
                        "read in), tenant=, or operator=True for the operator path")
    conn = connect(settings.app_database_url, name="pgjobs-results")
    conn.execute(SET_TENANT, {"tenant": str(parse_tenant(tenant))})
    return conn


def get_jobs(
    ids: Iterable[str | uuid.UUID], *, db: Target | None = None,
    tenant: uuid.UUID | str | None = None, operator: bool = False,
) -> dict[str, JobInfo]:
    """The jobs among ``ids`` that exist and are visible to the caller, by id, in one query."""
    wanted = [str(i) for i in ids]
    if db is None and tenant is None and not operator:
        db = open_tenant_session()
    conn = _reader(db, tenant, operator)
    if conn is None:
        assert db is not None
        return reads.jobs(raw_connection(db), wanted)
    with conn:
        return reads.jobs(conn, wanted)


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
    conn = _reader(None, tenant, operator)
    assert conn is not None
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
