"""What each page shows, read on a connection that sees what the viewer may see.

Every function takes the viewer's connection (``Database.reader``): the owner's for an
operator, a tenant session's for a tenant admin. Only which statement is the cheap one
differs by viewer; never which rows a tenant may see (RLS decides that).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.dashboard.db import Conn, Row, fetch, fetch_as, fetch_one, names_with_delayed
from app.dashboard.filters import Cursor, JobFilter
from app.dashboard.masking import Masker
from app.dashboard.viewer import Viewer
from app.store import dashboard as queries

BUCKETS = queries.BUCKETS


@dataclass
class QueueSummary:
    queue: str
    paused: bool = False
    paused_at: datetime | None = None
    waiting: int = 0
    delayed: int = 0
    running: int = 0
    completed: int = 0
    dead: int = 0
    oldest_waiting_seconds: float | None = None
    #: Per minute over the last hour, oldest first.
    throughput: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    failures: list[int] = field(default_factory=lambda: [0] * BUCKETS)


def _slot(minute: int) -> int:
    return BUCKETS - 1 - min(max(minute, 0), BUCKETS - 1)


def queues(conn: Conn, viewer: Viewer) -> list[QueueSummary]:
    """Every queue with its live counts, last hour's outcomes and sparklines."""
    if viewer.operator:
        names = [r["queue"] for r in fetch(conn, queries.QUEUE_NAMES)]
        completed = fetch(conn, queries.COMPLETED_BY_MINUTE,
                          {"names": names_with_delayed(names)})
    else:
        names = [r["queue"] for r in fetch(conn, queries.TENANT_QUEUE_NAMES)]
        completed = fetch(conn, queries.TENANT_COMPLETED_BY_MINUTE)
    summaries = {name: QueueSummary(name) for name in names}

    def summary(queue_name: str) -> QueueSummary:
        name = queue_name.removesuffix(".DQ")
        return summaries.setdefault(name, QueueSummary(name))

    for row in fetch(conn, queries.QUEUED):
        s = summary(row["queue_name"])
        if row["queue_name"].endswith(".DQ"):
            s.delayed += row["jobs"]
        else:
            s.waiting += row["jobs"]
            s.oldest_waiting_seconds = row["oldest_due_seconds"]
    for row in fetch(conn, queries.RUNNING):
        summary(row["queue_name"]).running += row["jobs"]
    for row in fetch(conn, queries.PAUSED):
        s = summary(row["queue"])
        s.paused, s.paused_at = True, row["paused_at"]
    for row in completed:
        s = summary(row["queue"])
        s.completed += row["completed"]
        s.throughput[_slot(row["minute"])] += row["completed"]
    for row in fetch(conn, queries.FAILURES_BY_MINUTE):
        s = summary(row["queue"])
        s.dead += row["dead"]
        s.failures[_slot(row["minute"])] += row["failures"]
    return [summaries[name] for name in sorted(summaries)]


@dataclass
class JobRow:
    message_id: uuid.UUID
    queue: str
    status: str
    actor_name: str | None
    tenant_id: uuid.UUID | None
    priority: int
    attempts: int
    max_attempts: int | None
    eta: datetime
    enqueued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    last_error: str | None
    progress: int | None
    sort_at: datetime | None


@dataclass
class JobPage:
    rows: list[JobRow]
    #: The cursor of the next page, None on the last one.
    next: Cursor | None


def _job_query(conn: Conn, viewer: Viewer, f: JobFilter, cursor: Cursor | None, limit: int,
               *, ids_only: bool) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"limit": limit, **f.params()}
    names = list(f.present())
    if not viewer.operator:
        # RLS already limits the rows; naming the tenant lets the plan use its own index.
        params["tenant"] = viewer.tenant_id
        if "tenant" not in names:
            names.append("tenant")
    status = queries.STATUSES[f.status]
    per_queue = viewer.operator and status.finished and "tenant" not in names
    if per_queue:
        queues_ = [f.queue] if f.queue else [
            r["queue"] for r in fetch(conn, queries.QUEUE_NAMES)]
        params["names"] = names_with_delayed(queues_)
        names = [n for n in names if n != "queue"]
    if cursor is not None:
        params["after_at"], params["after_id"] = cursor.at, cursor.message_id
    sql = queries.list_jobs(f.status, names, per_queue=per_queue, cursor=cursor is not None,
                            since=f.since is not None, until=f.until is not None,
                            ids_only=ids_only)
    return sql, params


def list_jobs(conn: Conn, viewer: Viewer, f: JobFilter, cursor: Cursor | None = None,
              *, limit: int = 50) -> JobPage:
    """One page of the jobs matching ``f``, after ``cursor`` (keyset: no OFFSET, no count)."""
    sql, params = _job_query(conn, viewer, f, cursor, limit + 1, ids_only=False)
    rows = fetch_as(conn, JobRow, sql, params)
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    next_ = Cursor(last.sort_at, last.message_id) if last and last.sort_at else None
    return JobPage(rows, next_)


