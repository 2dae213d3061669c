"""The example user package end to end, with the documented commands only.

Migrate (``alembic upgrade heads`` with ``JOBS_MIGRATIONS``), create shops with ``pgjobs
tenants create``, run ``dramatiq app.actors`` with ``JOBS_MODULES``, enqueue notes from
each shop's own session, see them stored under RLS, then run ``python -m app.scheduler``
on a per-second cron: the example's recurring task fires for every shop, and a row naming
an actor nobody registered is refused (log, ``scheduler.health``, ``pgjobs health``,
``pgjobs recurring list``) while the example's task keeps firing.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy.exc
from sqlalchemy import text

from app.db.tenant import tenant_session
from tests.extending.conftest import alembic, pgjobs, start_scheduler, start_worker
from tests.support import TestDB, wait_for

pytestmark = pytest.mark.slow  # real worker and scheduler processes

GHOST = "shopnotes.ghost"
GHOST_ERROR = (f"{GHOST}: actor 'shopnotes.missing' is not registered (declare it with @job in "
               "a module listed in JOBS_MODULES)")


def done_jobs(db: TestDB, actor: str) -> int:
    return db.scalar("SELECT count(*) FROM dramatiq.queue WHERE actor_name = %s "
                     "AND state = 'done'", (actor,))


def summaries(db: TestDB) -> dict[uuid.UUID, list[tuple[object, int]]]:
    out: dict[uuid.UUID, list[tuple[object, int]]] = {}
    for tenant, slot, notes in db.query(
            "SELECT tenant_id, slot, notes FROM shopnotes_summaries ORDER BY slot"):
        out.setdefault(tenant, []).append((slot, notes))
    return out


def checks(run_json: dict[str, object]) -> dict[str, tuple[str, str]]:
    return {c["name"]: (c["status"], c["detail"])  # type: ignore[index]
            for c in run_json["checks"]}  # type: ignore[attr-defined]


def test_shopnotes_runs_with_the_documented_commands(db: TestDB, logs: Path) -> None:
    # 1. Migrate: pgjobs' branch is already at head; the example's branch joins it.
    migrated = alembic(db, "upgrade", "heads")
    assert migrated.code == 0, migrated.err
    assert "shopnotes_0001" in migrated.err  # alembic logs what it ran on stderr
    versions = {r[0] for r in db.query("SELECT version_num FROM alembic_version")}
    assert "shopnotes_0001" in versions and len(versions) == 2
    rls = db.query("SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                   "WHERE relname LIKE 'shopnotes_%' AND relkind = 'r' ORDER BY 1")
    assert rls == [("shopnotes_notes", True, True), ("shopnotes_summaries", True, True)]

    # 2. Shops, through the tenants CLI (one in another time zone: a schedule of its own).
    created = [pgjobs(db, "tenants", "create", "shop-a"),
               pgjobs(db, "tenants", "create", "shop-b", "--timezone", "Asia/Jerusalem")]
    assert [c.code for c in created] == [0, 0], [c.err for c in created]
    a, b = (uuid.UUID(c.out.strip()) for c in created)

    # 3. A real worker with the example's module; notes enqueued from each shop's session.
    start_worker(db, logs / "worker.log")
    from examples.shopnotes import api  # the application code's side of the example

    for i in range(3):
        api.request_note(a, f"A-{i}", f"gift wrap order {i}")
    api.request_note(b, "B-1", "deliver after 18:00")
    wait_for(lambda: done_jobs(db, "shopnotes.record") == 4, timeout=60, message="4 notes")

    # 4. Each shop sees its own notes only, through the API and through raw SQL.
    # (Recorded by concurrent worker threads: in any order.)
    assert sorted(n.order_ref for n in api.list_notes(a)) == ["A-0", "A-1", "A-2"]
    assert [n.order_ref for n in api.list_notes(b)] == ["B-1"]
    with tenant_session(a) as session:
        assert session.execute(text("SELECT count(*) FROM shopnotes_notes")).scalar() == 3
        assert session.execute(text("SELECT count(*) FROM shopnotes_notes WHERE tenant_id = "
                                    ":b"), {"b": b}).scalar() == 0
        assert session.execute(text("UPDATE shopnotes_notes SET body = 'x' WHERE tenant_id = "
                                    ":b"), {"b": b}).rowcount == 0
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="row-level security"), \
            tenant_session(a) as session:
        session.execute(text("INSERT INTO shopnotes_notes (tenant_id, order_ref, body) "
                             "VALUES (:b, 'forged', 'x')"), {"b": b})
    with psycopg.connect(db.app_url) as conn:  # app_user with no tenant: nothing at all
        assert conn.execute("SELECT count(*) FROM shopnotes_notes").fetchone() == (0,)
    assert db.scalar("SELECT count(*) FROM shopnotes_notes WHERE body = 'x'") == 0

    # 5. A definition naming an actor no module registers, added behind the scheduler's back.
    db.query("INSERT INTO scheduler.recurring (task, actor_name, cron, timezone) VALUES "
             "(%s, 'shopnotes.missing', '* * * * * *', 'UTC') RETURNING 1", (GHOST,))

    # 6. The scheduler: writes the declared task, fires it per shop, refuses the ghost.
    t0 = time.monotonic()
    start_scheduler(db, logs / "scheduler.log", SHOPNOTES_SUMMARY_CRON="* * * * * *")
    wait_for(lambda: all(len(summaries(db).get(t, [])) >= 2 for t in (a, b)), timeout=60,
             message="2 summaries per shop")
    print(f"\nscheduler start -> 2 summaries per shop after {time.monotonic() - t0:.1f}s")
    assert db.query("SELECT actor_name, cron, timezone, enabled, misfire_policy, catch_up_max "
                    "FROM scheduler.recurring WHERE task = 'shopnotes.daily-summary'") == [
        ("shopnotes.summarize", "* * * * * *", None, True, "catch_up", 2)]
    assert {tenant: {n for _, n in rows} for tenant, rows in summaries(db).items()} == {
        a: {3}, b: {1}}  # each summary counted its own shop's notes only
    jobs = {r[0] for r in db.query("SELECT job_id FROM scheduler.jobs")}
    assert {"shopnotes.daily-summary|* * * * * *|UTC",
            "shopnotes.daily-summary|* * * * * *|Asia/Jerusalem"} <= jobs
    assert not any(j.startswith(GHOST) for j in jobs)

    errors = wait_for(lambda: db.scalar("SELECT errors FROM scheduler.health"), timeout=30,
                      message="the leader's report")
    assert errors == GHOST_ERROR
    log = (logs / "scheduler.log").read_text()
    assert log.count(f"event=schedule_refused task={GHOST}") == 1  # once, not every sync
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE actor_name = "
                     "'shopnotes.missing'") == 0

    health = pgjobs(db, "health", "--json")
    assert health.code == 1, health.out
    assert checks(health.json)["scheduler"][0] == "fail"
    assert GHOST_ERROR in checks(health.json)["scheduler"][1]
    assert checks(health.json)["migrations"][0] == "ok"  # both branches at their heads
    listed = pgjobs(db, "recurring", "list", "--json")
    status = {row["task"]: row["status"] for row in listed.json}
    assert status["shopnotes.daily-summary"] == "scheduled"
    assert status[GHOST] == f"refused: {GHOST_ERROR.split(': ', 1)[1]}"

    # 7. The operator removes it: the report clears, health passes, the summaries go on.
    assert pgjobs(db, "recurring", "remove", GHOST).code == 0
    wait_for(lambda: db.scalar("SELECT errors IS NULL FROM scheduler.health"), timeout=30,
             message="the report to clear")
    healthy = pgjobs(db, "health", "--json")
    assert healthy.code == 0, healthy.out
    assert checks(healthy.json)["scheduler"][0] == "ok"
    seen = len(summaries(db)[a])
    wait_for(lambda: len(summaries(db)[a]) > seen, timeout=30, message="one more summary")
    assert f"event=schedule_accepted task={GHOST}" in (logs / "scheduler.log").read_text()


def test_the_example_branch_goes_down_and_up_alone(db: TestDB) -> None:
    assert alembic(db, "upgrade", "heads").code == 0
    ours = {r[0] for r in db.query("SELECT version_num FROM alembic_version")} - {
        "shopnotes_0001"}
    down = alembic(db, "downgrade", "shopnotes@base")
    assert down.code == 0, down.err
    assert {r[0] for r in db.query("SELECT version_num FROM alembic_version")} == ours
    assert db.scalar("SELECT to_regclass('shopnotes_notes')") is None
    assert db.scalar("SELECT count(*) FROM pg_policies WHERE tablename LIKE 'shopnotes_%'") == 0
    # Without the setting, nothing of the example exists for alembic: one head, ours.
    assert alembic(db, "upgrade", "heads", JOBS_MIGRATIONS="").code == 0
    assert {r[0] for r in db.query("SELECT version_num FROM alembic_version")} == ours
    assert alembic(db, "upgrade", "heads").code == 0
    assert db.scalar("SELECT count(*) FROM pg_policies WHERE tablename LIKE 'shopnotes_%'") == 2
