"""Read jobs by id: status, progress, result, error; wait for many jobs at once.

``wait_for_results(ids, timeout)`` uses one connection that LISTENs on ``pgjobs.events``
and runs one query per wake-up for all the ids still awaited (a safety-net poll covers a
missed notification), instead of a blocking connection per id.

Reads go through Row-Level Security: pass a tenant session (``db=``) or ``tenant=`` to read
as ``app_user``; without either they use the worker role (trusted backend code).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from app.broker.queries import EVENTS_CHANNEL
from app.config import get_settings
from app.db.engine import Target, raw_connection
from app.jobs import queries

TERMINAL = {"completed", "dead", "cancelled"}


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


@dataclass(frozen=True)
class JobInfo:
    message_id: str
    queue: str
    #: waiting, delayed, active, completed, dead or cancelled.
    status: str
    actor_name: str | None
    tenant_id: uuid.UUID | None
    priority: int
    attempts: int
    max_attempts: int | None
    progress: int | None
    progress_message: str | None
    result: Any
    last_error: str | None
    unique_key: str | None
    eta: datetime
    enqueued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


def _status(state: str, delayed: bool, cancelled: bool) -> str:
    if state == "queued":
        return "delayed" if delayed else "waiting"
    if state == "consumed":
        return "active"
    if state == "done":
        return "completed"
    return "cancelled" if cancelled else "dead"


def _info(row: dict[str, Any]) -> JobInfo:
    status = _status(row.pop("state"), row.pop("delayed"), row.pop("cancelled"))
    row["message_id"] = str(row["message_id"])
    return JobInfo(status=status, **row)


def _rows(conn: psycopg.Connection, query: str, ids: list[str]) -> dict[str, JobInfo]:
    with conn.cursor(row_factory=dict_row) as cur:
        return {job.message_id: job for job in map(_info, cur.execute(query, {"ids": ids}))}



def _connect(tenant: uuid.UUID | str | None) -> psycopg.Connection:
    settings = get_settings()
    url = settings.app_database_url if tenant is not None else settings.worker_database_url
    conn = psycopg.connect(url, autocommit=True, application_name="pgjobs-results")
    if tenant is not None:
        conn.execute(queries.SET_TENANT, {"tenant": str(tenant)})
    return conn


def get_jobs(
    ids: Iterable[str | uuid.UUID], *, db: Target | None = None,
    tenant: uuid.UUID | str | None = None,
) -> dict[str, JobInfo]:
    """The jobs among ``ids`` that exist (and are visible), by id, in one query."""
    wanted = [str(i) for i in ids]
    if db is not None:
        return _rows(raw_connection(db), queries.JOBS, wanted)
    with _connect(tenant) as conn:
        return _rows(conn, queries.JOBS, wanted)


def get_job(
    job_id: str | uuid.UUID, *, db: Target | None = None, tenant: uuid.UUID | str | None = None
) -> JobInfo:
    """One job's status, progress, result and error; JobNotFound if there is none."""
    job = get_jobs([job_id], db=db, tenant=tenant).get(str(job_id))
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    return job


def get_result(
    job_id: str | uuid.UUID, *, db: Target | None = None, tenant: uuid.UUID | str | None = None
) -> Any:
    """A completed job's JSON result (None if it returned nothing).

    Raises JobNotFinished while it is pending or running, JobFailed if it is dead or
    cancelled, JobNotFound if there is no such job.
    """
    job = get_job(job_id, db=db, tenant=tenant)
    if job.status == "completed":
        return job.result
    if job.finished:
        raise JobFailed(job)
    raise JobNotFinished(f"job {job_id} is {job.status}")


def wait_for_results(
    ids: Iterable[str | uuid.UUID], timeout: float = 30.0, *,
    tenant: uuid.UUID | str | None = None, poll: float = 1.0,
) -> dict[str, JobInfo]:
    """Wait until every job in ``ids`` is finished (completed, dead or cancelled).

    Returns them by id (``.result``, ``.status``, ``.last_error``); raises JobsTimeout,
    carrying those that finished, if some are still pending after ``timeout`` seconds.
    An id that does not exist (or is not visible) stays pending.
    """
    pending = {str(i) for i in ids}
    finished: dict[str, JobInfo] = {}
    deadline = time.monotonic() + timeout
    with _connect(tenant) as conn:
        # LISTEN before the first query: a job finishing in between is still heard of.
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(EVENTS_CHANNEL)))
        while True:
            done = _rows(conn, queries.FINISHED, sorted(pending))
            finished.update(done)
            pending -= done.keys()
            left = deadline - time.monotonic()
            if not pending:
                return finished
            if left <= 0:
                raise JobsTimeout(finished, pending)
            _wait_for_news(conn, pending, min(left, poll))


def _wait_for_news(conn: psycopg.Connection, pending: set[str], timeout: float) -> None:
    """Block until an awaited job reaches a terminal event (or ``timeout``); drain the rest."""
    for notify in conn.notifies(timeout=timeout):
        try:
            payload = json.loads(notify.payload)
        except ValueError:
            continue
        if payload.get("event") in ("completed", "dead", "cancelled") and payload.get(
            "message_id"
        ) in pending:
            break
    # Everything already delivered is read without waiting, so one query covers a burst.
    for _ in conn.notifies(timeout=0):
        pass
