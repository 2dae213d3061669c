"""Application code and actor sessions through a real PgBouncer in transaction mode.

The issue's failure: 8 threads doing ``tenant_session`` + ``enqueue`` through PgBouncer
failed 38 of 320 enqueues with ``DuplicatePreparedStatement`` / ``ProtocolViolation``
(psycopg prepares a statement after 5 executions; the next transaction may run on another
server connection). Here 8 threads run 200 tenant transactions each (RLS reads, a write
checked by RLS, an enqueue) through 2 server connections, and a worker whose job sessions
also go through PgBouncer runs every job.
"""

from __future__ import annotations

import threading
import traceback
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from app.config import get_settings
from app.db.connections import pooler_kwargs
from app.db.engine import app_engine, engine_for
from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.pooler import actors
from tests.pooler.conftest import Pooled
from tests.support import wait_for

THREADS = 8
TRANSACTIONS = 200
TENANTS = 4

CHECK = text("""
SELECT pgjobs.current_tenant() AS tenant, pg_backend_pid() AS backend,
       (SELECT count(*) FROM activity_events WHERE tenant_id <> pgjobs.current_tenant())
           AS others,
       (SELECT count(*) FROM tenants) AS tenants_visible
""")
WRITE = text("INSERT INTO activity_events (tenant_id, event_type, title, source, source_id) "
             "VALUES (:tenant, 'app', 'written by the app', 'app', :n) RETURNING id")
MINE = text("SELECT count(*) FROM activity_events WHERE id = :id")


def test_settings_say_which_urls_are_pooled(pooled: Pooled) -> None:
    settings = get_settings()
    assert settings.is_pooled(settings.app_database_url)
    assert settings.is_pooled(settings.actor_database_url)
    assert not settings.is_pooled(settings.worker_database_url)
    assert not settings.is_pooled(settings.database_url)
    # The session URL of app_user is derived from the (direct) owner URL.
    assert settings.app_direct_url is not None
    assert not settings.is_pooled(settings.app_direct_url)
    assert pooler_kwargs(settings.app_database_url) == {"prepare_threshold": None}
    assert pooler_kwargs(settings.worker_database_url) == {}
    with app_engine().connect() as conn:
        assert conn.connection.driver_connection.prepare_threshold is None  # type: ignore[union-attr]


@pytest.mark.slow
def test_eight_threads_of_tenant_transactions_and_every_job_runs(
    pooled: Pooled, tmp_path: Path
) -> None:
    db = pooled.db
    tenants = [db.create_tenant(f"t{n}") for n in range(TENANTS)]
    errors: list[str] = []
    wrong: list[str] = []
    backends: set[int] = set()
    expected: dict[str, uuid.UUID] = {}
    lock = threading.Lock()
    start = threading.Barrier(THREADS)
    # One client connection per thread (the default engine has 5): what queues is PgBouncer.
    engine = engine_for(get_settings().app_database_url, THREADS)

    def client(thread: int) -> None:
        start.wait()
        for i in range(TRANSACTIONS):
            n = thread * TRANSACTIONS + i
            tenant = tenants[n % TENANTS]  # consecutive transactions: different tenants
            try:
                with tenant_session(tenant, engine=engine) as session:
                    seen = session.execute(CHECK).mappings().one()
                    row_id = session.execute(WRITE, {"tenant": tenant, "n": str(n)}).scalar()
                    mine = session.execute(MINE, {"id": row_id}).scalar()
                    job = enqueue(session, actors.record, n)
                with lock:
                    backends.add(seen["backend"])
                    expected[job.message_id] = tenant
                    if (seen["tenant"] != tenant or seen["others"] != 0
                            or seen["tenants_visible"] != 1 or mine != 1):
                        wrong.append(f"transaction {n} of {tenant} saw {dict(seen)}, own row "
                                     f"{mine}")
            except Exception:
                with lock:
                    errors.append(f"transaction {n}: {traceback.format_exc(limit=3)}")

    threads = [threading.Thread(target=client, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, f"{len(errors)} of {THREADS * TRANSACTIONS} failed; first: {errors[0]}"
    assert not wrong, wrong[:3]
    assert len(expected) == THREADS * TRANSACTIONS
    # 8 clients really shared PgBouncer's 2 server connections.
    assert 1 <= len(backends) <= 2, backends

    pooled.start_worker("tests.pooler.actors", log=tmp_path / "worker.log", threads=4)
    total = THREADS * TRANSACTIONS
    wait_for(lambda: db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state = 'done'")
             == total or db.scalar("SELECT count(*) FROM dramatiq.queue WHERE state = "
                                   "'rejected'"),
             timeout=120, interval=0.2, message=f"{total} jobs to run through PgBouncer")
    dead = db.query("SELECT message_id, last_error FROM dramatiq.queue WHERE state = "
                    "'rejected' LIMIT 3")
    assert not dead, f"jobs failed: {dead}\n{(tmp_path / 'worker.log').read_text()[-3000:]}"
    results = db.query("SELECT message_id::text, result FROM dramatiq.queue")
    assert len(results) == total
    for message_id, result in results:
        assert result["tenant"] == str(expected[message_id]) == result["expected_tenant"]
        assert result["others"] == 0 and result["tenants_seen"] == 1, result
    # Every job's row is there, under its own tenant, once.
    assert db.scalar("SELECT count(DISTINCT source_id) FROM activity_events "
                     "WHERE source = 'pooler'") == total
    actor_backends = {result["backend"] for _, result in results}
    assert 1 <= len(actor_backends) <= 2, actor_backends
