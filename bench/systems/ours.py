"""Our broker (``app.broker``/``app.jobs``): the system the ratios are about.

Schema: ``alembic upgrade heads``. Enqueue uses the public API inside the caller's
transaction: tenant-free jobs on an ``app_worker`` connection (``app_user`` may only enqueue
jobs of its own tenant), ``write`` jobs in each tenant's context, so they run under RLS.
Workers are dramatiq's CLI on ``bench.systems.ours_actors`` with the default middleware of
``app.jobs.setup`` and the settings of ``app.config`` (lease, claim batch, pool).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import psycopg

from bench import sidetables
from bench.dbadmin import with_user
from bench.procs import REPO, venv_tool
from bench.systems.base import QUEUE, Enqueuer, System
from bench.systems.dramatiq_common import THREADS, DramatiqPgTable, dramatiq_command
from bench.tablefill import replicate

WORKER_ROLE = "app_worker"
# Jobs that write tenant data run in a tenant (the others are tenant-free).
TENANT_KINDS = frozenset({"write", "effect", "io", "io_async"})
APP_ROLE = "app_user"
# app.config prefers these over URLs derived from DATABASE_URL; the bench databases need
# the derived ones.
ROLE_URL_ENVS = ("APP_DATABASE_URL", "WORKER_DATABASE_URL")


def actors_module() -> ModuleType:
    """The bench actors, bound to a broker that is only used to build messages here.

    ``enqueue``/``enqueue_many`` write on the connection they are given, so the broker's own
    URL is never connected to from the bench process.
    """
    os.environ.setdefault("BENCH_WORKER_URL", "postgresql:///unused")
    from bench.systems import ours_actors

    return ours_actors


def role_url(url: str, role: str) -> str:
    return with_user(url, role)


class OursEnqueuer(Enqueuer):
    def __init__(self, url: str, tenants: Sequence[uuid.UUID] = ()) -> None:
        from app.jobs import enqueue, enqueue_many

        super().__init__(url, tenants)
        self.actors = actors_module().ACTORS
        self._enqueue, self._enqueue_many = enqueue, enqueue_many
        self.conn = psycopg.connect(role_url(url, WORKER_ROLE), autocommit=True)

    def _set_tenant(self, tenant: uuid.UUID) -> None:
        self.conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))

    def one(self, kind: str, i: int) -> None:
        with self.conn.transaction():
            if kind in TENANT_KINDS:
                self._set_tenant(self.tenant_of(i))
            self._enqueue(self.conn, self.actors[kind], i)

    def many(self, kind: str, ids: Sequence[int], *, delay_s: float | None = None) -> None:
        with self.conn.transaction():
            if kind not in TENANT_KINDS:
                items: list[tuple[tuple[int], dict[str, object]]] = [((i,), {}) for i in ids]
                self._enqueue_many(self.conn, self.actors[kind], items, delay=delay_s)
                return
            by_tenant: dict[uuid.UUID, list[int]] = {}
            for i in ids:
                by_tenant.setdefault(self.tenant_of(i), []).append(i)
            for tenant, tenant_ids in by_tenant.items():
                self._set_tenant(tenant)
                items = [((i,), {}) for i in tenant_ids]
                self._enqueue_many(self.conn, self.actors[kind], items, delay=delay_s)

    def tenant_session_one(self, tenant: uuid.UUID, i: int) -> None:
        """The application's own path: a tenant session as ``app_user``, one job, commit."""
        from app.db.engine import engine_for
        from app.db.tenant import tenant_session

        engine = engine_for(role_url(self.url, APP_ROLE))
        with tenant_session(tenant, engine=engine) as session:
            self._enqueue(session, self.actors["write"], i)

    def close(self) -> None:
        self.conn.close()


