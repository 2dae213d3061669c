"""Test helpers: per-test databases, real worker processes, waiting on conditions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from sqlalchemy.engine import make_url

from app.config import APP_ROLE, WORKER_ROLE, role_url

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], *, timeout: float = 20.0, interval: float = 0.05,
    message: str = "condition",
) -> T:
    """Poll ``condition`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def with_database(url: str, dbname: str) -> str:
    return make_url(url).set(database=dbname).render_as_string(hide_password=False)


#: A developer's own layout must not leak into a test's processes or settings.
ROLE_AND_POOLER_ENVS = ("APP_DATABASE_URL", "ACTOR_DATABASE_URL", "WORKER_DATABASE_URL",
                        "JOBS_TRANSACTION_POOLER", "DATABASE_DIRECT_URL", "APP_DIRECT_URL",
                        "WORKER_DIRECT_URL")


@dataclass
class TestDB:
    """A database of its own for one test: URLs for the owner and both application roles."""

    __test__ = False

    owner_url: str
    name: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def app_url(self) -> str:
        return role_url(self.owner_url, APP_ROLE, "APP_USER_PASSWORD")

    @property
    def worker_url(self) -> str:
        return role_url(self.owner_url, WORKER_ROLE, "APP_WORKER_PASSWORD")

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"DATABASE_URL": self.owner_url, "PYTHONUNBUFFERED": "1"})
        for key in ROLE_AND_POOLER_ENVS:
            env.pop(key, None)
        env.update(extra)
        return env

    def owner(self) -> psycopg.Connection:
        return psycopg.connect(self.owner_url, autocommit=True)

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.owner() as conn:
            return conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: Any = None) -> Any:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def create_tenant(self, name: str = "tenant", active: bool = True) -> uuid.UUID:
        return self.scalar(
            "INSERT INTO tenants (name, active) VALUES (%s, %s) RETURNING id", (name, active)
        )

    def start_worker(
        self, module: str = "app.actors", *, processes: int = 1, threads: int = 4,
        queues: list[str] | None = None, log: Path | None = None, **env: str,
    ) -> subprocess.Popen[bytes]:
        """A real ``dramatiq`` worker process against this database."""
        args = [sys.executable, "-m", "dramatiq", module, "--processes", str(processes),
                "--threads", str(threads)]
        if queues:
            args += ["--queues", *queues]
        out = open(log, "wb") if log else subprocess.DEVNULL
        proc = subprocess.Popen(
            args, cwd=ROOT, env=self.env(**env), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if log:
            out.close()  # the child has its own copy; ours would leak (ResourceWarning)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with _suppress():
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@contextmanager
def _suppress() -> Iterator[None]:
    try:
        yield
    except ProcessLookupError:
        pass


def workers_alive(db: TestDB) -> int:
    return db.scalar("SELECT count(*) FROM dramatiq.workers WHERE heartbeat_at > now() - "
                     "interval '5 seconds'")


def job_states(db: TestDB) -> dict[str, int]:
    return dict(db.query('SELECT "state"::text, count(*) FROM dramatiq.queue GROUP BY 1'))


@dataclass
class Run:
    """What one in-process CLI command did (the ``cli`` fixture)."""

    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


def queue_reads(conn: psycopg.Connection) -> tuple[int, int]:
    """(blocks read, sequential scans) of the job table so far, this session's included."""
    conn.execute("SELECT pg_stat_force_next_flush()")  # flushed as the session goes idle
    row = conn.execute(
        "SELECT heap_blks_hit + heap_blks_read + idx_blks_hit + idx_blks_read, seq_scan "
        "FROM pg_statio_all_tables JOIN pg_stat_all_tables USING (relid) "
        "WHERE relid = 'dramatiq.queue'::regclass").fetchone()
    assert row is not None
    return row[0], row[1]
