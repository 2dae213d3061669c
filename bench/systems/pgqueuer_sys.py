"""PgQueuer: an asyncio job queue on PostgreSQL (``FOR UPDATE SKIP LOCKED`` in batches).

Enqueue uses its synchronous ``SyncQueries`` on a psycopg connection, inside the caller's
transaction for "one per transaction", and its list form (one statement) for "batch".
Finished jobs leave the queue table (moved to its log), so what is left is what remains.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import timedelta

import psycopg

from bench import sidetables
from bench.systems.base import Enqueuer, System, python

BATCH_SIZE = 50  # dequeue batch; PgQueuer's own default is 10


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
            import pgqueuer  # noqa: F401
        except ImportError:
            return "pgqueuer is not installed (pip install pgqueuer)"
        return None

    def config(self) -> str:
        import pgqueuer

        return (
            f"pgqueuer {pgqueuer.__version__}: pgqueuer.run() (what `pgq run` does; its CLI "
            "fails on its default --log-level in this version), one asyncio process each, "
            f"batch size {BATCH_SIZE}, heartbeat timeout 30 s (default)"
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

    def worker_commands(self, processes: int) -> list[list[str]]:
        cmd = [python(), "-m", "bench.systems.pgqueuer_worker", "--batch-size", str(BATCH_SIZE)]
        return [list(cmd) for _ in range(processes)]

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
