"""Health: database reachable, migrations at head, workers alive, queues moving.

Meant for a container health probe or a cron alert: each check says ok, warn or fail, and
the system is healthy when none fails. A paused queue's backlog only warns (an operator
paused it on purpose); a running job whose worker stopped heartbeating only warns (rescue
will hand it back).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from app.ops.db import connect
from app.store import operator as queries

ROOT = Path(__file__).resolve().parent.parent.parent

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
    """The head revision(s) of the migration scripts shipped with this code."""
    # Imported here: alembic is slow to import and only this check needs it.
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return set(ScriptDirectory.from_config(config).get_heads())


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
        _migrations(conn, report)
        _workers(conn, report, min_workers)
        _queues(conn, report, max_age)
    return report


def _migrations(conn: psycopg.Connection[dict[str, Any]], report: Report) -> None:
    heads = script_heads()
    try:
        applied = {r["version_num"] for r in conn.execute(MIGRATION_VERSION)}
    except psycopg.errors.UndefinedTable:
        report.add("migrations", FAIL, "not migrated: no alembic_version table")
        return
    if applied == heads:
        report.add("migrations", OK, f"at head {', '.join(sorted(heads))}")
    else:
        report.add("migrations", FAIL, f"database at {', '.join(sorted(applied)) or 'nothing'}, "
                   f"code expects {', '.join(sorted(heads))}: run alembic upgrade head")


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
