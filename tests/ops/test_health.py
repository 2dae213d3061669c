"""``health``: exit 0 only with the database reachable, migrated, workers alive, queues moving."""

from __future__ import annotations

from collections.abc import Callable

import dramatiq
import pytest

from app.config import get_settings
from tests.ops.rows import add_job, add_worker
from tests.support import Run, TestDB, with_database

Cli = Callable[..., Run]


def checks(run: Run) -> dict[str, str]:
    return {c["name"]: c["status"] for c in run.json["checks"]}


def test_healthy_with_a_live_worker(db: TestDB, worker: dramatiq.Worker, cli: Cli) -> None:
    run = cli("health", "--json")
    assert run.code == 0, run.out
    assert run.json["healthy"] is True
    assert checks(run) == {"database": "ok", "migrations": "ok", "workers": "ok", "queues": "ok"}
    table = cli("health")
    assert table.code == 0 and "healthy" in table.out


def test_no_live_worker_is_unhealthy(db: TestDB, cli: Cli) -> None:
    add_worker(db, heartbeat_age=120)  # registered, but silent for longer than the lease
    run = cli("health", "--json")
    assert run.code == 1
    assert checks(run)["workers"] == "fail"
    assert "0 alive" in cli("health").out


def test_migrations_behind_is_unhealthy(db: TestDB, worker: dramatiq.Worker, cli: Cli) -> None:
    # What health reads: the revision alembic recorded, against the scripts' head.
    db.query("UPDATE alembic_version SET version_num = '0001' RETURNING 1")
    run = cli("health", "--json")
    assert run.code == 1 and checks(run)["migrations"] == "fail"
    assert "database at 0001" in next(
        c["detail"] for c in run.json["checks"] if c["name"] == "migrations")


def test_old_waiting_job_fails_unless_its_queue_is_paused(
    db: TestDB, worker: dramatiq.Worker, cli: Cli
) -> None:
    add_job(db, "waiting", queue="nobody_consumes", age=120)
    run = cli("health", "--max-age", "60s", "--json")
    assert run.code == 1 and checks(run)["queue nobody_consumes"] == "fail"
    assert cli("health", "--max-age", "5m").code == 0
    assert cli("pause", "nobody_consumes").code == 0
    paused = cli("health", "--max-age", "60s", "--json")
    assert paused.code == 0 and checks(paused)["queue nobody_consumes"] == "warn"


def test_unreachable_database_is_unhealthy(
    db: TestDB, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", with_database(db.owner_url, "no_such_database"))
    get_settings.cache_clear()
    run = cli("health", "--json")
    assert run.code == 1 and checks(run) == {"database": "fail"}
