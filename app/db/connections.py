"""Every database connection a process opens, by purpose, with the same safety settings.

One place decides how a connection is opened: the role's URL, a connect timeout (a server
that accepts TCP but never answers fails within it instead of hanging), TCP keepalives (a
vanished server or host is noticed within about 25 s on an idle connection), and an
``application_name`` that says what the connection is for in ``pg_stat_activity``.

Purposes and their roles: ``app`` (app_user, application code), ``actor`` (app_actor, job
sessions), ``broker`` (app_worker: claims, outcomes, heartbeats, listening), ``owner``
(migrations, operations).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from app.config import get_settings

KEEPALIVES: dict[str, Any] = {
    "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
}


def connect_kwargs(application_name: str) -> dict[str, Any]:
    """libpq parameters every connection gets (also given to SQLAlchemy's engines)."""
    timeout = get_settings().connect_timeout
    return {
        # libpq counts whole seconds, at least 2; 0 would mean "wait for ever".
        "connect_timeout": max(2, round(timeout)),
        "application_name": application_name,
        **KEEPALIVES,
    }


def connect(
    url: str, *, name: str, autocommit: bool = True, **kwargs: Any
) -> psycopg.Connection[Any]:
    """A direct connection for ``name`` (its purpose, shown in pg_stat_activity)."""
    options: dict[str, Any] = {"row_factory": tuple_row, **connect_kwargs(name), **kwargs}
    return psycopg.connect(url, autocommit=autocommit, **options)


def make_pool(url: str, *, name: str, max_size: int) -> ConnectionPool:
    """A lazily opened autocommit pool (no I/O until first use), bounded wait for a connection.

    No check on checkout (it would cost a round trip per statement): a connection that
    broke in use is discarded, and callers of idempotent statements retry once.
    """
    settings = get_settings()
    return ConnectionPool(
        url,
        min_size=0,
        max_size=max_size,
        kwargs={"autocommit": True, **connect_kwargs(name)},
        open=False,
        name=name,
        timeout=settings.pool_timeout,
    )
