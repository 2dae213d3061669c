"""One firing: the due slot (and missed ones, per the task's policy) for every tenant.

Everything happens in one transaction as ``app_worker``, the scheduler's system role: lock
the schedule's ledger row, decide the slots, enqueue the task's actor for each tenant
through the system enqueue path (``pgjobs.enqueue_for_tenants``: the database writes each
job for the tenant named, and a tenant's job still runs under that tenant's RLS only),
record the last slot. Either all tenants get the slot and the ledger says so, or nothing
happened and the next firing catches up. Two schedulers firing at once serialise on the
ledger row; the unique key per (task, tenant, slot) is the second guard (a restart, an
edited ledger, a split brain).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import ConnectionPool

from app.config import get_settings
from app.db.connections import make_pool
from app.jobs.enqueue import enqueue_for_tenants
from app.scheduler import queries
from app.scheduler.cron import MisfirePolicy, Schedule, slots_to_run

logger = logging.getLogger(__name__)

_pools: dict[str, ConnectionPool] = {}
_pools_lock = threading.Lock()


@dataclass(frozen=True)
class Firing:
    job_id: str
    slots: list[datetime]
    tenants: int = 0
    enqueued: int = 0
    duplicates: int = 0


def slot_key(task: str, tenant: object, slot: datetime) -> str:
    """The unique key of one tenant's run of one slot: UTC, so time zones never alias."""
    return f"{task}:{tenant}:{slot.astimezone(UTC).isoformat()}"


def _actor(actor_name: str) -> Any:
    from app.actors import broker  # configures the broker and registers every actor

    return broker.get_actor(actor_name)


def _pool() -> ConnectionPool:
    url = get_settings().worker_database_url
    with _pools_lock:
        pool = _pools.get(url)
        if pool is None:
            pool = _pools[url] = make_pool(url, name="pgjobs-scheduler-fire", max_size=4)
            pool.open()
        return pool


def close_pools() -> None:
    with _pools_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()


def fire_job(job_id: str, due: datetime | None = None) -> Firing:
    """APScheduler's job function (by reference ``app.scheduler.firing:fire_job``).

    ``due`` is passed by ``SlotExecutor``; APScheduler checks the signature when a job is
    added, without it, so it has a default.
    """
    if due is None:
        raise TypeError("fire_job needs the slot it fires: run it with SlotExecutor")
    return fire(Schedule.from_job_id(job_id), due)


def fire(schedule: Schedule, due: datetime, now: datetime | None = None) -> Firing:
    now = now or datetime.now(UTC)
    job = schedule.job_id
    with _pool().connection() as conn, conn.transaction():
        definition = conn.execute(queries.DEFINITION, {"task": schedule.task}).fetchone()
        if definition is None:
            logger.warning("event=slot_dropped task=%s job=%s reason=definition_deleted",
                           schedule.task, job)
            return Firing(job, [])
        actor_name, policy, catch_up_max, grace, args = definition
        conn.execute(queries.CREATE_LEDGER, {"job": job, "task": schedule.task})
        ledger = conn.execute(queries.LOCK_LEDGER, {"job": job}).fetchone()
        last = ledger[0] if ledger else None
        misfire = MisfirePolicy(policy, catch_up_max, float(grace))
        slots = slots_to_run(schedule.trigger(), last, due, now, misfire)
        if not slots:
            if last is None or due > last:
                conn.execute(queries.RECORD_FIRING, {"job": job, "slot": due, "slots": 0,
                                                     "tenants": 0, "enqueued": 0,
                                                     "duplicates": 0})
                logger.warning("event=slot_skipped task=%s job=%s slot=%s policy=%s",
                               schedule.task, job, due.isoformat(), policy)
            return Firing(job, [])
        actor = _actor(actor_name)
        tenants = [row[0] for row in conn.execute(queries.SCHEDULE_TENANTS, {
            "task": schedule.task, "cron": schedule.cron, "timezone": schedule.timezone,
        })]
        runs = [(tenant, slot) for tenant in tenants for slot in slots]
        results = enqueue_for_tenants(
            conn, actor,
            [(tenant, (), {"slot": slot.astimezone(UTC).isoformat(), **(args or {})})
             for tenant, slot in runs],
            unique_keys=[slot_key(schedule.task, tenant, slot) for tenant, slot in runs],
        ) if runs else []
        duplicates = sum(r.duplicate for r in results)
        enqueued = len(results) - duplicates
        conn.execute(queries.RECORD_FIRING, {
            "job": job, "slot": due, "slots": len(slots), "tenants": len(tenants),
            "enqueued": enqueued, "duplicates": duplicates,
        })
    if len(slots) > 1:
        logger.warning("event=slots_caught_up task=%s job=%s slots=%d first=%s",
                       schedule.task, job, len(slots), slots[0].isoformat())
    logger.info("event=slot_fired task=%s job=%s slot=%s tenants=%d enqueued=%d duplicates=%d",
                schedule.task, job, due.isoformat(), len(tenants), enqueued, duplicates)
    return Firing(job, slots, len(tenants), enqueued, duplicates)
