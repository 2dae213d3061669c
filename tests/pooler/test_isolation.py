"""Tenants sharing ONE server connection through PgBouncer never see each other's rows.

PgBouncer runs with ``default_pool_size = 1``: every transaction of a role, whichever client
and tenant it comes from, runs on the same PostgreSQL backend in turn (the tests check the
backend pid). The tenant context is per transaction (``set_config(..., true)``), an actor's
is signed for its backend and transaction, and the pooler resets the server connection after
each transaction (``server_reset_query_always = 1`` with ``tests.pooler.pgbouncer.RESET``,
as the README's Deployment section requires), so nothing one tenant's code leaves in the session (a
setting, a temporary table shadowing a tenant table, a LISTEN, a lock) reaches the next.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from app.db.tenant import tenant_session
from app.jobs import enqueue, get_job, wait_for_results
from tests.pooler import actors
from tests.pooler.conftest import Pooled

SEEN = """
SELECT pg_backend_pid() AS backend,
       pgjobs.current_tenant()::text AS tenant,
       (SELECT count(*) FROM activity_events) AS visible,
       (SELECT count(*) FROM activity_events WHERE tenant_id <> pgjobs.current_tenant())
           AS others,
       current_setting('search_path') AS search_path,
       (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()
            AND relkind = 'r') AS temp_tables
"""
WRITE = ("INSERT INTO activity_events (tenant_id, event_type, title, source, source_id) "
         "VALUES (pgjobs.current_tenant(), 'secret', 'private', 'test', :label)")


def _in_tenant(tenant: Any, label: str) -> dict[str, Any]:
    with tenant_session(tenant) as session:
        session.execute(text(WRITE), {"label": label})
        return dict(session.execute(text(SEEN)).mappings().one())


def test_alternating_tenants_on_one_server_connection(single: Pooled) -> None:
    db = single.db
    a, b = db.create_tenant("a"), db.create_tenant("b")
    seen = [_in_tenant((a, b)[i % 2], f"row-{i}") for i in range(40)]
    assert len({s["backend"] for s in seen}) == 1, "the transactions did not share a backend"
    for i, s in enumerate(seen):
        tenant = str((a, b)[i % 2])
        assert s["tenant"] == tenant and s["others"] == 0
        assert s["visible"] == i // 2 + 1  # its own rows so far, nothing of the other's
    assert db.scalar("SELECT count(*) FROM activity_events") == 40


def test_session_state_left_by_tenant_code_does_not_reach_the_next_tenant(
    single: Pooled,
) -> None:
    """Tenant A's code, on its own pooled connection, sets A's tenant for the session (not
    the transaction), shadows ``activity_events`` with a temporary table and puts it first in
    the search path. B's transactions and a connection with no tenant come next, on the
    same backend."""
    db = single.db
    a, b = db.create_tenant("a"), db.create_tenant("b")
    _in_tenant(a, "a-secret")
    with psycopg.connect(single.app_url, prepare_threshold=None) as hostile:
        backend = hostile.execute("SELECT pg_backend_pid()").fetchone()
        hostile.execute("SELECT set_config('app.tenant_id', %s, false)", (str(a),))
        hostile.execute("CREATE TEMP TABLE activity_events (LIKE public.activity_events "
                        "INCLUDING DEFAULTS)")
        hostile.execute("SELECT set_config('search_path', 'pg_temp, public', false)")
        hostile.execute("LISTEN pooler_leftover")
        hostile.commit()
        assert hostile.execute("SELECT count(*) FROM pg_class WHERE relnamespace = "
                               "pg_my_temp_schema()").fetchone() == (0,), "reset after commit"
        hostile.rollback()

        b_seen = _in_tenant(b, "b-secret")
        assert (b_seen["backend"],) == backend
        assert b_seen["tenant"] == str(b) and b_seen["visible"] == 1
        assert b_seen["others"] == 0 and b_seen["temp_tables"] == 0
        assert "pg_temp" not in b_seen["search_path"]
        # B's row went to the real table, under RLS, not into A's temporary one.
        assert db.scalar("SELECT tenant_id FROM activity_events WHERE source_id = 'b-secret'"
                         ) == b

        with psycopg.connect(single.app_url, prepare_threshold=None,
                             autocommit=True) as nobody:
            row = nobody.execute("SELECT pg_backend_pid(), pgjobs.current_tenant(), "
                                 "(SELECT count(*) FROM activity_events)").fetchone()
            assert row is not None and (row[0],) == backend
            assert row[1:] == (None, 0), "a session-level tenant leaked to another client"

        # A's code comes back on the same backend: B's row is nowhere it can read.
        again = hostile.execute("SELECT pg_backend_pid(), current_setting('app.tenant_id', "
                                "true), (SELECT count(*) FROM pg_class WHERE relnamespace "
                                "= pg_my_temp_schema())").fetchone()
        assert again is not None and (again[0],) == backend
        assert again[1:] in (("", 0), (None, 0))


@pytest.mark.slow
def test_a_jobs_session_leftovers_never_reach_another_tenants_job(
    single: Pooled, tmp_path: Path
) -> None:
    """Actor code is the untrusted side: tenant A's job leaves a temporary table shadowing
    ``activity_events``, a search path that finds it first, session copies of its signed
    context, a LISTEN and an advisory lock, and completes. Tenant B's job runs next on the
    same backend and writes its row; A's next job looks for it."""
    db = single.db
    a, b = db.create_tenant("a"), db.create_tenant("b")
    single.start_worker("tests.pooler.actors", log=tmp_path / "worker.log", threads=1)

    def run(tenant: Any, actor: Any, *args: Any) -> dict[str, Any]:
        with tenant_session(tenant) as session:
            job_id = enqueue(session, actor, *args).message_id
        done = wait_for_results([job_id], timeout=60, tenant=tenant)[job_id]
        assert done.status == "completed", (done.last_error,
                                            (tmp_path / "worker.log").read_text()[-2000:])
        assert get_job(job_id, tenant=tenant).result == done.result  # one read, pooled
        return done.result

    left = run(a, actors.leave_state)
    assert left["temp_tables"] == 1  # (its LISTEN takes effect at commit)
    assert left["advisory_locks"] == 1 and left["search_path"].startswith("pg_temp")

    victim = run(b, actors.record, 1)
    assert victim["backend"] == left["backend"], "the jobs did not share a backend"
    assert victim["tenant"] == str(b) and victim["others"] == 0
    assert victim["temp_tables"] == 0 and victim["listening"] == 0
    assert victim["advisory_locks"] == 0 and "pg_temp" not in victim["search_path"]
    assert db.scalar("SELECT tenant_id FROM activity_events WHERE source = 'pooler'") == b

    harvest = run(a, actors.harvest)
    assert harvest["backend"] == left["backend"]
    assert harvest["temp_rows"] == "42P01"  # A's temporary table is gone with its session
    assert harvest["tenant"] == str(a) and harvest["others"] == 0
