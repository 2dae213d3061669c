"""The tenant context of application code: a transaction in which ``app.tenant_id`` is set.

``set_config(..., true)`` scopes the setting to the transaction, so a pooled connection
never carries one tenant's id into another's transaction. Application code (``app_user``)
names its tenant here: it is the code that authenticated the request. Actor code cannot:
its sessions get their tenant from the job (``app.jobs.context``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.db.engine import app_engine

TENANT_KEY = "tenant_id"
_SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant, true)")

#: The innermost open ``tenant_session`` of this context: ``actor.send()`` joins it.
_open: ContextVar[Session | None] = ContextVar("pgjobs_tenant_session", default=None)


def parse_tenant(tenant_id: uuid.UUID | str) -> uuid.UUID:
    """A tenant id as a UUID, or a ValueError that names the bad value."""
    if isinstance(tenant_id, uuid.UUID):
        return tenant_id
    try:
        return uuid.UUID(str(tenant_id))
    except ValueError:
        raise ValueError(f"tenant_id must be a UUID, got {tenant_id!r}") from None


def bind_tenant(session: Session, tenant_id: uuid.UUID | str | None) -> None:
    """Set the tenant for the session's current transaction (None: no tenant)."""
    tenant = parse_tenant(tenant_id) if tenant_id is not None else None
    session.execute(_SET_TENANT, {"tenant": str(tenant) if tenant else ""})
    session.info[TENANT_KEY] = tenant


def open_tenant_session() -> Session | None:
    """The ``tenant_session`` this code runs inside, if any."""
    return _open.get()


@contextmanager
def tenant_session(
    tenant_id: uuid.UUID | str, *, engine: Engine | None = None
) -> Iterator[Session]:
    """A session as ``app_user`` in ``tenant_id``'s context; commits on success.

    Everything done in it (tenant rows and enqueued jobs, including ``actor.send()``
    calls made inside the block) commits or rolls back together.
    """
    with Session(engine or app_engine(), expire_on_commit=False) as session:
        with session.begin():
            bind_tenant(session, tenant_id)
            token = _open.set(session)
            try:
                yield session
            finally:
                _open.reset(token)
