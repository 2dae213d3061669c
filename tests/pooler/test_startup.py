"""Behind a transaction pooler without a direct URL, session features refuse to start.

Here even the owner's URL (``DATABASE_URL``) goes through PgBouncer and no ``*_DIRECT_URL``
is given, so nothing has a session to LISTEN or hold a lock on: a worker process, the
scheduler, the intake, the dashboard's live feed, ``wait_for_results`` and
``events.listen`` each stop at once with an error naming the variable to set. What needs no
session (tenant transactions, one-off reads) goes on working.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from app.config import get_settings
from app.dashboard.live import Listener
from app.db.engine import engine_for, transaction_options
from app.db.pooler import DirectUrlRequired, endpoints, is_pooled, parse_addresses
from app.db.tenant import tenant_session
from app.intake.settings import IntakeSettings
from app.jobs import events, get_jobs, wait_for_results
from tests.pooler.conftest import Pooled
from tests.support import ROOT


@pytest.fixture
def no_session(pooled: Pooled, monkeypatch: pytest.MonkeyPatch) -> Pooled:
    """Every role's URL through PgBouncer (the owner's too), no direct URL at all."""
    monkeypatch.setenv("DATABASE_URL", pooled.url(pooled.bouncer.owner))
    get_settings.cache_clear()
    return pooled


def run(module: list[str], pooled: Pooled, tmp_path: Path, **env: str
        ) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", *module]
    full = pooled.db.env(**pooled.env(DATABASE_URL=pooled.url(pooled.bouncer.owner), **env))
    return subprocess.run(args, cwd=ROOT, env=full, capture_output=True, text=True, timeout=60)


def test_a_worker_without_a_session_url_exits_at_start(no_session: Pooled,
                                                       tmp_path: Path) -> None:
    done = run(["dramatiq", "tests.pooler.actors", "--processes", "1", "--threads", "1"],
               no_session, tmp_path)
    assert done.returncode != 0
    assert "the workers' LISTEN connection needs a database session of its own" in done.stderr
    assert "set WORKER_DIRECT_URL (or DATABASE_DIRECT_URL)" in done.stderr
    assert no_session.db.scalar("SELECT count(*) FROM dramatiq.workers") == 0


def test_the_scheduler_without_a_session_url_exits_at_start(no_session: Pooled,
                                                            tmp_path: Path) -> None:
    worker_direct = no_session.db.worker_url  # the broker has its session; the lock has none
    done = run(["app.scheduler"], no_session, tmp_path, WORKER_DIRECT_URL=worker_direct)
    assert done.returncode != 0
    assert "the scheduler's leader lock needs a database session of its own" in done.stderr
    assert "set DATABASE_DIRECT_URL" in done.stderr


def test_the_intake_without_a_session_url_exits_at_start(no_session: Pooled,
                                                         tmp_path: Path) -> None:
    with pytest.raises(DirectUrlRequired, match=r"set APP_DIRECT_URL .* INTAKE_LISTEN_URL"):
        IntakeSettings.from_env()
    done = run(["app.intake"], no_session, tmp_path, WORKER_DIRECT_URL=no_session.db.worker_url)
    assert done.returncode != 0 and "DirectUrlRequired" in done.stderr
    assert "the intake's LISTEN connection" in done.stderr


def test_listeners_without_a_session_url_fail_at_once(no_session: Pooled) -> None:
    tenant = no_session.db.create_tenant()
    app_url = get_settings().app_database_url
    with pytest.raises(DirectUrlRequired, match="APP_DIRECT_URL"):
        wait_for_results(["00000000-0000-0000-0000-000000000000"], timeout=1, tenant=tenant)
    with pytest.raises(DirectUrlRequired, match="APP_DIRECT_URL"):
        events.listen(app_url)
    with pytest.raises(DirectUrlRequired, match="dashboard's live updates"):
        Listener(app_url, lambda payload: None)
    # What needs no session works through the pooler.
    with tenant_session(tenant) as session:
        assert session.execute(text("SELECT pgjobs.current_tenant()")).scalar() == tenant
    assert get_jobs(["00000000-0000-0000-0000-000000000000"], tenant=tenant) == {}


def test_a_direct_url_pointing_at_the_pooler_is_refused(
    pooled: Pooled, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_DIRECT_URL", pooled.app_url)
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="APP_DIRECT_URL points at a transaction pooler"):
        get_settings()
    monkeypatch.delenv("APP_DIRECT_URL")
    monkeypatch.setenv("INTAKE_LISTEN_URL", pooled.app_url)
    get_settings.cache_clear()
    with pytest.raises(DirectUrlRequired, match="INTAKE_LISTEN_URL points at"):
        IntakeSettings.from_env()


def test_startup_options_become_per_transaction_settings(pooled: Pooled) -> None:
    """PgBouncer refuses a URL's ``options``; the intake's statement timeout still applies."""
    settings = IntakeSettings.from_env()
    assert "statement_timeout" in settings.database_url
    engine = engine_for(settings.database_url, 2)
    with engine.begin() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "5s"
    url, per_transaction = transaction_options(
        "postgresql://u@h:1/d?options=-c%20statement_timeout%3D100%20-c%20lock_timeout%3D50")
    assert "options" not in url and per_transaction == [("statement_timeout", "100"),
                                                         ("lock_timeout", "50")]
    with pytest.raises(ValueError, match="only -c name=value"):
        transaction_options("postgresql://u@h:1/d?options=-D%20/tmp")


def test_addresses_and_urls() -> None:
    poolers = parse_addresses("pgbouncer:6432, [::1]:6432,/run/pgbouncer:6432,db")
    assert poolers == {("pgbouncer", "6432"), ("::1", "6432"), ("/run/pgbouncer", "6432"),
                       ("db", "5432")}
    assert is_pooled("postgresql://app_user:pw@pgbouncer:6432/jobs", poolers)
    assert not is_pooled("postgresql://app_user:pw@pgbouncer:5432/jobs", poolers)
    assert is_pooled("postgresql://u@/jobs?host=/run/pgbouncer&port=6432", poolers)
    assert is_pooled("postgresql://u@db/jobs", poolers)  # default port
    assert endpoints("postgresql://u@a:1,b:2/d") == [("a", "1"), ("b", "2")]
    for bad in ("host:port", "h:0", "[::1", ":6432"):
        with pytest.raises(ValueError, match="JOBS_TRANSACTION_POOLER"):
            parse_addresses(bad)
