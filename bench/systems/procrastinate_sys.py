"""Procrastinate: a PostgreSQL task queue built on stored procedures and LISTEN/NOTIFY.

It has no caller-transaction enqueue in plain Python (only via its Django integration), so
"one per transaction" is ``defer()`` and "batch" is ``batch_defer()`` (one statement).
A job whose worker died stays ``doing`` until someone calls ``retry_stalled_jobs``; there is
no automatic rescue, so it is left out of the orphan scenario.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import psycopg

from bench import sidetables
from bench.procs import venv_tool
from bench.systems.base import QUEUE, Enqueuer, System
from bench.tablefill import replicate

CONCURRENCY = 8  # like dramatiq's 8 threads; procrastinate's own default is 1


class ProcrastinateEnqueuer(Enqueuer):
    def __init__(self, url: str, tenants: Sequence[uuid.UUID] = ()) -> None:
        import procrastinate

        super().__init__(url, tenants)
        self.app = procrastinate.App(
            connector=procrastinate.SyncPsycopgConnector(conninfo=url, min_size=1, max_size=1)
        )
        self.app.open()

    def kwargs(self, kind: str, i: int) -> dict[str, Any]:
        return {"i": i, "t": str(self.tenant_of(i))} if kind == "write" else {"i": i}

    def one(self, kind: str, i: int) -> None:
        self.app.configure_task(f"bench.{kind}", queue=QUEUE).defer(**self.kwargs(kind, i))

    def many(self, kind: str, ids: Sequence[int], *, delay_s: float | None = None) -> None:
        options: dict[str, Any] = {"queue": QUEUE}
        if delay_s:
            options["schedule_in"] = {"seconds": delay_s}
        deferrer = self.app.configure_task(f"bench.{kind}", **options)
        deferrer.batch_defer(*(self.kwargs(kind, i) for i in ids))

    def close(self) -> None:
        self.app.close()


class ProcrastinateSystem(System):
    key = "procrastinate"
    label = "procrastinate"
    kinds = ("noop", "stamp", "effect", "io")  # its "write" would be a plain insert
    rescues_orphans = False
    supervised = True  # its maintainers leave restarts to the process manager (#1116)
    slow = True
    # Its drain slows to tens of jobs/s on a backlog of thousands here, so the big-backlog
    # scenarios would spend their whole time cap on it: left out unless asked for.
    scenarios = frozenset({"enqueue", "drain", "orphan"})
    job_tables = ("procrastinate_jobs", "procrastinate_events")

    def unavailable(self) -> str | None:
        try:
            import procrastinate  # noqa: F401
        except ImportError:
            return "procrastinate is not installed (pip install procrastinate)"
        return None

    def config(self) -> str:
        from importlib.metadata import version

        return (
            f"procrastinate {version('procrastinate')}: one worker process per worker "
            f"process, --concurrency {CONCURRENCY}, async tasks, LISTEN/NOTIFY on, restarted "
            "1 s after it exits (bench.supervise, as systemd would)"
        )

    def install(self, url: str) -> None:
        import procrastinate

        app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=url))
        with app.open():
            app.schema_manager.apply_schema()
        with psycopg.connect(url, autocommit=True) as conn:
            sidetables.install(conn)

    def enqueuer(self, url: str, tenants: Sequence[uuid.UUID] = ()) -> Enqueuer:
        return ProcrastinateEnqueuer(url, tenants)

    def worker_commands(self, processes: int, concurrency: int | None = None) -> list[list[str]]:
        cmd = [
            venv_tool("procrastinate"), "--app=bench.systems.procrastinate_worker.app",
            "worker", "--queues", QUEUE, "--concurrency", str(concurrency or CONCURRENCY),
        ]
        return [list(cmd) for _ in range(processes)]

    def remaining(self, conn: psycopg.Connection) -> int:
        row = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        ).fetchone()
        return int(row[0]) if row else 0

    def failed(self, conn: psycopg.Connection) -> int:
        row = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('failed', 'aborted')"
        ).fetchone()
        return int(row[0]) if row else 0

    def started_any(self, conn: psycopg.Connection) -> bool:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs"
            " WHERE status IN ('doing', 'succeeded', 'failed'))"
        ).fetchone()
        return bool(row and row[0])

    def held_in_worker(self, conn: psycopg.Connection) -> int:
        return 0

    claim_pattern = r"procrastinate_fetch_job"

    def fill(self, conn: psycopg.Connection, finished: int, delayed: int) -> None:
        replicate(conn, "procrastinate_jobs", "status = 'succeeded'", finished, {})
        replicate(conn, "procrastinate_jobs", "scheduled_at > now() + interval '30 minutes'",
                  delayed, {})

    def claim_probe(self) -> tuple[str, Any] | None:
        return "SELECT * FROM procrastinate_fetch_job_v2(%s, NULL)", [[QUEUE]]
