"""The running job's context: its message, its tenant, and its tenant session.

Kept in a contextvar (as dramatiq's CurrentMessage does), so actors and services ask for
what they need instead of reaching for globals. The session runs as ``app_actor`` and its
tenant is the job's, established by the database from the claim's lease
(``app.store.actor.enter``): actor code cannot choose another. It is opened on first use,
so jobs that never touch the database pay nothing for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.broker.broker import PostgresJobsBroker
from app.broker.connections import DISCONNECTS
from app.broker.message import JobMessage
from app.db.engine import raw_connection
from app.db.tenant import TENANT_KEY
from app.store import actor

logger = logging.getLogger(__name__)

T = TypeVar("T")


def open_job_session(engine: Engine, message: JobMessage) -> Session:
    """A session in ``message``'s tenant context (a new transaction).

    A pooled connection found dead here (the server restarted since) is replaced once,
    before any actor code ran on it, so a database restart costs no attempt.
    """
    for attempt in (1, 2):
        session = Session(engine, expire_on_commit=False)
        try:
            actor.enter(raw_connection(session), message.message_id, message.lease)
        except DISCONNECTS:
            with contextlib.suppress(Exception):
                session.invalidate()
            if attempt == 2:
                raise
            continue
        except Exception:
            with contextlib.suppress(Exception):
                session.close()
            raise
        session.info[TENANT_KEY] = message.tenant_id
        return session
    raise AssertionError("unreachable")


@dataclass
class JobContext:
    message: JobMessage
    engine: Engine
    broker: PostgresJobsBroker
    _session: Session | None = field(default=None, repr=False)

    @property
    def tenant_id(self) -> uuid.UUID | None:
        return self.message.tenant_id

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = open_job_session(self.engine, self.message)
        return self._session

    @property
    def has_session(self) -> bool:
        return self._session is not None

    @property
    def opened_session(self) -> Session | None:
        """The session if the actor opened it, else None (without opening it)."""
        return self._session


_current: ContextVar[JobContext | None] = ContextVar("pgjobs_current_job", default=None)


def current_job() -> JobContext | None:
    return _current.get()


def _require() -> JobContext:
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("no job is running in this context (call from inside an actor)")
    return ctx


def current_session() -> Session:
    """The job's tenant session: its writes commit with the job's completion, or not at all.

    In an ``async def`` actor it may be opened on the event loop (every async job of the
    process waits that round trip) only if the worker has an actor connection for each of
    its threads: otherwise opening could wait for a connection held by another async job,
    which needs the blocked loop to finish, until the pool's timeout. It then raises
    ``SessionNeedsThread``; ``await in_session(...)`` opens it on a thread whatever the pool.
    """
    ctx = _require()
    if not ctx.has_session and not _loop_may_open and _on_event_loop():
        raise SessionNeedsThread(
            "current_session() cannot open the job's session on the event loop: this worker "
            "has fewer actor connections than threads, so it could stall every async job. Use "
            "`await in_session(fn, ...)` (runs fn(session, ...) on a thread), or give the "
            "worker a connection per thread (JOBS_WORKER_POOL_SIZE >= threads + 2)")
    return ctx.session


#: Set at worker boot: whether the actor pool has a connection for every worker thread.
_loop_may_open = True


def allow_sessions_on_loop(allowed: bool) -> None:
    """Whether ``current_session()`` may open a job's session on the event loop."""
    global _loop_may_open
    _loop_may_open = allowed


class SessionNeedsThread(RuntimeError):
    """``current_session()`` was asked to open the job's session on the event loop."""


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def current_tenant() -> uuid.UUID | None:
    return _require().tenant_id


async def in_session(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(current_session(), *args, **kwargs)`` on a thread, for ``async def`` actors.

    An async actor runs on its worker process's one event loop, shared by every async job
    of the process: a database statement made there directly would stall them all while it
    waits. This runs it on a thread instead, in the job's context, on the job's session (its
    writes commit with the job's completion, as from a plain actor). The worker gives its
    event loop one such thread per worker thread, so a job never waits for one.
    """
    ctx = _require()
    return await asyncio.to_thread(lambda: fn(ctx.session, *args, **kwargs))


@contextlib.contextmanager
def separate_session() -> Iterator[Session]:
    """A short transaction of the running job's tenant that commits on its own, at once.

    For recording an external side effect before making it (a delivery about to be sent),
    so that a retry after a crash finds the record even though the job's own transaction
    never committed. Everything else belongs in ``current_session()``.
    """
    ctx = _require()
    session = open_job_session(ctx.engine, ctx.message)
    try:
        yield session
        session.commit()
    finally:
        session.close()
