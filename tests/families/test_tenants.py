"""Tenants through the public API and the CLI: create, rename, deactivate, activate, list;
and what deactivation means for a tenant's jobs."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import dramatiq
import pytest

from app import tenants
from app.actors.activity import publish
from app.db.tenant import tenant_session
from app.jobs import enqueue
from tests.support import Run, TestDB, wait_for

Cli = Callable[..., Run]


def test_create_rename_deactivate_activate_and_list(db: TestDB) -> None:
    acme = tenants.create_tenant("  Acme  ", timezone="Europe/Paris")
    assert (acme.name, acme.timezone, acme.active) == ("Acme", "Europe/Paris", True)
    other = tenants.create_tenant("Other")
    assert other.timezone == "UTC"

    assert tenants.rename_tenant(acme.id, "Acme Ltd").name == "Acme Ltd"
    change = tenants.deactivate_tenant(acme.id)
    assert change.changed and not change.tenant.active
    assert not tenants.deactivate_tenant(acme.id).changed  # already inactive: nothing to do
    assert [t.id for t in tenants.list_tenants(active=False)] == [acme.id]
    assert [t.id for t in tenants.list_tenants(active=True)] == [other.id]
    assert tenants.activate_tenant(acme.id).changed
    assert [(t.id, t.name, t.active) for t in tenants.list_tenants()] == [
        (acme.id, "Acme Ltd", True), (other.id, "Other", True)]
    # The same rows application code and workers see.
    assert db.query("SELECT name, timezone, active FROM tenants ORDER BY created_at") == [
        ("Acme Ltd", "Europe/Paris", True), ("Other", "UTC", True)]


@pytest.mark.parametrize(("name", "timezone", "error"), [
    ("", "UTC", "must not be empty"),
    ("   ", "UTC", "must not be empty"),
    ("x" * 201, "UTC", "at most 200"),
    ("bad\nname", "UTC", "control characters"),
    ("ok", "Mars/Olympus_Mons", "unknown time zone 'Mars/Olympus_Mons'"),
])
def test_bad_names_and_time_zones_are_refused_naming_the_problem(
    db: TestDB, name: str, timezone: str, error: str
) -> None:
    with pytest.raises(tenants.TenantError, match=error):
        tenants.create_tenant(name, timezone=timezone)
    assert db.scalar("SELECT count(*) FROM tenants") == 0


def test_unknown_tenants_are_reported(db: TestDB) -> None:
    missing = uuid.uuid4()
    for call in (lambda: tenants.rename_tenant(missing, "x"),
                 lambda: tenants.deactivate_tenant(missing),
                 lambda: tenants.activate_tenant(missing),
                 lambda: tenants.get_tenant(missing)):
        with pytest.raises(tenants.TenantNotFound, match=str(missing)):
            call()


def test_the_cli_manages_tenants_with_exit_codes(db: TestDB, cli: Cli) -> None:
    created = cli("tenants", "create", "Shop One", "--timezone", "America/New_York")
    assert created.code == 0
    tenant = uuid.UUID(created.out.strip())  # the id alone: scripts capture it
    assert cli("tenants", "rename", tenant, "Shop 1").code == 0
    off = cli("tenants", "deactivate", tenant, "--json")
    assert off.code == 0 and off.json["active"] is False and off.json["changed"] is True
    again = cli("tenants", "deactivate", tenant)
    assert again.code == 0 and "already inactive" in again.out
    assert cli("tenants", "list", "--inactive", "--json").json[0]["id"] == str(tenant)
    assert cli("tenants", "activate", tenant).code == 0
    listed = cli("tenants", "list", "--json").json
    assert [(t["name"], t["timezone"], t["active"]) for t in listed] == [
        ("Shop 1", "America/New_York", True)]
    table = cli("tenants", "list")
    assert table.code == 0 and "Shop 1" in table.out and str(tenant) in table.out

    bad_zone = cli("tenants", "create", "x", "--timezone", "Nowhere/City")
    assert bad_zone.code == 2 and "unknown time zone 'Nowhere/City'" in bad_zone.err
    assert cli("tenants", "create", "").code == 2
    assert cli("tenants", "rename", "not-a-uuid", "x").code == 2
    unknown = cli("tenants", "activate", uuid.uuid4())
    assert unknown.code == 3 and "no tenant" in unknown.err
    assert db.scalar("SELECT count(*) FROM tenants") == 1


def _activity(tenant: uuid.UUID, n: int) -> dict[str, object]:
    return {"tenant_id": str(tenant), "event_type": "test", "title": f"activity {n}",
            "source": "test", "source_id": str(n)}


def test_a_deactivated_tenants_jobs_are_refused_and_run_again_once_reactivated(
    db: TestDB, worker: dramatiq.Worker
) -> None:
    tenant = tenants.create_tenant("paused customer")
    tenants.deactivate_tenant(tenant.id)
    with tenant_session(tenant.id) as session:
        refused = enqueue(session, publish, _activity(tenant.id, 1)).message_id
    wait_for(lambda: db.scalar("SELECT state::text FROM dramatiq.queue WHERE message_id = %s",
                               (refused,)) == "rejected", message="the job to be refused")
    assert db.scalar("SELECT last_error FROM dramatiq.queue WHERE message_id = %s",
                     (refused,)) == f"TenantUnavailable: tenant {tenant.id} is inactive"

    tenants.activate_tenant(tenant.id)
    with tenant_session(tenant.id) as session:
        runs = enqueue(session, publish, _activity(tenant.id, 2)).message_id
    wait_for(lambda: db.scalar("SELECT state::text FROM dramatiq.queue WHERE message_id = %s",
                               (runs,)) == "done", message="the job to run")
