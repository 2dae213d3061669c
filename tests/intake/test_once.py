"""Stored once: 50 copies at once make one row and one job; a forged one touches nothing;
a database that is down gives 503 with Retry-After, and the intake recovers by itself."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from psycopg import sql

from tests.intake.conftest import Intake, counts, make_sender, post_signed
from tests.support import TestDB, wait_for


def test_fifty_concurrent_copies_make_one_row_and_one_job(db: TestDB, intake: Intake) -> None:
    sender = make_sender(db)
    start = threading.Barrier(50)

    def deliver(_: int) -> int:
        start.wait(timeout=30)
        return post_signed(intake, sender, {"event_id": "same", "n": 1}).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = sorted(pool.map(deliver, range(50)))
    assert codes == [200] * 49 + [202]
    assert counts(db) == {"webhook_events": 1, "jobs": 1, "activity_events": 0}


def _cut_off(db: TestDB, allow: bool) -> None:
    """Let app_user connect to the test's database, or not (and drop its sessions)."""
    with db.owner() as conn:
        verb = "GRANT" if allow else "REVOKE"
        conn.execute(sql.SQL(verb + " CONNECT ON DATABASE {} " +
                             ("TO" if allow else "FROM") + " PUBLIC").format(
            sql.Identifier(db.name)))
        if not allow:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND usename = 'app_user'")


def test_forged_signature_writes_nothing_and_needs_no_database(
    db: TestDB, intake: Intake
) -> None:
    sender = make_sender(db)
    before = counts(db)
    for i in range(20):
        assert post_signed(intake, sender, {"event_id": f"f-{i}"},
                           secret="forged-secret").status_code == 401
    assert counts(db) == before
    # With the endpoint's credentials known to the process, a forged request is refused
    # without the database at all: even when the database cannot be reached.
    _cut_off(db, allow=False)
    try:
        assert post_signed(intake, sender, {"event_id": "f-x"},
                           secret="forged-secret").status_code == 401
        down = post_signed(intake, sender, {"event_id": "good-while-down"})
        assert down.status_code == 503, down.text
        assert down.headers["Retry-After"] == str(intake.state.settings.retry_after_seconds)
        assert down.json()["error"] == "database_unavailable"
        ready = intake.client.get("/readyz")
        assert ready.status_code == 503 and "Retry-After" in ready.headers
    finally:
        _cut_off(db, allow=True)
    assert counts(db) == before
    # Back up: the sender's retry is accepted, without restarting anything.
    wait_for(lambda: post_signed(intake, sender, {"event_id": "good-while-down"}
                                 ).status_code == 202, message="the intake to recover")
    assert counts(db)["webhook_events"] == 1


def test_forged_signature_cold_cache_never_writes(db: TestDB, intake: Intake) -> None:
    """Even with nothing cached, a forged request only reads: with every write taken from
    the intake's role it still gets its 401, where a write attempt would fail the request."""
    sender = make_sender(db)
    intake.state.credentials.invalidate(None)
    tables = "webhook_events, activity_events, webhook_secrets, dramatiq.queue"
    with db.owner() as conn:
        conn.execute(f"REVOKE INSERT, UPDATE, DELETE ON {tables} FROM app_user")
    try:
        reply = post_signed(intake, sender, {"event_id": "f"}, secret="forged")
        assert reply.status_code == 401, reply.text
    finally:
        with db.owner() as conn:
            conn.execute(f"GRANT INSERT, UPDATE, DELETE ON {tables} TO app_user")
    assert counts(db) == {"webhook_events": 0, "jobs": 0, "activity_events": 0}
