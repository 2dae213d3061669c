"""A hostile tenant through application code's own connection (``app_user``), raw SQL and API.

Application code names its tenant (it authenticated the request), so these attacks run in
tenant A's transaction: B's jobs, results, rows and schedules are invisible, no job row can
be written directly, and the one insert path takes the tenant from the transaction, forces
every execution column and refuses the options a tenant must not steer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors

from app.actors import webhooks
from app.db.tenant import tenant_session
from app.jobs import (
    EnqueueRefused,
    JobNotFound,
    JobsTimeout,
    cancel,
    enqueue,
    get_job,
    reschedule,
    retry_dead,
    wait_for_results,
)
from tests.isolation import actors
from tests.isolation.conftest import Victim, event
from tests.support import TestDB


@pytest.fixture
def as_a(db: TestDB, attacker: uuid.UUID) -> Iterator[psycopg.Connection[Any]]:
    """Raw SQL on application code's connection, in tenant A's transaction."""
    with psycopg.connect(db.app_url) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(attacker),))
        yield conn


def message(**options: Any) -> str:
    return json.dumps({"queue_name": actors.QUEUE, "actor_name": "isolation.mark",
                       "args": ["raw"], "kwargs": {}, "options": options,
                       "message_id": str(uuid.uuid4()), "message_timestamp": 0})


ENQUEUE = "SELECT * FROM pgjobs.enqueue(ARRAY[%s::jsonb], ARRAY[NULL::float8])"


def test_without_a_tenant_nothing_is_visible(db: TestDB, victim: Victim) -> None:
    with psycopg.connect(db.app_url) as conn:
        for table in ("dramatiq.queue", "jobs.jobs", "tenants", "activity_events",
                      "webhook_events", "users", "scheduler.tenant_overrides"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table
        with pytest.raises(errors.InsufficientPrivilege, match="no tenant"):
            conn.execute(ENQUEUE, (message(),))


@pytest.mark.parametrize("query", [
    "SELECT message_id FROM dramatiq.queue WHERE tenant_id = %(b)s",
    "SELECT message_id FROM dramatiq.queue WHERE message_id = ANY(%(ids)s::uuid[])",
    "SELECT args FROM jobs.jobs WHERE tenant_id = %(b)s",
    "SELECT result FROM jobs.recent WHERE message_id = ANY(%(ids)s::uuid[])",
    "SELECT message_id FROM jobs.failed WHERE tenant_id = %(b)s",
    "SELECT message_id FROM jobs.active WHERE tenant_id = %(b)s",
    "SELECT tenant_id FROM jobs.by_tenant WHERE tenant_id = %(b)s",
    "SELECT id FROM tenants WHERE id = %(b)s",
    "SELECT tenant_id FROM scheduler.tenant_overrides WHERE tenant_id = %(b)s",
    "SELECT id FROM activity_events WHERE tenant_id = %(b)s",
    "SELECT id FROM users WHERE tenant_id = %(b)s",
])
def test_reads_of_another_tenant_return_nothing(
    as_a: psycopg.Connection[Any], victim: Victim, query: str
) -> None:
    params = {"b": victim.tenant, "ids": list(victim.jobs.values())}
    assert as_a.execute(query, params).fetchall() == []


@pytest.mark.parametrize("statement", [
    "INSERT INTO dramatiq.queue (message_id, queue_name, state, message, tenant_id) "
    "VALUES (gen_random_uuid(), 'x', 'queued', '{}', %(b)s)",
    "INSERT INTO dramatiq.queue (message_id, queue_name, state, message, tenant_id, limit_key) "
    "VALUES (gen_random_uuid(), 'x', 'consumed', '{}', %(a)s, %(b)s || '/')",
    "UPDATE dramatiq.queue SET last_error = 'x'",
    "DELETE FROM dramatiq.queue",
    "SELECT * FROM pgjobs.enqueue_for_tenants(ARRAY['{}'::jsonb], ARRAY[NULL::float8], "
    "ARRAY[%(b)s::uuid])",
    "SELECT * FROM pgjobs.fan_out(ARRAY['{}'::jsonb], ARRAY[NULL::float8], ARRAY[%(b)s::uuid])",
    "SELECT * FROM pgjobs._insert(ARRAY['{}'::jsonb], ARRAY[NULL::float8], ARRAY[%(b)s::uuid])",
    "SELECT * FROM pgjobs.enter_job(%(b)s, 'guess')",
    "SELECT pgjobs.complete_job(%(b)s, 'guess', NULL)",
    "SELECT pgjobs.complete_job(%(b)s, 'guess', NULL, now())",
    "SELECT pgjobs.started_between(now(), now())",
    "SELECT pgjobs.lease_token(%(b)s, 1, NULL)",
    "SELECT * FROM pgjobs.keys",
    "SELECT * FROM pgjobs._cancel(ARRAY[%(b)s::uuid], 'x', NULL)",
    "UPDATE tenants SET active = false WHERE id = %(b)s",
])
def test_writes_and_the_broker_functions_are_refused(
    db: TestDB, as_a: psycopg.Connection[Any], attacker: uuid.UUID, victim: Victim,
    statement: str,
) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        as_a.execute(statement, {"a": attacker, "b": victim.tenant})
    assert db.scalar('SELECT count(*) FROM dramatiq.queue WHERE "state" = \'queued\'') == 1


@pytest.mark.parametrize(("options", "refusal"), [
    ({"tenant_id": "someone else"}, "option 'tenant_id' is not accepted"),
    ({"pipe_target": {"actor_name": "isolation.mark"}}, "option 'pipe_target'"),
    ({"on_success": "isolation.mark"}, "option 'on_success'"),
    ({"on_failure": "isolation.mark"}, "option 'on_failure'"),
    ({"eta": 0}, "option 'eta'"),
    ({"priority": "high"}, "priority must be an integer"),
    ({"max_attempts": 10_000}, "max_attempts must be an integer from 1 to 1000"),
    ({"limit_key": ""}, "limit_key must be a string of 1 to 500"),
])
def test_the_insert_path_refuses_options_a_tenant_must_not_steer(
    as_a: psycopg.Connection[Any], options: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(errors.InvalidParameterValue, match=refusal):
        as_a.execute(ENQUEUE, (message(**options),))


def test_execution_columns_are_forced_and_the_tenant_is_the_transactions(
    db: TestDB, as_a: psycopg.Connection[Any], attacker: uuid.UUID, victim: Victim
) -> None:
    # A message may say anything; the row is derived from it and its execution columns
    # take their initial values, for the transaction's tenant.
    body = json.loads(message(priority=5, limit_key=f"{victim.tenant}/"))
    body["state"], body["attempts"], body["result"] = "consumed", 7, "done"
    (job_id, existing), = as_a.execute(ENQUEUE, (json.dumps(body),)).fetchall()
    as_a.commit()
    assert existing is None
    row = db.query('SELECT tenant_id, "state"::text, attempts, worker_id, started_at, "result", '
                   "limit_key, priority FROM dramatiq.queue WHERE message_id = %s", (job_id,))
    # The limit key is scoped to A: A can only ever name a key of its own.
    assert row == [(attacker, "queued", 0, None, None, None, f"{attacker}/{victim.tenant}/", 5)]


def test_the_api_binds_every_job_to_the_callers_tenant(
    db: TestDB, attacker: uuid.UUID, victim: Victim
) -> None:
    with tenant_session(attacker) as session:
        mine = enqueue(session, webhooks.process, event("a-1")).message_id
        with pytest.raises(EnqueueRefused, match="tenant_id is not an option"):
            webhooks.process.send_with_options(args=(event("a-2"),), tenant_id=victim.tenant)
        with pytest.raises(EnqueueRefused, match="option 'pipe_target' is not supported"):
            webhooks.process.send_with_options(args=(event("a-3"),),
                                               pipe_target={"actor_name": "isolation.mark"})
    assert db.scalar("SELECT tenant_id FROM dramatiq.queue WHERE message_id = %s",
                     (mine,)) == attacker


def test_reads_and_control_by_id_are_tenant_reads(
    db: TestDB, attacker: uuid.UUID, victim: Victim
) -> None:
    completed, waiting, dead = (victim.jobs[k] for k in ("completed", "waiting", "dead"))
    with pytest.raises(JobNotFound):
        get_job(completed, tenant=attacker)
    with pytest.raises(JobsTimeout) as timed_out:
        wait_for_results([completed], timeout=0.3, tenant=attacker)
    assert timed_out.value.pending == {completed}
    with tenant_session(attacker) as session:
        with pytest.raises(JobNotFound):
            get_job(completed, db=session)
        with pytest.raises(LookupError):
            cancel(session, waiting)
        with pytest.raises(LookupError):
            reschedule(session, waiting, delay=0)
        assert retry_dead(session, [dead]) == {dead: "missing"}
    # Without naming a tenant (or operator=True) a read by id is refused, not widened.
    with pytest.raises(TypeError, match="tenant read"):
        get_job(completed)
    assert get_job(completed, operator=True).status == "completed"
    assert db.query('SELECT "state"::text, queue_name FROM dramatiq.queue WHERE message_id = %s',
                    (waiting,)) == [("queued", "webhooks.DQ")]
