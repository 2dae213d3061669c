"""A hostile tenant, through the HTTP API and raw SQL on the connection tenant code holds."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from sqlalchemy import text

from app.db.engine import raw_connection
from app.db.tenant import tenant_session
from app.intake import admin
from tests.intake.conftest import Intake, counts, make_sender, post_signed
from tests.support import TestDB


def test_a_cannot_post_into_bs_endpoint(db: TestDB, intake: Intake) -> None:
    a, b = make_sender(db), make_sender(db)
    # A knows B's endpoint URL but not B's secret: signed with A's own secret it fails.
    forged = post_signed(intake, a, {"event_id": "x"}, path=b.path)
    assert forged.status_code == 401
    # A's endpoint with a payload naming B: stored for A, the tenant comes from the token.
    reply = post_signed(intake, a, {"event_id": "y", "tenant_id": str(b.tenant)})
    assert reply.status_code == 202
    assert db.query("SELECT tenant_id FROM webhook_events") == [(a.tenant,)]
    job_tenants = db.query("SELECT tenant_id FROM dramatiq.queue")
    assert job_tenants == [(a.tenant,)]


def test_a_cannot_block_bs_event_ids(db: TestDB, intake: Intake) -> None:
    a, b = make_sender(db), make_sender(db)
    # A takes B's upcoming event ids first, through the intake and through raw SQL.
    assert post_signed(intake, a, {"event_id": "evt-42"}).status_code == 202
    with tenant_session(a.tenant) as session:
        session.execute(text("INSERT INTO webhook_events (tenant_id, source, external_event_id, "
                             "event_type) VALUES (:t, 'test', 'evt-43', 'x')"), {"t": a.tenant})
    for event_id in ("evt-42", "evt-43"):
        assert post_signed(intake, b, {"event_id": event_id}).status_code == 202
    owners = db.query("SELECT external_event_id, tenant_id FROM webhook_events "
                      "ORDER BY 1, 2::text")
    assert sorted(owners, key=str) == sorted([("evt-42", a.tenant), ("evt-42", b.tenant),
                                              ("evt-43", a.tenant), ("evt-43", b.tenant)],
                                             key=str)


def test_a_cannot_write_rows_for_b_through_raw_sql(db: TestDB, intake: Intake) -> None:
    a, b = make_sender(db), make_sender(db)
    with pytest.raises(Exception, match="row-level security"), \
            tenant_session(a.tenant) as session:
        session.execute(text("INSERT INTO webhook_events (tenant_id, source, external_event_id, "
                             "event_type) VALUES (:t, 'test', 'evt-1', 'x')"), {"t": b.tenant})
    # A secret for B's endpoint: refused (the secret must belong to the endpoint's tenant).
    with pytest.raises(Exception, match=r"foreign key|row-level security"), \
            tenant_session(a.tenant) as session:
        session.execute(text("INSERT INTO webhook_secrets (tenant_id, endpoint_id, sealed) "
                             "VALUES (:t, :e, 'x')"), {"t": a.tenant, "e": b.endpoint_id})
    # Claiming a shop domain or changing routing: A's role cannot write endpoints at all.
    with pytest.raises(Exception, match="permission denied"), \
            tenant_session(a.tenant) as session:
        session.execute(text("INSERT INTO intake.endpoints (tenant_id, source, token_hash, "
                             "external_key) VALUES (:t, 'shopify', 'x', 'b.shop')"),
                        {"t": a.tenant})
    assert counts(db)["webhook_events"] == 0


def test_a_reads_nothing_of_b(db: TestDB, intake: Intake) -> None:
    a, b = make_sender(db), make_sender(db)
    assert post_signed(intake, b, {"event_id": "b-secret-event"}).status_code == 202
    with tenant_session(a.tenant) as session:
        for table in ("webhook_events", "webhook_secrets", "intake.endpoints",
                      "intake.api_tokens", "activity_events"):
            rows = session.execute(text(f"SELECT tenant_id FROM {table}")).all()
            assert all(r[0] == a.tenant for r in rows), table
        # The lookup functions give away a tenant id only to whoever holds the token.
        conn = raw_connection(session)
        assert conn.execute("SELECT * FROM intake.resolve_token('test', %s)",
                            (b"\x00" * 32,)).fetchall() == []
    # The private tables are out of reach of the actor's roles altogether.
    denied = psycopg.errors.InsufficientPrivilege
    with psycopg.connect(db.worker_url) as conn, pytest.raises(denied):
        conn.execute("SELECT * FROM intake.endpoints")


def test_a_cannot_read_bs_feed(db: TestDB, intake: Intake) -> None:
    a, b = db.create_tenant("a"), db.create_tenant("b")
    _, a_token = admin.add_api_token(a)
    _, b_token = admin.add_api_token(b)
    headers = {"Authorization": f"Bearer {a_token}"}
    with intake.client.stream("GET", f"/tenants/{b}/activity/stream", headers=headers) as reply:
        assert reply.status_code == 403
        assert json.loads(reply.read())["error"] == "wrong_tenant"
    for bad in ({}, {"Authorization": "Bearer pgj_forged"}, {"Authorization": b_token}):
        with intake.client.stream("GET", f"/tenants/{b}/activity/stream", headers=bad) as r:
            assert r.status_code == 401, bad
    with intake.client.stream("GET", f"/tenants/{uuid.uuid4()}/activity/stream",
                              headers=headers) as reply:
        assert reply.status_code == 403
