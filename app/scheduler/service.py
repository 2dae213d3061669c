"""The scheduler process: stand by until the leader lock is ours, then lead.

The leader runs an APScheduler 3 BackgroundScheduler on the PostgreSQL job store and
re-reads the definitions every ``sync_seconds``: new schedules are added, edited or removed
ones dropped, so table edits apply without a restart. A definition naming an actor this
process did not register (``app.actors`` plus ``JOBS_MODULES``) or a cron that does not
parse is skipped and reported (log, ``scheduler.health.errors``), the others fire. On
taking the lead it first writes the tasks declared in code (``recurring()``) to the
definitions table. On taking over, a schedule whose
stored next fire time ran ahead of the ledger (the old leader died between advancing it and
committing the firing) is rewound, so that slot is fired as its misfire policy says.

The leader lock is a session advisory lock: behind a transaction pooler it is taken on the
owner's direct URL (``DATABASE_DIRECT_URL``), and the process refuses to start without one.
Everything else (heartbeats, the job store, firings) is short transactions, pooled or not.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import create_engine

from app.config import get_settings
from app.db.connections import connect, pooler_kwargs, session_url
from app.db.engine import sqlalchemy_url
from app.maintenance.leader import DedicatedSession, Leadership
from app.scheduler import queries
from app.scheduler.declarations import write_declared
from app.scheduler.definitions import load_schedules, task_of
from app.scheduler.executor import SlotExecutor
from app.scheduler.health import Instance
from app.scheduler.settings import SchedulerSettings

logger = logging.getLogger(__name__)

FIRE_JOB = "app.scheduler.firing:fire_job"


class SchedulerService:
    def __init__(self, settings: SchedulerSettings | None = None) -> None:
        self.settings = settings or SchedulerSettings.from_env()
        self.stopping = threading.Event()
        app_settings = get_settings()
        self._owner_url = app_settings.database_url
        self._worker_url = app_settings.worker_database_url
        self._lock_url = session_url(self._owner_url, "the scheduler's leader lock")
        self._conns: dict[str, psycopg.Connection[Any]] = {}
        self._instance: Instance | None = None
        #: Actor names registered in this process (set once ``app.actors`` is imported).
        self._actors: frozenset[str] | None = None
        #: Declared tasks not yet written to the table since this process took the lead.
        self._declare_pending = True
        #: Problems already logged, so each is logged when it appears and when it clears.
        self._reported: set[str] = set()

    def stop(self) -> None:
        self.stopping.set()

    # -- connections ----------------------------------------------------------------------

    def _conn(self, url: str) -> psycopg.Connection[Any]:
        conn = self._conns.get(url)
        if conn is None or conn.closed or conn.broken:
            conn = self._conns[url] = connect(url, name="pgjobs-scheduler")
        return conn

    def _close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def _beat(self, role: str, **kwargs: Any) -> None:
        try:
            if self._instance is None:
                self._instance = Instance(self._conn(self._owner_url))
            self._instance.heartbeat(role, **kwargs)
        except psycopg.Error as exc:
            logger.warning("event=heartbeat_failed error=%r", exc)
            self._instance = None

    # -- the process ----------------------------------------------------------------------

    def load_actors(self) -> frozenset[str]:
        """Import the broker and every actor, the user's too (``JOBS_MODULES``), and the
        recurring tasks declared beside them; the names of the registered actors.

        A module that cannot be imported, or whose ``recurring()`` is refused, raises here
        (ImportError or ValueError, naming it), before this process takes any lock.
        """
        if self._actors is None:
            from app.actors import broker

            self._actors = frozenset(broker.get_declared_actors())
        return self._actors

    def run(self) -> None:
        self.load_actors()
        session = DedicatedSession(self._lock_url, "pgjobs-scheduler-lock")
        lock = Leadership(self.settings.lock_key, session, lambda: session.generation)
        logger.info("event=scheduler_started sync_seconds=%s lock_retry_seconds=%s",
                    self.settings.sync_seconds, self.settings.lock_retry_seconds)
        try:
            self._beat("standby")
            while not self.stopping.is_set():
                if lock.attempt():
                    self._lead(lock)
                else:
                    self._beat("standby")
                    self.stopping.wait(self.settings.lock_retry_seconds)
        finally:
            lock.resign()
            session.close()
            if self._instance is not None:
                try:
                    self._instance.unregister()
                except psycopg.Error:
                    pass
            self._close()
            logger.info("event=scheduler_stopped")

    def _lead(self, lock: Leadership) -> None:
        started = time.monotonic()
        try:
            if self._instance is None:
                self._instance = Instance(self._conn(self._owner_url))
            self._instance.take_over()
        except psycopg.Error as exc:
            logger.warning("event=takeover_failed error=%r", exc)
        engine = create_engine(sqlalchemy_url(self._owner_url), pool_size=2, max_overflow=2,
                               pool_pre_ping=True,
                               connect_args=pooler_kwargs(self._owner_url))
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(
                engine=engine, tablename="apscheduler_jobs", tableschema="scheduler")},
            executors={"default": SlotExecutor(self.settings.fire_threads)},
            # Coalesced: the executor hands the latest due slot to the firing, which adds
            # missed slots from the ledger as the task's misfire policy says.
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=UTC,
        )
        scheduler.start(paused=True)
        self._declare_pending = True
        self._reported = set()
        try:
            self._sync(scheduler, takeover=True)
            scheduler.resume()
            logger.info("event=leader_elected instance=%s ready_ms=%d",
                        self._instance.id if self._instance else None,
                        (time.monotonic() - started) * 1000)
            while not self.stopping.wait(self.settings.sync_seconds):
                if not lock.attempt():
                    logger.error("event=leadership_lost reason=lock_connection_dropped")
                    break
                self._sync(scheduler)
        finally:
            # Firings in flight finish (short transactions) before the lock is given up.
            scheduler.shutdown(wait=True)
            engine.dispose()
            lock.resign()

    def _sync(self, scheduler: BackgroundScheduler, *, takeover: bool = False) -> None:
        try:
            if self._declare_pending:
                write_declared(self._conn(self._owner_url))
                self._declare_pending = False
            schedules, errors = load_schedules(self._conn(self._worker_url), self._actors)
            self._report(errors)
            wanted = {s.job_id: s for s in schedules}
            existing = {job.id: job for job in scheduler.get_jobs()}
            for job_id in existing.keys() - wanted.keys():
                scheduler.remove_job(job_id)
                logger.info("event=schedule_removed job=%s", job_id)
            owner = self._conn(self._owner_url)
            owner.execute(queries.FORGET_LEDGER, {"keep": list(wanted)})
            if takeover:
                self._rewind(scheduler, owner)
            for job_id in wanted.keys() - existing.keys():
                schedule = wanted[job_id]
                scheduler.add_job(FIRE_JOB, trigger=schedule.trigger(), args=[job_id],
                                  id=job_id, name=schedule.task, replace_existing=True)
                logger.info("event=schedule_added job=%s", job_id)
            self._beat("leader", synced=True, error="; ".join(errors) or None)
        except Exception as exc:
            logger.exception("event=sync_failed error=%r", exc)
            self._beat("leader", error=f"sync failed: {exc!r}"[:1000])

    def _report(self, errors: list[str]) -> None:
        """Log each refused definition once when it appears, and once when it is fixed."""
        current = set(errors)
        for error in sorted(current - self._reported):
            logger.error("event=schedule_refused task=%s reason=%r", task_of(error),
                         error.split(": ", 1)[-1])
        for error in sorted(self._reported - current):
            logger.info("event=schedule_accepted task=%s was=%r", task_of(error), error)
        self._reported = current

    def _rewind(self, scheduler: BackgroundScheduler, owner: psycopg.Connection[Any]) -> None:
        for job in scheduler.get_jobs():
            row = owner.execute(queries.LAST_SLOT, {"job": job.id}).fetchone()
            last: datetime | None = row[0] if row else None
            if last is None:
                continue
            after = job.trigger.get_next_fire_time(last, last + timedelta(microseconds=1))
            if after is not None and (job.next_run_time is None or after < job.next_run_time):
                scheduler.modify_job(job.id, next_run_time=after)
                logger.warning("event=schedule_rewound job=%s next_fire_at=%s",
                               job.id, after.isoformat())
