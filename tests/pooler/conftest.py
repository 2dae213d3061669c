"""Fixtures of the pooler tests: a real PgBouncer in transaction mode before the test database.

One PgBouncer per test process and pool size (started on first use, stopped at the end),
shared by the tests' own databases (its ``[databases]`` entry is a wildcard). ``pooled``
points this process's settings at it: application code (``app_user``) and actor sessions
(``app_actor``) through PgBouncer, ``JOBS_TRANSACTION_POOLER`` naming it; the owner and the
broker (``app_worker``) stay direct, as a worker's claims and LISTEN must.

These tests are not skipped when pgbouncer is missing (CI installs it): they fail, saying
so, unless ``PGJOBS_SKIP_POOLER=1``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.config import get_settings
from app.db.engine import dispose_engines
from tests.pooler import pgbouncer
from tests.support import TestDB

ACTOR_ROLE = "app_actor"
APP_ROLE = "app_user"


@pytest.fixture(scope="session")
def bouncers(server_url: str) -> Iterator[Callable[..., pgbouncer.PgBouncer]]:
    """``get(**settings)``: this process's PgBouncer with those settings (started once)."""
    if os.environ.get("PGJOBS_SKIP_POOLER") == "1" and pgbouncer.find_pgbouncer() is None:
        pytest.skip("pgbouncer is not installed and PGJOBS_SKIP_POOLER=1")
    started: dict[tuple[tuple[str, str], ...], pgbouncer.PgBouncer] = {}

    def get(**settings: str) -> pgbouncer.PgBouncer:
        key = tuple(sorted((k, str(v)) for k, v in settings.items()))
        if key not in started:
            try:
                started[key] = pgbouncer.start(server_url, **settings)
            except pgbouncer.PgBouncerMissing as exc:
                pytest.fail(str(exc), pytrace=False)
        return started[key]

    try:
        yield get
    finally:
        for bouncer in started.values():
            bouncer.stop()


@dataclass
class Pooled:
    """The test database seen through PgBouncer (and directly, for the session features)."""

    db: TestDB
    bouncer: pgbouncer.PgBouncer

    def url(self, role: str) -> str:
        return self.bouncer.url(role, self.db.name)

    @property
    def app_url(self) -> str:
        return self.url(APP_ROLE)

    @property
    def actor_url(self) -> str:
        return self.url(ACTOR_ROLE)

    def env(self, **extra: str) -> dict[str, str]:
        """For child processes (workers, intake): the same layout as this process."""
        return {"APP_DATABASE_URL": self.app_url, "ACTOR_DATABASE_URL": self.actor_url,
                "JOBS_TRANSACTION_POOLER": self.bouncer.address, **extra}

    def start_worker(self, module: str, *, log: Path, processes: int = 1, threads: int = 4,
                     **env: str) -> subprocess.Popen[bytes]:
        """A real ``dramatiq`` worker whose actor sessions go through PgBouncer."""
        return self.db.start_worker(module, processes=processes, threads=threads, log=log,
                                    **{**self.env(), **env})


def _point_at(db: TestDB, bouncer: pgbouncer.PgBouncer,
              monkeypatch: pytest.MonkeyPatch) -> Pooled:
    pooled = Pooled(db, bouncer)
    for key, value in pooled.env().items():
        monkeypatch.setenv(key, value)
    for key in ("APP_DIRECT_URL", "DATABASE_DIRECT_URL", "WORKER_DIRECT_URL",
                "INTAKE_LISTEN_URL"):
        monkeypatch.delenv(key, raising=False)
    dispose_engines()
    get_settings.cache_clear()
    return pooled


@pytest.fixture
def pooled(db: TestDB, bouncers: Callable[..., pgbouncer.PgBouncer],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Pooled]:
    """Transaction mode, 2 server connections per (database, user): clients share them."""
    yield _point_at(db, bouncers(default_pool_size=2), monkeypatch)
    dispose_engines()
    get_settings.cache_clear()


@pytest.fixture
def single(db: TestDB, bouncers: Callable[..., pgbouncer.PgBouncer],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Pooled]:
    """Transaction mode, ONE server connection per (database, user): every transaction of a
    role, whoever the client and the tenant, runs on the same server connection in turn."""
    yield _point_at(db, bouncers(default_pool_size=1), monkeypatch)
    dispose_engines()
    get_settings.cache_clear()
