"""Registering a tenant's endpoints, signing secrets and API tokens (operators, tests).

Endpoints and API tokens are routing data searched across tenants, so operators write them
(the owner connection, with the tenant bound so tenant RLS checks every row as well): a
tenant can never claim another tenant's shop domain or team id. Signing secrets are the
tenant's own and are written through its ``tenant_session``, sealed. Tokens are shown once
and only their SHA-256 is stored.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from app.config import get_settings
from app.db.connections import connect
from app.db.engine import raw_connection
from app.db.tenant import tenant_session
from app.intake import queries
from app.intake.credentials import token_hash
from app.sealing import seal
from app.services.webhook_payloads import SOURCES

#: A rotation keeps two secrets live: the one senders use now and the next one.
MAX_ACTIVE_SECRETS = 2


class AdminError(ValueError):
    """A request an operator must change (the message says what)."""


@dataclass(frozen=True)
class NewEndpoint:
    endpoint_id: uuid.UUID
    #: Shown once: it goes in the sender's URL (``/webhooks/{source}/{token}``).
    token: str


@dataclass(frozen=True)
class NewSecret:
    secret_id: uuid.UUID
    #: The signing secret in clear, shown once when it was generated here.
    value: str


@contextmanager
def _operator(tenant: uuid.UUID) -> Iterator[psycopg.Connection]:
    url = get_settings().database_url
    with connect(url, name="pgjobs-intake-admin", autocommit=False) as conn, conn.transaction():
        conn.execute(queries.BIND_TENANT, {"tenant": str(tenant)})
        yield conn


def add_endpoint(tenant: uuid.UUID, source: str, *, key: str | None = None,
                 name: str | None = None) -> NewEndpoint:
    """A new endpoint of ``tenant`` for ``source``; ``key`` is the sender's own name for it
    (Shopify shop domain, Slack team id), unique across tenants."""
    if source not in SOURCES:
        raise AdminError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
    token = "whk_" + secrets.token_urlsafe(32)
    try:
        with _operator(tenant) as conn:
            row = conn.execute(queries.ADD_ENDPOINT, {"source": source,
                               "hash": token_hash(token), "key": key, "name": name}).fetchone()
    except psycopg.errors.UniqueViolation:
        raise AdminError(f"{source} key {key!r} is already registered") from None
    except psycopg.errors.ForeignKeyViolation:
        raise AdminError(f"no tenant {tenant}") from None
    assert row is not None
    return NewEndpoint(row[0], token)


def disable_endpoint(tenant: uuid.UUID, endpoint_id: uuid.UUID) -> bool:
    with _operator(tenant) as conn:
        return conn.execute(queries.DISABLE_ENDPOINT, {"id": endpoint_id}).rowcount == 1


def list_endpoints(tenant: uuid.UUID | None = None) -> list[dict[str, object]]:
    url = get_settings().database_url
    with connect(url, name="pgjobs-intake-admin", row_factory=dict_row) as conn:
        return list(conn.execute(queries.LIST_ENDPOINTS, {"tenant": tenant}).fetchall())


def add_secret(tenant: uuid.UUID, endpoint_id: uuid.UUID, value: str | None = None) -> NewSecret:
    """Add a signing secret (generated when ``value`` is None); at most two are live."""
    if value is not None and len(value) < 8:
        raise AdminError("a signing secret must be at least 8 characters")
    value = value or secrets.token_urlsafe(32)
    with tenant_session(tenant) as session:
        conn = raw_connection(session)
        if conn.execute(queries.ENDPOINT_VISIBLE, {"id": endpoint_id}).fetchone() is None:
            raise AdminError(f"tenant {tenant} has no active endpoint {endpoint_id}")
        live = conn.execute(queries.ACTIVE_SECRETS, {"endpoint": endpoint_id}).fetchall()
        if len(live) >= MAX_ACTIVE_SECRETS:
            raise AdminError(f"endpoint {endpoint_id} has {len(live)} live secrets already: "
                             "retire one first (or rotate)")
        row = conn.execute(queries.ADD_SECRET, {"endpoint": endpoint_id,
                                                "sealed": seal(value)}).fetchone()
    assert row is not None
    return NewSecret(row[0], value)


def retire_secret(tenant: uuid.UUID, secret_id: uuid.UUID,
                  at: datetime | None = None) -> bool:
    """The secret stops verifying at ``at`` (now by default)."""
    with tenant_session(tenant) as session:
        return raw_connection(session).execute(queries.RETIRE_SECRET, {
            "id": secret_id, "at": at or datetime.now(UTC)}).rowcount == 1


def rotate_secret(tenant: uuid.UUID, endpoint_id: uuid.UUID, value: str | None = None,
                  grace: timedelta = timedelta(hours=24)) -> NewSecret:
    """A new secret now; the others keep verifying for ``grace``, then retire."""
    with tenant_session(tenant) as session:
        conn = raw_connection(session)
        live = conn.execute(queries.ACTIVE_SECRETS, {"endpoint": endpoint_id}).fetchall()
        # Make room: only the newest existing secret survives into the grace period.
        for old_id, _, _ in live[:-1]:
            conn.execute(queries.RETIRE_SECRET, {"id": old_id, "at": datetime.now(UTC)})
    new = add_secret(tenant, endpoint_id, value)
    with tenant_session(tenant) as session:
        raw_connection(session).execute(queries.RETIRE_OTHERS, {
            "endpoint": endpoint_id, "keep": new.secret_id, "at": datetime.now(UTC) + grace})
    return new


def add_api_token(tenant: uuid.UUID, name: str | None = None) -> tuple[uuid.UUID, str]:
    """An API token for the tenant's activity feed: (id, token shown once)."""
    token = "pgj_" + secrets.token_urlsafe(32)
    try:
        with _operator(tenant) as conn:
            row = conn.execute(queries.ADD_API_TOKEN, {"hash": token_hash(token),
                                                       "name": name}).fetchone()
    except psycopg.errors.ForeignKeyViolation:
        raise AdminError(f"no tenant {tenant}") from None
    assert row is not None
    return row[0], token


def revoke_api_token(tenant: uuid.UUID, token_id: uuid.UUID) -> bool:
    with _operator(tenant) as conn:
        return conn.execute(queries.REVOKE_API_TOKEN, {"id": token_id}).rowcount == 1
