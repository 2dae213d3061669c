"""Health: database reachable, migrations at head, workers alive, queues moving, and the
recurring tasks the scheduler refuses (when a scheduler runs).

Meant for a container health probe or a cron alert: each check says ok, warn or fail, and
the system is healthy when none fails. A paused queue's backlog only warns (an operator
paused it on purpose); a running job whose worker stopped heartbeating only warns (rescue
will hand it back).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from app.db import migrations
from app.ops.db import connect
from app.scheduler import queries as scheduler_queries
from app.scheduler.settings import SchedulerSettings
from app.store import operator as queries

OK, WARN, FAIL = "ok", "warn", "fail"
MIGRATION_VERSION = "SELECT version_num FROM alembic_version"


@dataclass
class Check:
    name: str
    status: str
    detail: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    queues: list[dict[str, Any]] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    def add(self, name: str, status: str, detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    def as_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "checks": [asdict(c) for c in self.checks],
                "queues": self.queues}


def script_heads() -> set[str]:
    """The head revision(s) of the migration scripts: ours and the ``JOBS_MIGRATIONS`` ones."""
    return migrations.script_heads()


def check(
    url: str | None = None, *, max_age: float = 300.0, min_workers: int = 1
) -> Report:
    """Run every check; ``max_age``: seconds a due job may wait before the queue fails."""
    report = Report()
    try:
        conn = connect(url)
    except psycopg.Error as exc:
        report.add("database", FAIL, f"unreachable: {str(exc).strip()}")
        return report
    with conn:
        report.add("database", OK, "reachable")
        migrated = _migrations(conn, report)
        _workers(conn, report, min_workers)
        _queues(conn, report, max_age)
        if migrated:  # else the scheduler's view may not be ours yet
            _scheduler(conn, report)
    return report


def _migrations(conn: psycopg.Connection[dict[str, Any]], report: Report) -> bool:
    """True when the database is at the scripts' heads."""
    try:
        heads = script_heads()
    except migrations.MigrationsSettingError as exc:
        report.add("migrations", FAIL, str(exc))
        return False
    try:
        applied = {r["version_num"] for r in conn.execute(MIGRATION_VERSION)}
    except psycopg.errors.UndefinedTable:
        report.add("migrations", FAIL, "not migrated: no alembic_version table")
        return False
    if applied == heads:
        report.add("migrations", OK, f"at head {', '.join(sorted(heads))}")
        return True
    detail = (f"database at {', '.join(sorted(applied)) or 'nothing'}, code expects "
              f"{', '.join(sorted(heads))}: run alembic upgrade heads")
    foreign = applied - migrations.known_revisions()
    if foreign:
        detail += (f" ({', '.join(sorted(foreign))} unknown to this code: set "
                   f"{migrations.SETTING} as for the migration)")
    report.add("migrations", FAIL, detail)
    return False


def _workers(conn: psycopg.Connection[dict[str, Any]], report: Report, minimum: int) -> None:
    row = conn.execute(queries.WORKER_COUNTS).fetchone() or {"alive": 0, "registered": 0}
    status = OK if row["alive"] >= minimum else FAIL
    report.add("workers", status, f"{row['alive']} alive (heartbeat within the lease) of "
               f"{row['registered']} registered; at least {minimum} needed")
    stalled = conn.execute(queries.STALLED).fetchone()
    if stalled and stalled["n"]:
        report.add("stalled", WARN, f"{stalled['n']} running job(s) on workers that stopped "
                   "heartbeating; rescue hands them back")


def _queues(conn: psycopg.Connection[dict[str, Any]], report: Report, max_age: float) -> None:
    for row in conn.execute(queries.QUEUE_AGES).fetchall():
        age = row["oldest_waiting_seconds"]
        report.queues.append(dict(row))
        if age is None or age <= max_age:
            continue
        detail = f"oldest due job waiting {age:.0f}s (limit {max_age:.0f}s)"
        if row["paused"]:
            report.add(f"queue {row['queue']}", WARN, detail + "; queue is paused")
        else:
            report.add(f"queue {row['queue']}", FAIL, detail)
    if not any(c.name.startswith("queue ") for c in report.checks):
        report.add("queues", OK, f"no due job waits longer than {max_age:.0f}s")


def _scheduler(conn: psycopg.Connection[dict[str, Any]], report: Report) -> None:
    """What the live scheduler leader refuses to schedule; a leader gone while instances
    remain registered. Nothing when no scheduler ever ran here (it is optional)."""
    stale = SchedulerSettings.from_env().stale_seconds
    row = conn.execute(scheduler_queries.LEADER_REPORT, {"stale": stale}).fetchone()
    if row is None or not row["instances"]:
        return
    if not row["alive"]:
        report.add("scheduler", WARN, "no live scheduler leader: recurring tasks are not firing")
    elif row["errors"]:
        report.add("scheduler", FAIL, f"leader pid {row['leader_pid']} on "
                   f"{row['leader_hostname']} refuses: {row['errors']}")
    else:
        report.add("scheduler", OK, f"leader pid {row['leader_pid']} on "
                   f"{row['leader_hostname']}, every definition scheduled")