class Ours(DramatiqPgTable, System):
    key = "ours"
    label = "ours"
    job_tables = ("dramatiq.queue", "activity_events")
    orphan_rescue = (
        "a worker on the same host (survivor or restarted) sees the dead PID at its next "
        "heartbeat (every 2 s, and at start) and takes its jobs back; from another host, "
        "rows wait for the lease (JOBS_LEASE_SECONDS, 10 s)"
    )

    def unavailable(self) -> str | None:
        try:
            import app.jobs.setup  # noqa: F401
        except ImportError as exc:
            return f"app.jobs is not importable ({exc})"
        return None

    def config(self) -> str:
        from app.config import get_settings

        s = get_settings()
        return (
            f"dramatiq CLI, {THREADS} threads/process, app.jobs.setup default middleware; "
            f"claim batch {s.claim_batch}, lease {s.lease_seconds:g}s, heartbeat "
            f"{s.heartbeat_seconds:g}s, poll {s.poll_seconds:g}s (app.config defaults)"
        )

    def install(self, url: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ROLE_URL_ENVS}
        env["DATABASE_URL"] = url
        proc = subprocess.run(
            [venv_tool("alembic"), "upgrade", "heads"],
            cwd=REPO, env=env, capture_output=True, text=True, check=False,
        )
        if proc.returncode:
            raise RuntimeError(f"alembic upgrade heads failed:\n{proc.stdout}\n{proc.stderr}")
        with psycopg.connect(url, autocommit=True) as conn:
            sidetables.install(conn)

    def make_tenants(self, url: str, count: int) -> list[uuid.UUID]:
        ids = [uuid.uuid4() for _ in range(count)]
        with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO tenants (id, name) VALUES (%s, %s)",
                [(t, f"bench tenant {n}") for n, t in enumerate(ids)],
            )
        return ids

    def enqueuer(self, url: str, tenants: Sequence[uuid.UUID] = ()) -> OursEnqueuer:
        return OursEnqueuer(url, tenants)

    def worker_commands(self, processes: int, concurrency: int | None = None) -> list[list[str]]:
        return [dramatiq_command("bench.systems.ours_actors", processes, concurrency)]

    def has_async_actors(self) -> bool:
        return "io_async" in actors_module().ACTORS

    # The finished and delayed template rows the table_size fill copies. They follow the job
    # table's layout: when the store moves finished jobs elsewhere, name that table here.
    fill_templates = (
        ("dramatiq.queue", "\"state\" = 'done'", "message_id"),
        ("dramatiq.queue", "eta > now() + interval '30 minutes'", "message_id"),
    )
    claim_pattern = r"SKIP LOCKED.*'consumed'"

    def fill(self, conn: psycopg.Connection, finished: int, delayed: int) -> None:
        (f_table, f_where, f_key), (d_table, d_where, d_key) = self.fill_templates
        replicate(conn, f_table, f_where, finished, {f_key: "gen_random_uuid()"})
        replicate(conn, d_table, d_where, delayed, {d_key: "gen_random_uuid()"})

    def claim_probe(self) -> tuple[str, Any] | None:
        """Our claim as the consumer sends it between sweeps (``CLAIM_FROM``), its floor
        read at each probe: the eta of the job completed last (what the consumer claimed
        last, give or take a batch)."""
        from app.config import get_settings
        from app.store import claim

        worker = uuid.uuid4()

        def params(conn: psycopg.Connection) -> dict[str, Any]:
            row = conn.execute(
                "SELECT eta FROM dramatiq.queue WHERE queue_name = %s AND \"state\" = 'done'"
                " ORDER BY mtime DESC LIMIT 1", (QUEUE,)).fetchone()
            conn.rollback()
            lows, highs = claim.gaps([0])
            return {"queue": QUEUE, "limit": get_settings().claim_batch, "worker": worker,
                    "priorities": [0], "floors": [row[0] if row else None],
                    "gap_lo": lows, "gap_hi": highs}

        return claim.CLAIM_FROM, params

    def probe_url(self, url: str) -> str:
        return role_url(url, WORKER_ROLE)

    def worker_env(self, url: str) -> dict[str, str]:
        env = {k: v for k, v in super().worker_env(url).items() if k not in ROLE_URL_ENVS}
        env["DATABASE_URL"] = url
        env["BENCH_WORKER_URL"] = role_url(url, WORKER_ROLE)
        return env

    def written(self, conn: psycopg.Connection) -> int:
        row = conn.execute("SELECT count(*) FROM activity_events").fetchone()
        return int(row[0]) if row else 0

    def held_in_worker(self, conn: psycopg.Connection) -> int:
        return 0
