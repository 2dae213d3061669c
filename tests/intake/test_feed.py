"""The activity feed: transactions committing out of order, and reconnecting with an id."""

from __future__ import annotations

import psycopg

from app.intake import admin, feed
from tests.intake.conftest import Intake, SSEClient
from tests.support import TestDB, wait_for

INSERT = ("INSERT INTO activity_events (tenant_id, event_type, title, source, source_id) "
          "VALUES (pgjobs.current_tenant(), 'note', 'n', 'test', %s) RETURNING seq")


def tenant_conn(db: TestDB, tenant: object) -> psycopg.Connection:
    conn = psycopg.connect(db.app_url)
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
    return conn


def test_a_row_committed_late_is_not_skipped(db: TestDB, intake: Intake) -> None:
    tenant = db.create_tenant()
    engine = intake.state.engine
    cursor = feed.start(engine, tenant, None)
    with tenant_conn(db, tenant) as early, tenant_conn(db, tenant) as late:
        (first,) = early.execute(INSERT, ("first",)).fetchone() or ()
        (second,) = late.execute(INSERT, ("second",)).fetchone() or ()
        late.commit()  # the row with the higher seq commits first
        assert second > first
        rows, pending, _ = feed.read(engine, tenant, cursor)
        # A reader ordering by seq alone would now show 'second' and move past 'first'.
        assert rows == [] and pending
        early.commit()
    rows = wait_for(lambda: feed.read(engine, tenant, cursor)[0],
                    message="both rows to settle")
    assert [r.source_id for r in rows] == ["first", "second"]


def test_reconnecting_with_last_event_id_misses_nothing(db: TestDB, intake: Intake) -> None:
    tenant = db.create_tenant()
    _, token = admin.add_api_token(tenant)
    url = f"{intake.url}/tenants/{tenant}/activity/stream"
    client = SSEClient(url, token)
    assert client.status == 200
    with tenant_conn(db, tenant) as conn:
        for name in ("a", "b", "c"):
            conn.execute(INSERT, (name,))
            conn.commit()
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
    wait_for(lambda: client.source_ids() == ["a", "b", "c"], message="three live events")
    last = client.events[-1]["id"]
    client.close()
    with tenant_conn(db, tenant) as conn:  # while nobody listens
        conn.execute(INSERT, ("d",))
        conn.execute(INSERT, ("e",))
        conn.commit()
    again = SSEClient(url, token, last_event_id=last)
    try:
        wait_for(lambda: again.source_ids() == ["d", "e"], message="the missed events")
        assert all(e["event"] == "activity" for e in again.events)
    finally:
        again.close()
    # An id that is not one of the tenant's own events resumes from now.
    other = db.create_tenant("other")
    with tenant_conn(db, other) as conn:
        (foreign,) = conn.execute(INSERT, ("foreign",)).fetchone() or ()
        conn.commit()
    fresh = SSEClient(url, token, last_event_id=str(foreign))
    try:
        with tenant_conn(db, tenant) as conn:
            conn.execute(INSERT, ("f",))
            conn.commit()
        wait_for(lambda: fresh.source_ids() == ["f"], message="only the new event")
    finally:
        fresh.close()
