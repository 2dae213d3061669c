"""The ``jobs`` views: one status per job, counts per queue and tenant, and RLS through them."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.conftest import create_database, drop_database, migrate
from tests.ops.rows import STATUSES, add_job, add_worker
from tests.support import TestDB

#: Views without a tenant_id column, and how each shows that only the tenant's rows count.
TENANTLESS = {"queue_stats", "workers"}
#: Views over other tables than the job rows, each with its own RLS test.
ELSEWHERE = {"deliveries"}  # tests/messaging/test_hostile_tenant.py


def jobs_views(db: TestDB) -> list[str]:
    rows = db.query("SELECT table_name FROM information_schema.views "
                    "WHERE table_schema = 'jobs' ORDER BY 1")
    return [r[0] for r in rows]


def view_rows(url: str, view: str, tenant: uuid.UUID | None) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        if tenant is not None:
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
        return conn.execute(f"SELECT * FROM jobs.{view}").fetchall()  # names from the catalog


def two_tenants_with_every_status(db: TestDB) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    a, b = db.create_tenant("a"), db.create_tenant("b")
    worker = add_worker(db)
    for tenant in (a, b):
        for status in STATUSES:
            add_job(db, status, tenant=tenant, worker=worker, age=30)
    add_job(db, "waiting", tenant=b, queue="other")  # a queue only tenant b uses
    return a, b, worker


def test_every_status_is_counted_once_per_queue(db: TestDB) -> None:
    a, _, _ = two_tenants_with_every_status(db)
    add_job(db, "waiting", queue="mail", age=120)  # a system job (no tenant)
    stats = {r["queue"]: r for r in view_rows(db.owner_url, "queue_stats", None)}
    mail = stats["mail"]
    assert {s: mail[s] for s in STATUSES} == {
        "waiting": 3, "delayed": 2, "retrying": 2, "active": 2, "completed": 2, "dead": 2,
        "cancelled": 2,
    }
    assert 120 <= mail["oldest_waiting_seconds"] < 180
    assert stats["other"]["waiting"] == 1 and mail["paused"] is False
    per_tenant = {(r["tenant_id"], r["queue"]): r for r in view_rows(db.owner_url,
                                                                      "by_tenant", None)}
    assert per_tenant[(a, "mail")]["tenant_name"] == "a"
    assert {s: per_tenant[(a, "mail")][s] for s in STATUSES} == dict.fromkeys(STATUSES, 1)


def test_tenant_role_sees_only_its_own_rows_in_every_view(db: TestDB) -> None:
    a, b, worker = two_tenants_with_every_status(db)
    views = jobs_views(db)
    assert {"jobs", "queue_stats", "by_tenant", "failed", "scheduled", "recent", "active",
            "workers"} <= set(views)
    for view in (v for v in views if v not in ELSEWHERE):
        if not db.scalar("SELECT has_table_privilege('app_user', %s, 'SELECT')",
                         (f"jobs.{view}",)):
            # Not granted to the tenant role at all (e.g. worker-only views): nothing leaks.
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                view_rows(db.app_url, view, a)
            continue
        owner_rows = view_rows(db.owner_url, view, None)
        mine = view_rows(db.app_url, view, a)
        if "tenant_id" in (mine[0] if mine else owner_rows[0]):
            assert mine, f"jobs.{view} shows tenant a nothing"
            assert {r["tenant_id"] for r in mine} == {a}, f"jobs.{view} leaks other tenants"
            assert {r["tenant_id"] for r in owner_rows} == {a, b}, f"owner sees all in {view}"
            continue
        assert view in TENANTLESS, f"jobs.{view}: no tenant_id column; add its RLS check"
        if view == "queue_stats":
            # Tenant a's seven jobs only; 'other' (tenant b's queue) is invisible to a.
            assert [r["queue"] for r in mine] == ["mail"]
            assert {s: mine[0][s] for s in STATUSES} == dict.fromkeys(STATUSES, 1)
        if view == "workers":
            # Workers hold no tenant data; what they run is counted under the caller's RLS.
            assert [(r["worker_id"], r["active_jobs"]) for r in mine] == [(worker, 1)]
            assert [r["active_jobs"] for r in owner_rows] == [2]


def test_tenant_role_without_a_tenant_sees_no_jobs(db: TestDB) -> None:
    two_tenants_with_every_status(db)
    assert view_rows(db.app_url, "jobs", None) == []
    assert view_rows(db.app_url, "queue_stats", None) == []
    assert view_rows(db.app_url, "by_tenant", None) == []


def test_worker_role_sees_every_tenant(db: TestDB) -> None:
    a, b, _ = two_tenants_with_every_status(db)
    assert {r["tenant_id"] for r in view_rows(db.worker_url, "failed", None)} == {a, b}


def test_paused_queue_appears_in_stats_even_without_jobs(db: TestDB) -> None:
    db.query("INSERT INTO dramatiq.paused_queues (queue_name) VALUES ('quiet') RETURNING 1")
    stats = view_rows(db.owner_url, "queue_stats", None)
    assert [(r["queue"], r["paused"], r["waiting"]) for r in stats] == [("quiet", True, 0)]


def test_worker_alive_follows_the_lease(db: TestDB) -> None:
    fresh, stale = add_worker(db), add_worker(db, heartbeat_age=60)
    alive = {r["worker_id"]: r["alive"] for r in view_rows(db.owner_url, "workers", None)}
    assert alive == {fresh: True, stale: False}


def test_migration_downgrade_drops_the_views_and_upgrade_restores_them(
    server_url: str,
) -> None:
    name = f"pgjobs_t_{uuid.uuid4().hex[:12]}"
    url = create_database(server_url, name)
    try:
        migrate(url, "0002")
        migrate(url, "0001", down=True)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regnamespace('jobs')").fetchone() == (None,)
            assert conn.execute(
                "SELECT count(*) FROM information_schema.columns "
                "WHERE table_name = 'queue' AND column_name = 'cancelled_at'"
            ).fetchone() == (0,)
        migrate(url, "0002")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM jobs.queue_stats").fetchone() == (0,)
    finally:
        drop_database(server_url, name)
