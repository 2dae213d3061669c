"""``/healthz``, ``/readyz`` (database reachable, migrations at head) and unknown routes."""

from __future__ import annotations

from tests.intake.conftest import Intake
from tests.support import TestDB


def test_healthz_and_readyz(db: TestDB, intake: Intake) -> None:
    assert intake.client.get("/healthz").json() == {"status": "ok"}
    ready = intake.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["migrations"] == sorted(intake.state.heads)


def test_readyz_refuses_a_schema_behind_the_code(db: TestDB, intake: Intake) -> None:
    db.query("UPDATE alembic_version SET version_num = '0007' RETURNING 1")
    ready = intake.client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"]
    assert ready.json()["migrations"] == ["0007"] and "alembic upgrade heads" in ready.text


def test_unknown_route_and_method(db: TestDB, intake: Intake) -> None:
    assert intake.client.get("/nope").status_code == 404
    wrong = intake.client.get("/webhooks/test")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