def matching_ids(conn: Conn, viewer: Viewer, f: JobFilter, cursor: Cursor | None,
                 limit: int) -> list[tuple[uuid.UUID, datetime]]:
    """The next ``limit`` ids matching ``f`` after ``cursor`` (bulk actions walk these)."""
    sql, params = _job_query(conn, viewer, f, cursor, limit, ids_only=True)
    return [(r["message_id"], r["sort_at"]) for r in fetch(conn, sql, params)]


def visible(conn: Conn, ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The ids among ``ids`` this connection's role can see (a tenant: its own only)."""
    found = {r["message_id"] for r in fetch(conn, queries.VISIBLE, {"ids": ids})}
    return [i for i in ids if i in found]


@dataclass
class Event:
    at: datetime
    what: str
    detail: str = ""


@dataclass
class JobDetail:
    job: Row
    args: list[Any]
    kwargs: Any
    result: Any
    attempts: list[Row]
    limits: list[Row]
    timeline: list[Event]


def _timeline(job: Row, attempts: list[Row]) -> list[Event]:
    events = [Event(job["enqueued_at"], "enqueued")]
    if job["eta"] and job["eta"] > job["enqueued_at"] and not attempts:
        events.append(Event(job["eta"], "due", "delayed until then"))
    for a in attempts:
        if a["started_at"]:
            events.append(Event(a["started_at"], f"attempt {a['attempt']} started"))
        events.append(Event(a["ended_at"], f"attempt {a['attempt']} {a['outcome']}",
                            a["error"] or ""))
    status = job["status"]
    if job["started_at"] and status in ("active", "completed"):
        events.append(Event(job["started_at"], f"attempt {job['attempts']} started",
                            f"worker {job['worker_hostname'] or job['worker_id'] or '?'}"))
    if status in ("waiting", "delayed", "retrying") and attempts:
        events.append(Event(job["eta"], "due again", status))
    if job["cancelled_at"]:
        events.append(Event(job["cancelled_at"], "cancelled", job["last_error"] or ""))
    elif job["finished_at"] and status == "completed":
        events.append(Event(job["finished_at"], "completed"))
    elif job["finished_at"] and status == "dead" and not any(
            a["outcome"] == "dead" for a in attempts):
        events.append(Event(job["finished_at"], "dead", job["last_error"] or ""))
    return sorted(events, key=lambda e: e.at)


def job_detail(conn: Conn, viewer: Viewer, job_id: uuid.UUID, masker: Masker
               ) -> JobDetail | None:
    """One job, its attempts, limits and timeline; None when the viewer cannot see it."""
    job = fetch_one(conn, queries.JOB, {"id": job_id})
    if job is None:
        return None
    attempts = fetch(conn, queries.ATTEMPTS, {"id": job_id})
    limits: list[Row] = []
    if viewer.operator and job["limit_key"] is not None:
        limits = fetch(conn, queries.JOB_LIMITS, {"queue": job["queue"], "key": job["limit_key"]})
    actor = job["actor_name"]
    return JobDetail(
        job=job,
        args=masker.args(actor, job["args"]),
        kwargs=masker.value(actor, job["kwargs"] or {}),
        result=masker.value(actor, job["result"]),
        attempts=attempts,
        limits=limits,
        timeline=_timeline(job, attempts),
    )


def workers(conn: Conn) -> list[Row]:
    return fetch(conn, queries.WORKERS)


def dead_groups(conn: Conn, *, limit: int = 100) -> list[Row]:
    return fetch(conn, queries.DEAD_GROUPS, {"limit": limit})


def limits(conn: Conn, *, limit: int = 500) -> list[Row]:
    return fetch(conn, queries.LIMITS, {"limit": limit})


@dataclass
class Recurring:
    health: Row | None
    instances: list[Row]
    schedules: list[Row]
    #: (task, tenant id) of the last row when more follow.
    next: tuple[str, uuid.UUID] | None


ZERO_UUID = uuid.UUID(int=0)


def recurring(conn: Conn, *, after: tuple[str, uuid.UUID] | None = None,
              limit: int = 200) -> Recurring:
    task, tenant = after or ("", ZERO_UUID)
    rows = fetch(conn, queries.RECURRING, {"after_task": task, "after_tenant": tenant,
                                           "limit": limit + 1})
    more = len(rows) > limit
    rows = rows[:limit]
    return Recurring(
        health=fetch_one(conn, queries.SCHEDULER_HEALTH),
        instances=fetch(conn, queries.SCHEDULER_INSTANCES),
        schedules=rows,
        next=(rows[-1]["task"], rows[-1]["tenant_id"]) if more and rows else None,
    )


def tenant_name(conn: Conn) -> str | None:
    row = fetch_one(conn, queries.TENANT_NAME)
    return row["name"] if row else None
