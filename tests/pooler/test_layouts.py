"""The third layout of the README's Deployment section, every process at once: a worker
behind a session-mode PgBouncer, the scheduler and application code behind a
transaction-mode one (the owner's URL too), session features on direct URLs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.config import get_settings
from app.db.engine import dispose_engines
from app.db.tenant import tenant_session
from app.jobs import enqueue_many, wait_for_results
from tests.pooler import actors, pgbouncer
from tests.pooler.conftest import Pooled
from tests.scheduler.processes import leader_pid, only_test_schedule, start_scheduler
from tests.support import wait_for

pytestmark = pytest.mark.slow


def test_workers_behind_a_session_pooler_and_the_rest_behind_a_transaction_pooler(
    pooled: Pooled, bouncers: Callable[..., pgbouncer.PgBouncer], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = pooled.db
    session_mode = bouncers(pool_mode="session", default_pool_size=20)
    layout = pooled.env(
        DATABASE_URL=pooled.url(pooled.bouncer.owner),   # transaction mode
        DATABASE_DIRECT_URL=db.owner_url,                # the scheduler's lock, LISTEN
        WORKER_DATABASE_URL=session_mode.url("app_worker", db.name),
    )
    for key, value in layout.items():
        monkeypatch.setenv(key, value)
    dispose_engines()
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.is_pooled(settings.database_url)
    assert not settings.is_pooled(settings.worker_database_url)  # session mode: not listed
    assert settings.app_direct_url is not None and settings.app_direct_url.startswith(
        "postgresql://app_user@")

    tenants = [db.create_tenant(f"t{n}") for n in range(3)]
    only_test_schedule(db)
    scheduler = start_scheduler(db, tmp_path / "scheduler.log", **layout)
    db.start_worker("tests.pooler.actors", log=tmp_path / "worker.log", threads=4, **layout)
    ids: dict[str, object] = {}
    for tenant in tenants:
        with tenant_session(tenant) as session:
            for job in enqueue_many(session, actors.record, [((n,), {}) for n in range(20)]):
                ids[job.message_id] = tenant
    for tenant in tenants:
        mine = [i for i, t in ids.items() if t == tenant]
        done = wait_for_results(mine, timeout=90, tenant=tenant)
        assert {job.status for job in done.values()} == {"completed"}, \
            (tmp_path / "worker.log").read_text()[-2000:]
        assert {job.result["tenant"] for job in done.values()} == {str(tenant)}

    wait_for(lambda: leader_pid(db) == scheduler.pid, timeout=30,
             message=f"the scheduler to lead\n{(tmp_path / 'scheduler.log').read_text()}")
    wait_for(lambda: db.scalar("SELECT count(DISTINCT message->'kwargs'->>'slot') FROM "
                               "dramatiq.queue WHERE unique_key LIKE 'test.tick:%'") >= 2,
             timeout=30, message="the scheduler to fire two slots")
    modes = {(p["database"], p["user"]): p["pool_mode"]
             for bouncer in (pooled.bouncer, session_mode) for p in bouncer.show("POOLS")
             if p["database"] == db.name}
    assert modes[(db.name, "app_worker")] == "session"
    assert modes[(db.name, "app_user")] == modes[(db.name, "app_actor")] == "transaction"
    assert modes[(db.name, pooled.bouncer.owner)] == "transaction"  # the scheduler's owner
    for log in ("worker.log", "scheduler.log"):
        assert "Traceback" not in (tmp_path / log).read_text(), log
