"""Real PostgreSQL for every test: a migrated template per test process, a copy per test.

The template is built once (``alembic upgrade heads``); each test that needs committed data
across connections gets ``CREATE DATABASE ... TEMPLATE`` of it, so tests run in parallel
without seeing each other. Application code connects as the non-superuser roles the
migration creates (``app_user``, ``app_worker``), so RLS is really exercised.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import dramatiq
import psycopg
import pytest
from alembic import command
from alembic.config import Config
from psycopg import sql

from app.config import get_settings
from app.db.engine import dispose_engines
from tests.support import ROLE_AND_POOLER_ENVS, ROOT, Run, TestDB, with_database


@pytest.fixture(scope="session")
def server_url() -> str:
    """The owner URL of the server under test (DATABASE_URL, else the embedded cluster)."""
    if not os.environ.get("DATABASE_URL"):
        from app.devdb import ensure_running

        os.environ["DATABASE_URL"] = ensure_running()
    return os.environ["DATABASE_URL"]


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(with_database(url, "postgres"), autocommit=True)


def migrate(url: str, revision: str = "heads", *, down: bool = False) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logger"] = False
    (command.downgrade if down else command.upgrade)(cfg, revision)


def create_database(server: str, name: str, template: str | None = None) -> str:
    with _admin(server) as conn:
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(stmt)
    return with_database(server, name)


def drop_database(server: str, name: str) -> None:
    with _admin(server) as conn:
        stmt = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(stmt.format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_db(server_url: str) -> Iterator[str]:
    name = f"pgjobs_tpl_{uuid.uuid4().hex[:10]}"
    url = create_database(server_url, name)
    try:
        migrate(url)
        yield name
    finally:
        drop_database(server_url, name)


@pytest.fixture
def db(server_url: str, template_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestDB]:
    """A migrated database of this test's own; in-process settings point at it."""
    name = f"pgjobs_t_{uuid.uuid4().hex[:12]}"
    testdb = TestDB(owner_url=create_database(server_url, name, template_db), name=name)
    monkeypatch.setenv("DATABASE_URL", testdb.owner_url)
    for key in ROLE_AND_POOLER_ENVS:
        monkeypatch.delenv(key, raising=False)
    get_settings.cache_clear()
    try:
        yield testdb
    finally:
        testdb.stop_all()
        dispose_engines()
        get_settings.cache_clear()
        drop_database(server_url, name)


@pytest.fixture
def broker(db: TestDB) -> Iterator[dramatiq.Broker]:
    """The app's global broker (with every actor) pointed at this test's database."""
    import app.actors

    app.actors.broker.connect_to(get_settings().worker_database_url)
    yield app.actors.broker
    app.actors.broker.close_pool()


@pytest.fixture
def worker(broker: dramatiq.Broker) -> Iterator[dramatiq.Worker]:
    """An in-process worker (2 threads) on this test's database; stopped after the test."""
    w = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    w.start()
    yield w
    w.stop(timeout=10_000)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """``cli("stats", "--json")``: exit code, stdout and stderr of one ``pgjobs`` command,
    run in-process."""
    from app.ops.cli import main

    def run(*argv: object) -> Run:
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
