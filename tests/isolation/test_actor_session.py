"""A hostile tenant's actor, on its own ``current_session()`` and through the public API.

Tenant A's job tries everything against tenant B (reads of jobs, arguments, results,
progress, tenants, schedules and rows; writes; the database's own functions; a forged
tenant setting; sending and enqueueing for B): it sees nothing of B, every write is
refused, and nothing ever runs as B. The database decides, so the same holds for code we
did not write.
"""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq

from app.db.tenant import tenant_session
from app.jobs import enqueue, get_result, wait_for_results
from tests.isolation import actors
from tests.isolation.conftest import Victim
from tests.support import TestDB, wait_for

PERMISSION_DENIED = "42501"


def run_attack(db: TestDB, attacker: uuid.UUID, victim: Victim) -> dict[str, Any]:
    with tenant_session(attacker) as session:
        job = enqueue(session, actors.attack, victim.as_payload()).message_id
    wait_for_results([job], timeout=30, tenant=attacker)
    report = get_result(job, tenant=attacker)
    assert report["tenant"] == str(attacker)
    return report


def test_reads_of_another_tenants_rows_return_nothing(
    db: TestDB, attacker: uuid.UUID, victim: Victim, isolation_worker: dramatiq.Worker
) -> None:
    reads = run_attack(db, attacker, victim)["reads"]
    # The queue counts are A's own: the attack job itself, running.
    assert reads.pop("queue_stats") == [[1]]
    # Every other read ran (none was refused) and none saw anything of B.
    assert {name: rows for name, rows in reads.items() if rows != []} == {}


def test_writes_for_another_tenant_and_the_internal_functions_are_refused(
    db: TestDB, attacker: uuid.UUID, victim: Victim, isolation_worker: dramatiq.Worker
) -> None:
    writes = run_attack(db, attacker, victim)["writes"]
    # The job table has no INSERT, UPDATE or DELETE for actor sessions; the broker's and the
    # owner's functions cannot be called; a tenant option is refused by the insert path.
    for name in ("update", "delete", "insert_for_b", "insert_running_own", "enqueue_for_tenants",
                 "lease_token", "keys", "internal_cancel", "internal_rerun", "tenants_update",
                 "started_between"):
        assert writes[name] == {"refused": PERMISSION_DENIED}, name
    assert writes["enqueue_with_tenant_option"] == {"refused": "22023"}
    assert writes["fan_out"] == {"refused": PERMISSION_DENIED}  # not a system job
    assert writes["enter_b_job"] == {"refused": "PJ001"}  # no lease of B's job
    assert writes["complete_b_job"] == {"refused": "PJ001"}
    assert writes["complete_b_job_started"] == {"refused": "PJ001"}  # a start does not help
    # The tenant-scoped control functions act on the caller's tenant only: B's ids are
    # simply not there.
    assert writes["cancel_b_jobs"] == [] and writes["retry_b_jobs"] == []
    # Row-Level Security refuses a row for B, and moving A's rows to B, as errors.
    assert writes["activity_own"] == {"rowcount": 1}
    assert writes["activity_for_b"] == {"refused": PERMISSION_DENIED}
    assert writes["move_own_to_b"] == {"refused": PERMISSION_DENIED}
    # B's jobs are untouched.
    states = dict(db.query('SELECT message_id::text, "state"::text FROM dramatiq.queue '
                           "WHERE tenant_id = %s", (victim.tenant,)))
    assert states == {victim.jobs["waiting"]: "queued", victim.jobs["dead"]: "rejected",
                      victim.jobs["completed"]: "done", victim.jobs["running"]: "consumed"}
    assert db.scalar("SELECT count(*) FROM activity_events WHERE tenant_id = %s",
                     (victim.tenant,)) == 1


def test_a_forged_tenant_setting_is_no_tenant_at_all(
    db: TestDB, attacker: uuid.UUID, victim: Victim, isolation_worker: dramatiq.Worker
) -> None:
    forged = run_attack(db, attacker, victim)["forged_context"]
    # With app.tenant_id set to B by hand, the signature no longer matches: no tenant, so
    # nothing is visible (not even A's own rows) and nothing can be written or enqueued.
    assert forged["current_tenant"] is None
    assert (forged["b_jobs"], forged["activity"], forged["tenants"]) == (0, 0, 0)
    assert forged["insert_as_b"] == {"refused": PERMISSION_DENIED}
    assert forged["enqueue_as_b"]["refused"] == "EnqueueRefused"
    assert "no tenant in this transaction" in forged["enqueue_as_b"]["message"]


def test_sending_and_enqueueing_from_a_job_is_bound_to_its_tenant(
    db: TestDB, attacker: uuid.UUID, victim: Victim, isolation_worker: dramatiq.Worker
) -> None:
    api = run_attack(db, attacker, victim)["api"]
    assert api["send_with_tenant_option"]["refused"] == "EnqueueRefused"
    assert "tenant_id is not an option" in api["send_with_tenant_option"]["message"]
    assert api["fan_out_from_a_tenant_job"]["refused"] == "EnqueueRefused"
    assert api["get_b_job"]["refused"] == "JobNotFound"
    assert api["reschedule_b_job"]["refused"] == "LookupError"
    assert set(api["cancel_b_jobs"]["ok"].values()) == {"missing"}
    assert api["retry_b_dead"]["ok"] == {victim.jobs["dead"]: "missing"}
    # What A enqueues and sends from its job belongs to A, and runs as A.
    bound = [api["enqueue_is_bound_to_us"]["ok"], api["send_is_bound_to_us"]["ok"]]
    wait_for(lambda: db.scalar("SELECT count(*) FROM isolation_runs WHERE message_id::text "
                               "= ANY(%s)", (bound,)) == 2, message="A's own jobs to run")
    assert {str(t) for (t,) in db.query(
        "SELECT DISTINCT tenant_id_seen FROM isolation_runs")} == {str(attacker)}
    assert db.scalar("SELECT count(*) FROM dramatiq.queue WHERE tenant_id = %s "
                     "AND actor_name = 'isolation.mark'", (victim.tenant,)) == 0
    # Sending a system (tenant_free) actor from a tenant's job makes a job of that tenant,
    # not a system job: it gains no system power (fan_out needs a real system job).
    system = api["system_job_from_a_tenant_job"]["ok"]
    assert db.scalar("SELECT tenant_id FROM dramatiq.queue WHERE message_id = %s",
                     (system,)) == attacker
