"""Tenants, through a public API: create, rename, deactivate, reactivate, list.

The operator's path: these run on the owner connection (``app.ops.db.connect()``, or one
passed in), since creating a tenant comes before any tenant context exists and listing
them crosses tenants. Application code reaches a tenant's own data only through
``tenant_session``.

A deactivated tenant keeps its data and jobs, but workers refuse its jobs (dead letters
saying ``tenant ... is inactive``, within the worker's 30 s tenant cache) and the scheduler
stops firing for it; ``activate_tenant`` undoes that for new jobs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from psycopg.rows import class_row

logger = logging.getLogger(__name__)

MAX_NAME = 200

CREATE = """
INSERT INTO tenants (name, timezone) VALUES (%(name)s, %(timezone)s)
RETURNING id, name, timezone, active, created_at
"""
RENAME = """
UPDATE tenants SET name = %(name)s WHERE id = %(id)s
RETURNING id, name, timezone, active, created_at
"""
# The previous state comes from the same statement, so "changed" is exact under concurrency.
SET_ACTIVE = """
UPDATE tenants t SET active = %(active)s FROM (
    SELECT id, active FROM tenants WHERE id = %(id)s FOR UPDATE) before
WHERE t.id = before.id
RETURNING t.id, t.name, t.timezone, t.active, t.created_at, before.active AS was_active
"""
GET = "SELECT id, name, timezone, active, created_at FROM tenants WHERE id = %(id)s"
LIST = """
SELECT id, name, timezone, active, created_at FROM tenants
WHERE %(active)s::boolean IS NULL OR active = %(active)s
ORDER BY created_at, id
"""


class TenantError(ValueError):
    """A tenant request is invalid (the message names the field)."""


class TenantNotFound(LookupError):
    """No tenant with this id."""


@dataclass(frozen=True)
class Tenant:
    id: uuid.UUID
    name: str
    timezone: str
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class TenantChange:
    tenant: Tenant
    #: False when the tenant already was in the asked state.
    changed: bool


@dataclass(frozen=True)
class _Toggled:
    id: uuid.UUID
    name: str
    timezone: str
    active: bool
    created_at: datetime
    was_active: bool


def check_name(name: str) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned:
        raise TenantError("tenant name must not be empty")
    if len(cleaned) > MAX_NAME:
        raise TenantError(f"tenant name must be at most {MAX_NAME} characters, got {len(cleaned)}")
    if any(ord(c) < 32 for c in cleaned):
        raise TenantError("tenant name must not contain control characters")
    return cleaned


def check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise TenantError(f"unknown time zone {timezone!r} (an IANA name such as "
                          "'Europe/Paris' or 'UTC')") from None
    return timezone


@contextmanager
def _owner(conn: psycopg.Connection[Any] | None) -> Iterator[psycopg.Connection[Any]]:
    if conn is not None:
        yield conn
        return
    from app.ops.db import connect  # the operator's connection, opened only when needed

    with connect() as owned:
        yield owned


def create_tenant(
    name: str, *, timezone: str = "UTC", conn: psycopg.Connection[Any] | None = None
) -> Tenant:
    """A new active tenant; ``timezone`` (IANA) is where its schedules' days start."""
    params = {"name": check_name(name), "timezone": check_timezone(timezone)}
    with _owner(conn) as c, c.cursor(row_factory=class_row(Tenant)) as cur:
        tenant = cur.execute(CREATE, params).fetchone()
    assert tenant is not None
    logger.info("event=tenant_created tenant=%s", tenant.id)
    return tenant


def rename_tenant(
    tenant_id: uuid.UUID, name: str, *, conn: psycopg.Connection[Any] | None = None
) -> Tenant:
    params = {"id": tenant_id, "name": check_name(name)}
    with _owner(conn) as c, c.cursor(row_factory=class_row(Tenant)) as cur:
        tenant = cur.execute(RENAME, params).fetchone()
    if tenant is None:
        raise TenantNotFound(f"no tenant {tenant_id}")
    logger.info("event=tenant_renamed tenant=%s", tenant.id)
    return tenant


def _set_active(
    tenant_id: uuid.UUID, active: bool, conn: psycopg.Connection[Any] | None
) -> TenantChange:
    with _owner(conn) as c, c.cursor(row_factory=class_row(_Toggled)) as cur:
        row = cur.execute(SET_ACTIVE, {"id": tenant_id, "active": active}).fetchone()
    if row is None:
        raise TenantNotFound(f"no tenant {tenant_id}")
    changed = row.was_active != active
    logger.info("event=%s tenant=%s changed=%s",
                "tenant_activated" if active else "tenant_deactivated", row.id, changed)
    return TenantChange(Tenant(row.id, row.name, row.timezone, row.active, row.created_at),
                        changed)


def deactivate_tenant(
    tenant_id: uuid.UUID, *, conn: psycopg.Connection[Any] | None = None
) -> TenantChange:
    """Stop running the tenant's jobs (its data stays); ``changed`` False if already so."""
    return _set_active(tenant_id, False, conn)


def activate_tenant(
    tenant_id: uuid.UUID, *, conn: psycopg.Connection[Any] | None = None
) -> TenantChange:
    """Reactivate a deactivated tenant; ``changed`` False if it was active."""
    return _set_active(tenant_id, True, conn)


def get_tenant(tenant_id: uuid.UUID, *, conn: psycopg.Connection[Any] | None = None) -> Tenant:
    with _owner(conn) as c, c.cursor(row_factory=class_row(Tenant)) as cur:
        tenant = cur.execute(GET, {"id": tenant_id}).fetchone()
    if tenant is None:
        raise TenantNotFound(f"no tenant {tenant_id}")
    return tenant


def list_tenants(
    *, active: bool | None = None, conn: psycopg.Connection[Any] | None = None
) -> list[Tenant]:
    """Every tenant, oldest first; ``active`` True/False keeps only those."""
    with _owner(conn) as c, c.cursor(row_factory=class_row(Tenant)) as cur:
        return cur.execute(LIST, {"active": active}).fetchall()
