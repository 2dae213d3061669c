"""What the scenarios need from a system under test.

A system knows how to install its schema in an empty database, enqueue the bench jobs
(one per transaction, or many in one), start its worker processes, and tell from the
database how many jobs are left. Job kinds are the same everywhere:

* ``noop(i)``: nothing.
* ``write(i)``: one row for the job's tenant (ours: under RLS; others: a plain insert).
* ``stamp(i)``: records its start time (latency).
* ``hang(i)``: first attempt hangs until its worker is killed; a retry finishes (orphans).
* ``effect(i)``: one row in ``bench_effect`` (ours: in the job's transaction, committed with
  its completion; others: on a side connection), so lost and repeated runs can be counted.
* ``io(i)``: awaits one HTTP GET to the bench's local server, then makes ``effect(i)``.
"""

from __future__ import annotations

import os
import sys
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import psycopg

from bench import sidetables
from bench.procs import REPO, Worker
from bench.sidetables import SIDE_URL_ENV

KINDS = ("noop", "write", "stamp", "hang", "effect", "io")
QUEUE = "bench"
LOAD_CHUNK = 10_000


class Enqueuer(ABC):
    """An open connection to one bench database that enqueues jobs."""

    def __init__(self, url: str, tenants: Sequence[uuid.UUID] = ()) -> None:
        self.url = url
        self.tenants = list(tenants)

    def tenant_of(self, i: int) -> uuid.UUID:
        return self.tenants[i % len(self.tenants)]

    @abstractmethod
    def one(self, kind: str, i: int) -> None:
        """Enqueue job ``i`` in a transaction of its own (as a caller's transaction would)."""

    @abstractmethod
    def many(self, kind: str, ids: Sequence[int], *, delay_s: float | None = None) -> None:
        """Enqueue ``ids`` in one transaction, with the system's batch API where it has one."""

    def load(self, kind: str, ids: Sequence[int], *, delay_s: float | None = None) -> None:
        """Load a backlog before any worker runs (untimed): batches of ``LOAD_CHUNK``."""
        for start in range(0, len(ids), LOAD_CHUNK):
            self.many(kind, ids[start:start + LOAD_CHUNK], delay_s=delay_s)

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class System(ABC):
    key: ClassVar[str]
    label: ClassVar[str]
    #: Job kinds this system runs meaningfully (others are skipped with a note).
    kinds: ClassVar[tuple[str, ...]] = KINDS
    #: Whether it re-runs a job whose worker died without any operator action.
    rescues_orphans: ClassVar[bool] = True
    #: How it finds a dead worker's jobs, for the orphan figures' notes.
    orphan_rescue: ClassVar[str] = ""
    #: Its workers take delayed jobs into memory until due (dramatiq's delay-queue design).
    pulls_delayed: ClassVar[bool] = False
    #: Far slower at draining: its drains stop at ``Plan.slow_deadline_s``.
    slow: ClassVar[bool] = False
    #: Tables holding its jobs, emptied between variants of a scenario.
    job_tables: ClassVar[tuple[str, ...]] = ()
    #: Its workers run under ``bench.supervise`` (restarted when they exit), for systems whose
    #: documentation leaves restarts to the process manager.
    supervised: ClassVar[bool] = False
    #: Scenarios it takes part in by default (None: all); naming it in ``--systems``
    #: includes it everywhere.
    scenarios: ClassVar[frozenset[str] | None] = None

    def unavailable(self) -> str | None:
        """Why this system cannot run here (a missing package), or None."""
        return None

    def config(self) -> str:
        """The worker configuration used, for the notes under the table."""
        return ""

    @abstractmethod
    def install(self, url: str) -> None:
        """Create the system's schema in the empty database at ``url`` (owner URL)."""

    def make_tenants(self, url: str, count: int) -> list[uuid.UUID]:
        """Tenant ids for ``write`` jobs; systems with a tenants table insert them."""
        return [uuid.uuid4() for _ in range(count)]

    @abstractmethod
    def enqueuer(self, url: str, tenants: Sequence[uuid.UUID] = ()) -> Enqueuer: ...

    @abstractmethod
    def worker_commands(self, processes: int, concurrency: int | None = None) -> list[list[str]]:
        """One command per process group to start (dramatiq forks its own processes).

        ``concurrency``: jobs in flight per process (threads, asyncio tasks) when a scenario
        sets it (io_bound, write_jobs); None is the system's bench default.
        """

    def worker_env(self, url: str) -> dict[str, str]:
        env = dict(os.environ)
        # The bench's own connections are named (``PGAPPNAME``) so chaos can spare them.
        env.pop("PGAPPNAME", None)
        env[SIDE_URL_ENV] = url
        env["BENCH_WORKER_URL"] = url
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def workers(
        self, url: str, processes: int, log_dir: Path, tag: str, concurrency: int | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> list[Worker]:
        """Worker objects (not started) for ``processes`` worker processes."""
        env = {**self.worker_env(url), **(extra_env or {})}
        commands = self.worker_commands(processes, concurrency)
        if self.supervised:
            commands = [[python(), "-m", "bench.supervise", "--", *argv] for argv in commands]
        return [
            Worker(f"{self.key}-{tag}-{n}", argv, env, log_dir / f"{self.key}-{tag}-{n}.log")
            for n, argv in enumerate(commands)
        ]

    def reset(self, conn: psycopg.Connection) -> None:
        """Empty the job tables and bench tables, so the next variant starts clean."""
        tables = ", ".join((*self.job_tables, *sidetables.TABLES))
        conn.execute(f"TRUNCATE {tables} CASCADE")

    def drain_deadline(self, deadline_s: float, slow_deadline_s: float) -> float:
        return min(deadline_s, slow_deadline_s) if self.slow else deadline_s

    @abstractmethod
    def remaining(self, conn: psycopg.Connection) -> int:
        """Jobs of the bench queue not finished yet (queued, delayed or running)."""

    @abstractmethod
    def failed(self, conn: psycopg.Connection) -> int:
        """Jobs that ended in failure (dead letters): a drain only counts if this stays 0."""

    def written(self, conn: psycopg.Connection) -> int:
        """Rows written by ``write`` jobs (a plain insert into ``bench_activity`` here)."""
        row = conn.execute("SELECT count(*) FROM bench_activity").fetchone()
        return int(row[0]) if row else 0

    @abstractmethod
    def started_any(self, conn: psycopg.Connection) -> bool:
        """Whether any job has been started (picked) yet; must be cheap on a big backlog."""

    @abstractmethod
    def held_in_worker(self, conn: psycopg.Connection) -> int:
        """Delayed jobs a worker has taken into its own memory (0 for systems that don't)."""

    # --- what the table-size and MVCC scenarios need ------------------------------------

    def fill(self, conn: psycopg.Connection, finished: int, delayed: int) -> None:
        """Put ``finished`` finished jobs and ``delayed`` jobs due in an hour in the job
        tables, each kind with one ``INSERT ... SELECT generate_series`` (table_size)."""
        raise NotImplementedError(f"{self.key} has no fill statements")

    #: A regular expression matching the claim statement in ``pg_stat_statements.query``.
    claim_pattern: ClassVar[str] = ""
    #: Why it has no claim probe, when it has none.
    claim_note: ClassVar[str] = ""

    def claim_probe(self) -> tuple[str, Any] | None:
        """The system's claim statement with concrete parameters, for ``EXPLAIN (ANALYZE,
        BUFFERS)`` in a rolled-back transaction; None when it cannot be built. The
        parameters may be a callable taking the probe's connection, called before each
        probe (state the claim depends on, e.g. where it starts, read at that moment)."""
        return None

    def has_async_actors(self) -> bool:
        """Whether it runs ``async def`` jobs besides its default kind (ours: when the
        broker supports them; the asyncio peers' jobs are async anyway)."""
        return False

    def probe_url(self, url: str) -> str:
        """The role the claim runs as (the probe runs as it too: RLS changes the plan)."""
        return url


def python() -> str:
    return sys.executable
