"""The running job's context: its message, its tenant, and its tenant session.

Kept in a contextvar (as dramatiq's CurrentMessage does), so actors and services ask for
what they need instead of reaching for globals. The session is opened on first use: jobs
that never touch the database pay nothing for it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.broker.message import JobMessage
from app.db.tenant import bind_tenant


@dataclass
class JobContext:
    message: JobMessage
    tenant_id: uuid.UUID | None
    engine: Engine
    _session: Session | None = field(default=None, repr=False)

    @property
    def session(self) -> Session:
        if self._session is None:
            session = Session(self.engine, expire_on_commit=False)
            try:
                session.begin()
                bind_tenant(session, self.tenant_id)
            except Exception:
                # E.g. the database went away: give the connection back now, not at GC.
                with contextlib.suppress(Exception):
                    session.close()
                raise
            self._session = session
        return self._session

    @property
    def has_session(self) -> bool:
        return self._session is not None


_current: ContextVar[JobContext | None] = ContextVar("pgjobs_current_job", default=None)


def current_job() -> JobContext | None:
    return _current.get()


def _require() -> JobContext:
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("no job is running in this context (call from inside an actor)")
    return ctx


def current_session() -> Session:
    """The job's tenant session: its writes commit with the job's completion, or not at all."""
    return _require().session


def current_tenant() -> uuid.UUID | None:
    return _require().tenant_id


@contextlib.contextmanager
def separate_session() -> Iterator[Session]:
    """A short transaction of the running job's tenant that commits on its own, at once.

    For recording an external side effect before making it (a delivery about to be sent),
    so that a retry after a crash finds the record even though the job's own transaction
    never committed. Everything else belongs in ``current_session()``.
    """
    ctx = _require()
    with Session(ctx.engine, expire_on_commit=False) as session, session.begin():
        bind_tenant(session, ctx.tenant_id)
        yield session
