"""Run each job in its tenant's context and commit its completion with its work.

Before the actor runs, the job's tenant is checked (cached briefly) and a lazy tenant session
is put in the job context. After it: if the actor used the session, the job row is marked
done in that same transaction, so the actor's writes, the jobs it enqueued and its
completion commit together or not at all; on failure everything rolls back.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from dramatiq import Middleware
from psycopg.types.json import Jsonb
from sqlalchemy import Engine, text

from app.broker import queries
from app.broker.message import JobMessage
from app.db.engine import engine_for
from app.jobs.context import JobContext, _current
from app.jobs.errors import TenantUnavailable
from app.jobs.middleware.retries import describe

logger = logging.getLogger(__name__)

_TENANT_STATE = text("SELECT active FROM tenants WHERE id = :tenant")


class TenantContext(Middleware):
    def __init__(self, *, pool_size: int = 10, tenant_cache_seconds: float = 30.0) -> None:
        self._pool_size = pool_size
        self._cache_seconds = tenant_cache_seconds
        self._known: dict[uuid.UUID, float] = {}
        self._lock = threading.Lock()

    def before_process_message(self, broker: Any, message: JobMessage) -> None:
        tenant = message.tenant_id
        actor_options = broker.get_actor(message.actor_name).options
        if tenant is None and not actor_options.get("tenant_free", False):
            message.error = (
                f"TenantMissing: actor {message.actor_name!r} is not tenant_free and the "
                "job has no tenant_id"
            )
        engine = engine_for(broker.url, self._pool_size)
        if tenant is not None and not message.error:
            message.error = self._check_tenant(engine, tenant)
        if message.error:
            message.fail()
            logger.error("event=dead message_id=%s actor=%s queue=%s tenant=%s error=%r",
                         message.message_id, message.actor_name, message.queue_name, tenant,
                         message.error)
            return
        message.context_token = _current.set(JobContext(message, tenant, engine))

    def _check_tenant(self, engine: Engine, tenant: uuid.UUID) -> str | None:
        now = time.monotonic()
        with self._lock:
            if self._known.get(tenant, 0.0) > now:
                return None
        with engine.connect() as conn:
            active = conn.execute(_TENANT_STATE, {"tenant": tenant}).scalar()
        if active is None:
            return f"{TenantUnavailable.__name__}: unknown tenant {tenant}"
        if not active:
            return f"{TenantUnavailable.__name__}: tenant {tenant} is inactive"
        with self._lock:
            self._known[tenant] = now + self._cache_seconds
        return None

    def after_process_message(
        self, broker: Any, message: JobMessage, *, result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        token = getattr(message, "context_token", None)
        if token is None:
            return
        ctx: JobContext = token.var.get()
        _current.reset(token)
        message.context_token = None
        if not ctx.has_session:
            message.result = result
            return
        session = ctx.session
        try:
            if exception is not None or message.failed:
                session.rollback()
                return
            raw = session.connection().connection.driver_connection
            updated = raw.execute(queries.COMPLETE_MANY, {
                "ids": [uuid.UUID(message.message_id)],
                "results": [None if result is None else Jsonb(result)],
                "worker": broker.worker_id,
            }).rowcount
            if updated != 1:
                # Rescued while running (lease lost): another attempt owns the row now, so
                # this attempt's work must not commit.
                session.rollback()
                message.completed = True
                logger.warning("event=lease_lost message_id=%s actor=%s tenant=%s",
                               message.message_id, message.actor_name, message.tenant_id)
                return
            session.commit()
            message.completed = True
        except Exception as exc:
            session.rollback()
            message.commit_error = exc
            logger.warning("event=commit_failed message_id=%s error=%r",
                           message.message_id, describe(exc))
        finally:
            session.close()
