"""PgQueuer: an asyncio job queue on PostgreSQL (``FOR UPDATE SKIP LOCKED`` in batches).

Enqueue uses its synchronous ``SyncQueries`` on a psycopg connection, inside the caller's
transaction for "one per transaction", and its list form (one statement) for "batch".
Finished jobs leave the queue table (moved to its log), so what is left is what remains.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from bench import sidetables
from bench.systems.base import KINDS, Enqueuer, System, python
from bench.tablefill import replicate


@dataclass(frozen=True)
class Tuning:
    """PgQueuer's worker settings, as its documentation recommends (bench/README.md says why).

    ``BENCH_PGQ_DRIVER`` / ``BENCH_PGQ_BATCH`` / ``BENCH_PGQ_MAX_TASKS`` / ``BENCH_PGQ_POOL``
    override them, to compare settings (``python -m bench --only drain --systems pgqueuer``).
    """

    # asyncpg as `pgq run` picks it; its pool driver, as the guide says for high throughput.
    driver: str = "asyncpg-pool"
    batch_size: int = 50  # PgQueuer: "increase batch_size when jobs are short-lived"
    max_concurrent_tasks: int | None = None  # unlimited, PgQueuer's default
    side_pool: int = 4  # connections the jobs' own writes use (a PgQueuer resource)

    @classmethod
    def from_env(cls) -> Tuning:
        base = cls()
        tasks = os.environ.get("BENCH_PGQ_MAX_TASKS")
        return cls(
            driver=os.environ.get("BENCH_PGQ_DRIVER", base.driver),
            batch_size=int(os.environ.get("BENCH_PGQ_BATCH", base.batch_size)),
            max_concurrent_tasks=int(tasks) if tasks else base.max_concurrent_tasks,
            side_pool=int(os.environ.get("BENCH_PGQ_POOL", base.side_pool)),
        )

    def command(self, concurrency: int | None = None) -> list[str]:
        """The worker command; ``concurrency`` caps jobs in flight (the I/O scenario)."""
        batch, tasks = self.batch_size, self.max_concurrent_tasks
        if concurrency is not None:
            batch = max(1, min(batch, concurrency // 2))  # PgQueuer: tasks >= 2 x batch
            tasks = max(concurrency, 2 * batch)
        cmd = [python(), "-m", "bench.systems.pgqueuer_worker", "--batch-size", str(batch),
               "--restart-on-failure", "--restart-delay", "1"]
        if tasks:
            cmd += ["--max-concurrent-tasks", str(tasks)]
        return cmd


class PgQueuerEnqueuer(Enqueuer):
    def __init__(self, url: str, tenants: Sequence[uuid.UUID] = ()) -> None:
        from pgqueuer.db import SyncPsycopgDriver
        from pgqueuer.queries import SyncQueries

        super().__init__(url, tenants)
        self.conn = psycopg.connect(url, autocommit=True)
        self.queries = SyncQueries(SyncPsycopgDriver(self.conn))

    def payload(self, kind: str, i: int) -> bytes:
        data: dict[str, object] = {"i": i}
        if kind == "write":
            data["t"] = str(self.tenant_of(i))
        return json.dumps(data).encode()

    def one(self, kind: str, i: int) -> None:
        with self.conn.transaction():
            self.queries.enqueue(kind, self.payload(kind, i))

    def many(self, kind: str, ids: Sequence[int], *, delay_s: float | None = None) -> None:
        after = timedelta(seconds=delay_s) if delay_s else None
        with self.conn.transaction():
            self.queries.enqueue(
                [kind] * len(ids),
                [self.payload(kind, i) for i in ids],
                [0] * len(ids),
                [after] * len(ids),
            )

    def close(self) -> None:
        self.conn.close()


class PgQueuerSystem(System):
    key = "pgqueuer"
    label = "PgQueuer"
    job_tables = ("pgqueuer", "pgqueuer_log")
    orphan_rescue = (
        "a picked job whose heartbeat is older than heartbeat_timeout (30 s) is re-picked by "
        "the next dequeue, which an idle worker runs on a notification or its dequeue timeout"
    )

    def unavailable(self) -> str | None:
        try:
            import asyncpg  # noqa: F401
            import pgqueuer  # noqa: F401
        except ImportError as exc:
            return f"{exc.name} is not installed (pip install -e '.[bench]')"
        return None

    def config(self) -> str:
        import pgqueuer

        t = Tuning.from_env()
        return (
            f"pgqueuer {pgqueuer.__version__}: pgqueuer.run() on uvloop (what `pgq run` does; "
            f"its CLI fails on its default --log-level in this version), {t.driver} driver, "
            f"batch size {t.batch_size}, max_concurrent_tasks "
            f"{t.max_concurrent_tasks or 'unlimited'}, restart_on_failure, heartbeat timeout "
            f"30 s (default); jobs write through an asyncpg pool of {t.side_pool} (resources)"
        )

    def install(self, url: str) -> None:
        import asyncio

        from pgqueuer.db import PsycopgDriver
        from pgqueuer.queries import Queries

        async def run() -> None:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
            try:
                await Queries(PsycopgDriver(conn)).install()
            finally:
                await conn.close()

        asyncio.run(run())
        with psycopg.connect(url, autocommit=True) as conn:
            sidetables.install(conn)

    def enqueuer(self, url: str, tenants: Sequence[uuid.UUID] = ()) -> Enqueuer:
        return PgQueuerEnqueuer(url, tenants)

    def worker_commands(self, processes: int, concurrency: int | None = None) -> list[list[str]]:
        cmd = Tuning.from_env().command(concurrency)
        return [list(cmd) for _ in range(processes)]

    def worker_env(self, url: str) -> dict[str, str]:
        env = super().worker_env(url)
        env["BENCH_PGQ_DRIVER"] = Tuning.from_env().driver
        env["BENCH_PGQ_POOL"] = str(Tuning.from_env().side_pool)
        return env

    def remaining(self, conn: psycopg.Connection) -> int:
        row = conn.execute("SELECT count(*) FROM pgqueuer").fetchone()
        return int(row[0]) if row else 0

    def failed(self, conn: psycopg.Connection) -> int:
        row = conn.execute(
            "SELECT count(*) FROM pgqueuer_log WHERE status = 'exception'"
        ).fetchone()
        return int(row[0]) if row else 0

    def started_any(self, conn: psycopg.Connection) -> bool:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pgqueuer WHERE status = 'picked')"
            " OR EXISTS (SELECT 1 FROM pgqueuer_log WHERE status <> 'queued')"
        ).fetchone()
        return bool(row and row[0])

    def held_in_worker(self, conn: psycopg.Connection) -> int:
        return 0

    # Finished jobs leave the queue table for its log; delayed ones wait in the queue table.
    claim_pattern = r"SKIP LOCKED.*'picked'"

    def fill(self, conn: psycopg.Connection, finished: int, delayed: int) -> None:
        replicate(conn, "pgqueuer_log", "status = 'successful'", finished,
                  {"job_id": "t.job_id + 1000000000 + g"})
        replicate(conn, "pgqueuer", "execute_after > now() + interval '30 minutes'", delayed, {})

    def claim_probe(self) -> tuple[str, Any] | None:
        """PgQueuer's own dequeue statement, built as its worker builds it (one entrypoint
        per bench job kind, no limits), with ``$n`` parameters."""
        import uuid as uuid_

        try:
            from pgqueuer.adapters.persistence.qb import QueryQueueBuilder
        except ImportError:  # before 1.x's ports-and-adapters layout
            from pgqueuer.qb import QueryQueueBuilder  # type: ignore[no-redef]

        query = QueryQueueBuilder().build_dequeue_query(
            batch_size=Tuning.from_env().batch_size,
            entrypoints=list(KINDS),  # type: ignore[arg-type]
            concurrency_limits=[0] * len(KINDS),
            queue_manager_id=uuid_.uuid4(),  # type: ignore[arg-type]
            global_concurrency_limit=None,
            heartbeat_timeout=timedelta(seconds=30),
        )
        return query.sql, list(query.args)
