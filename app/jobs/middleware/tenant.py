"""Run each job in its tenant's context and commit its completion with its work.

Before the actor runs, the job's tenant is checked (cached briefly) and a lazy tenant session
is put in the job context. After it: if the actor used the session, the job row is marked
done in that same transaction, so the actor's writes, the jobs it enqueued and its
completion commit together or not at all; on failure everything rolls back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from typing import Any, ClassVar

from dramatiq import Middleware
from psycopg.types.json import Jsonb
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.broker import queries
from app.broker.message import JobMessage
from app.db.engine import engine_for, raw_connection
from app.db.tenant import bind_tenant
from app.jobs.context import JobContext, _current
from app.jobs.errors import TenantUnavailable
from app.jobs.hooks import FailedAttempt, describe

logger = logging.getLogger(__name__)

_TENANT_STATE = text("SELECT active FROM tenants WHERE id = :tenant")


class TenantContext(Middleware):
    actor_options: ClassVar[set[str]] = {"on_failure"}

    def before_declare_actor(self, broker: Any, actor: Any) -> None:
        hook = actor.options.get("on_failure")
        if hook is not None and not callable(hook):
            raise TypeError(f"actor {actor.actor_name!r}: on_failure must be a function "
                            f"(session, FailedAttempt), got {hook!r}")

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
            message.fail()  # the events middleware logs it as dead, with this error
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
        token = message.context_token
        if token is None:
            return
        ctx: JobContext = token.var.get()
        _current.reset(token)
        message.context_token = None
        try:
            self._finish(broker, message, ctx, result, exception)
        finally:
            failure = exception or message.commit_error
            if failure is not None and not message.lease_lost:
                self._on_failure(broker, message, ctx, failure)

    def _on_failure(
        self, broker: Any, message: JobMessage, ctx: JobContext, exc: BaseException
    ) -> None:
        """Run the actor's ``on_failure`` hook in a transaction of its own, after the rollback."""
        options = broker.get_actor(message.actor_name).options
        hook = options.get("on_failure")
        if hook is None:
            return
        throws = options.get("throws")
        attempt = FailedAttempt(
            message_id=message.message_id, actor_name=message.actor_name,
            args=tuple(message.args), kwargs=dict(message.kwargs), attempt=message.attempt,
            max_attempts=message.max_attempts, error=describe(exc),
            final=bool(throws and isinstance(exc, throws))
            or message.attempt >= (message.max_attempts or 1),
        )
        try:
            with Session(ctx.engine, expire_on_commit=False) as session, session.begin():
                bind_tenant(session, ctx.tenant_id)
                hook(session, attempt)
        except Exception:
            logger.warning("event=on_failure_hook_failed message_id=%s actor=%s tenant=%s",
                           message.message_id, message.actor_name, message.tenant_id,
                           exc_info=True)

    def _finish(
        self, broker: Any, message: JobMessage, ctx: JobContext, result: Any,
        exception: BaseException | None,
    ) -> None:
        if not ctx.has_session:
            if result is not None and exception is None:
                try:
                    json.dumps(result)
                except (TypeError, ValueError) as exc:
                    # Caught here, not at the group commit, where it would fail the whole
                    # batch of completions again and again.
                    message.commit_error = ValueError(
                        f"result is not JSON: {exc}")
                    return
            message.result = result
            return
        session = ctx.session
        try:
            if exception is not None or message.failed:
                session.rollback()
                return
            updated = raw_connection(session).execute(queries.COMPLETE_MANY, {
                "ids": [uuid.UUID(message.message_id)],
                "results": [None if result is None else Jsonb(result)],
                "worker": broker.worker_id,
            }).rowcount
            if updated != 1:
                # Rescued while running (lease lost): another attempt owns the row now, so
                # this attempt's work must not commit.
                session.rollback()
                message.completed = True
                message.lease_lost = True
                logger.warning("event=lease_lost message_id=%s actor=%s tenant=%s",
                               message.message_id, message.actor_name, message.tenant_id)
                return
            session.commit()
            message.completed = True
        except Exception as exc:
            # Recorded before anything else can fail: when the connection is lost the
            # rollback fails too, and a job whose transaction did not commit must never be
            # acked as done (the group completer would mark it done without its work).
            message.commit_error = exc  # the retry middleware decides
        finally:
            _discard(session)


def _discard(session: Session) -> None:
    """Close the job's session, rolling back what did not commit; never raises.

    On a lost connection the rollback cannot run (the server rolled back already), so the
    connection is invalidated instead of being returned to the pool.
    """
    try:
        session.close()
    except Exception as exc:
        logger.warning("event=session_close_failed error=%r", exc)
        with contextlib.suppress(Exception):
            session.invalidate()
