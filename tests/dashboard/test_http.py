"""The dashboard over HTTP (a real process on 127.0.0.1): sign-in, cookies, rate limits,
bad input, masking, bulk actions in batches and the audit trail."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from psycopg.types.json import Jsonb

from app.dashboard.masking import MASK
from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.dashboard import actors
from tests.dashboard.conftest import (
    OPERATOR,
    OPERATOR_PASSWORD,
    Dash,
    Tenant,
    enqueue_work,
    status_of,
)
from tests.support import TestDB, wait_for

pytestmark = pytest.mark.slow


def csrf_of(client: httpx.Client, path: str = "/queues") -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match, "every signed-in page carries the session's CSRF token"
    return match.group(1)


def make_dead(db: TestDB, tenant: uuid.UUID, count: int, error: str = "ValueError: bad") -> None:
    """``count`` dead letters of ``dash.work`` in one statement (as the broker leaves them)."""
    db.query("""
        INSERT INTO dramatiq.queue (message_id, queue_name, "state", message, tenant_id,
                                    actor_name, attempts, max_attempts, last_error, mtime)
        SELECT id, 'dash', 'rejected', jsonb_build_object(
                   'queue_name', 'dash', 'actor_name', 'dash.work', 'args', jsonb_build_array(0),
                   'kwargs', '{}'::jsonb, 'options', jsonb_build_object('tenant_id', %(t)s::text),
                   'message_id', id, 'message_timestamp', 0),
               %(t)s, 'dash.work', 1, 1, %(error)s, now() - interval '1 minute'
        FROM (SELECT gen_random_uuid() AS id FROM generate_series(1, %(n)s)) ids
        RETURNING 1""", {"t": tenant, "n": count, "error": error})


def test_sign_in_sets_a_signed_httponly_samesite_cookie_and_fails_alike(
    dashboard: Dash, tenants: tuple[Tenant, Tenant]
) -> None:
    client = dashboard.client()
    r = client.post("/login", data={"username": OPERATOR, "password": OPERATOR_PASSWORD})
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie, "served on 127.0.0.1: Secure is off unless configured"
    assert client.get("/queues").status_code == 200
    # A tampered cookie is not a session.
    forged = dashboard.client()
    forged.cookies.set("pgjobs_dashboard", r.cookies["pgjobs_dashboard"][:-4] + "AAAA")
    assert forged.get("/queues").status_code == 303

    unknown = dashboard.client().post("/login", data={"username": "nobody", "password": "x" * 9})
    wrong = dashboard.client().post("/login", data={"username": OPERATOR, "password": "nope1234"})
    assert unknown.status_code == wrong.status_code == 401
    assert "wrong username or password" in unknown.text and "wrong username or password" in \
        wrong.text


def test_secure_cookie_is_the_default_outside_localhost(
    make_dashboard: Callable[..., Dash]
) -> None:
    dash = make_dashboard(DASHBOARD_SECURE_COOKIE="1")
    r = dash.client().post("/login", data={"username": OPERATOR, "password": OPERATOR_PASSWORD})
    assert "secure" in r.headers["set-cookie"].lower()
    from app.dashboard.settings import DashboardSettings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DASHBOARD_HOST", "0.0.0.0")
        mp.setenv("DASHBOARD_SECRET_KEY", "k")
        mp.delenv("DASHBOARD_SECURE_COOKIE", raising=False)
        assert DashboardSettings.from_env().secure_cookie


def test_sign_in_is_rate_limited(dashboard: Dash) -> None:
    client = dashboard.client()
    codes = [client.post("/login", data={"username": OPERATOR, "password": f"wrong-{n}"}
                         ).status_code for n in range(6)]
    assert codes == [401] * 5 + [429]
    # Even the right password waits out the window: guessing cannot go on meanwhile.
    r = client.post("/login", data={"username": OPERATOR, "password": OPERATOR_PASSWORD})
    assert r.status_code == 429 and "try again in" in r.text


def test_bad_input_is_refused_with_the_field_named(dashboard: Dash) -> None:
    client = dashboard.signed_in(OPERATOR, OPERATOR_PASSWORD)
    for path, field in (("/jobs?status=bogus", "status must be one of"),
                        ("/jobs?tenant=not-a-uuid", "tenant must be a UUID"),
                        ("/jobs?since=yesterday", "since must be a date"),
                        ("/jobs?queue=a%20b", "queue must be a queue name"),
                        ("/jobs/123", "job id must be a UUID"),
                        ("/confirm/jobs?action=retry", "no job selected")):
        r = client.get(path)
        assert r.status_code == 400 and field in r.text, path
    token = csrf_of(client)
    r = client.post("/actions/jobs", data={"csrf": token, "action": "retry",
                                           "id": str(uuid.uuid4())})
    assert r.status_code == 404 and "no job with id" in r.text


def test_payload_secrets_are_masked_on_the_job_page(
    db: TestDB, dashboard: Dash, tenants: tuple[Tenant, Tenant]
) -> None:
    acme, _ = tenants
    with tenant_session(acme.id) as session:
        job_id = enqueue(session, actors.work, 0, api_key="sk-live-123",
                         headers={"Authorization": "Bearer abc.def", "X-Trace": "t-1"},
                         smtp={"password": "hunter22", "host": "mail.local"},
                         note="Bearer xyz-token").message_id
    page = dashboard.signed_in(OPERATOR, OPERATOR_PASSWORD).get(f"/jobs/{job_id}").text
    for secret in ("sk-live-123", "abc.def", "hunter22", "xyz-token"):
        assert secret not in page
    assert "mail.local" in page and "t-1" in page
    assert MASK in page


def test_retry_all_matching_runs_in_batches_and_reports_progress(
    db: TestDB, dashboard: Dash, tenants: tuple[Tenant, Tenant]
) -> None:
    acme, globex = tenants
    make_dead(db, acme.id, 1200, "ValueError: upstream said 500")
    make_dead(db, acme.id, 30, "KeyError: other")
    client = dashboard.signed_in(OPERATOR, OPERATOR_PASSWORD)
    confirm = client.get("/confirm/bulk?action=retry&status=dead&queue=dash&error=upstream")
    assert confirm.status_code == 200 and "every" in confirm.text
    token = csrf_of(client, "/confirm/bulk?action=retry&status=dead&queue=dash&error=upstream")
    r = client.post("/actions/bulk", data={"csrf": token, "action": "retry", "status": "dead",
                                           "queue": "dash", "error": "upstream"})
    assert r.status_code == 303 and r.headers["location"].startswith("/bulk/")
    bulk_id = r.headers["location"].rsplit("/", 1)[1]

    def done() -> tuple[str, int, int, int] | None:
        row = db.query("SELECT status, processed, changed, batches FROM dashboard.bulk_actions "
                       "WHERE id = %s", (bulk_id,))[0]
        return row if row[0] != "running" else None

    assert wait_for(done, timeout=60, message="the bulk retry") == ("done", 1200, 1200, 3)
    assert db.scalar("SELECT count(*) FROM jobs.jobs WHERE status = 'waiting'") == 1200
    assert db.scalar("SELECT count(*) FROM jobs.jobs WHERE status = 'dead'") == 30
    page = client.get(f"/bulk/{bulk_id}").text
    assert 'id="bulk-processed">1200<' in page
    # The other tenant's admin cannot open it (an operator's action).
    other = dashboard.signed_in(globex.admin, globex.password)
    assert other.get(f"/bulk/{bulk_id}").status_code == 404
    audit = db.query("SELECT action, outcome FROM dashboard.audit ORDER BY id")
    assert audit == [("retry_all", "started"), ("retry_all", "done")]


def test_a_tenant_admin_bulk_action_stays_in_the_tenant(
    db: TestDB, dashboard: Dash, tenants: tuple[Tenant, Tenant]
) -> None:
    acme, globex = tenants
    mine = enqueue_work(acme.id, 3, delay=3600)
    theirs = enqueue_work(globex.id, 3, delay=3600)
    client = dashboard.signed_in(acme.admin, acme.password)
    token = csrf_of(client)
    r = client.post("/actions/bulk", data={"csrf": token, "action": "cancel",
                                           "status": "delayed", "tenant": str(globex.id)})
    assert r.status_code == 303
    wait_for(lambda: all(status_of(db, j) == "cancelled" for j in mine), timeout=30,
             message="the tenant's own delayed jobs cancelled")
    assert {status_of(db, j) for j in theirs} == {"delayed"}, "a filter naming another "\
        "tenant still acts on the admin's own tenant only"
    # Queue actions are for operators.
    r = client.post("/actions/queue", data={"csrf": token, "action": "pause", "queue": "dash"})
    assert r.status_code == 403
    assert not db.scalar("SELECT count(*) FROM dramatiq.paused_queues")


def test_the_tenant_role_cannot_reach_other_tenants_through_raw_sql(
    db: TestDB, tenants: tuple[Tenant, Tenant]
) -> None:
    """Play the attacker with the connection tenant-admin pages run on (app_user + RLS)."""
    acme, globex = tenants
    make_dead(db, globex.id, 1)
    db.query("INSERT INTO dashboard_job_attempts (message_id, tenant_id, queue, attempt, "
             "outcome, error) SELECT message_id, tenant_id, 'dash', 1, 'dead', 'x' "
             "FROM dramatiq.queue RETURNING 1")
    with tenant_session(acme.id) as session:
        conn = session.connection().connection.driver_connection
        assert conn.execute("SELECT count(*) FROM dramatiq.queue").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM dashboard_job_attempts").fetchone()[0] == 0
        admins = conn.execute("SELECT username FROM dashboard_tenant_admins").fetchall()
        assert admins == [(acme.admin,)]
        # Moving one's own admin into the other tenant is refused by the policy.
        with pytest.raises(Exception, match="row-level security"):
            conn.execute("UPDATE dashboard_tenant_admins SET tenant_id = %s", (globex.id,))
    for table in ("dashboard.audit", "dashboard.bulk_actions"):
        with tenant_session(acme.id) as session:
            conn = session.connection().connection.driver_connection
            with pytest.raises(Exception, match="permission denied"):
                conn.execute(f"SELECT * FROM {table}")
    with tenant_session(acme.id) as session:
        conn = session.connection().connection.driver_connection
        with pytest.raises(Exception, match="permission denied"):
            conn.execute("INSERT INTO dashboard_job_attempts (message_id, tenant_id, queue, "
                         "attempt, outcome) VALUES (gen_random_uuid(), %s, 'q', 1, 'dead')",
                         (acme.id,))


def test_failed_attempts_are_kept_per_attempt(
    db: TestDB, tenants: tuple[Tenant, Tenant], tmp_path: Path
) -> None:
    acme, _ = tenants
    with db.owner() as conn:
        job_id = uuid.uuid4()
        conn.execute("""INSERT INTO dramatiq.queue (message_id, queue_name, "state", message,
                            tenant_id, actor_name, max_attempts)
                        VALUES (%s, 'dash', 'consumed', %s, %s, 'dash.work', 3)""",
                     (job_id, Jsonb({"args": []}), acme.id))
        for n, error in enumerate(("OSError: one", "OSError: two"), start=1):
            conn.execute("""UPDATE dramatiq.queue SET "state" = 'consumed', attempts = %s,
                            started_at = now() WHERE message_id = %s""", (n, job_id))
            conn.execute("""UPDATE dramatiq.queue SET "state" = 'queued', last_error = %s
                            WHERE message_id = %s""", (error, job_id))
        conn.execute("""UPDATE dramatiq.queue SET "state" = 'consumed', attempts = 3
                        WHERE message_id = %s""", (job_id,))
        conn.execute("""UPDATE dramatiq.queue SET "state" = 'done' WHERE message_id = %s""",
                     (job_id,))
    rows = db.query("SELECT attempt, outcome, error FROM dashboard_job_attempts "
                    "WHERE message_id = %s ORDER BY id", (job_id,))
    assert rows == [(1, "retrying", "OSError: one"), (2, "retrying", "OSError: two")]
    db.query("DELETE FROM dramatiq.queue WHERE message_id = %s RETURNING 1", (job_id,))
    assert db.scalar("SELECT count(*) FROM dashboard_job_attempts") == 0, "pruned with the job"
