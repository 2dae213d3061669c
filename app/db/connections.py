"""Every database connection a process opens, by purpose, with the same safety settings.

One place decides how a connection is opened: the role's URL, a connect timeout (a server
that accepts TCP but never answers fails within it instead of hanging), TCP keepalives (a
vanished server or host is noticed within about 25 s on an idle connection), and an
``application_name`` that says what the connection is for in ``pg_stat_activity``.

Purposes and their roles: ``app`` (app_user, application code), ``actor`` (app_actor, job
sessions), ``broker`` (app_worker: claims, outcomes, heartbeats, listening), ``owner``
(migrations, operations).

A URL that goes through a transaction pooler (``app.db.pooler``) gets no server-side prepared
statements unless the pooler keeps them (``JOBS_POOLER_PREPARED_STATEMENTS``); what needs a
session (LISTEN, session advisory locks) asks :func:`session_url` for the role's direct URL
first, and fails at once, naming the variable to set, when there is none.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from app.config import get_settings
from app.db.pooler import DirectUrlRequired, describe

KEEPALIVES: dict[str, Any] = {
    "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
}


def pooler_kwargs(url: str) -> dict[str, Any]:
    """psycopg options a connection to ``url`` needs: none, unless it is transaction-pooled.

    psycopg prepares a statement on the server after 5 executions on a connection; behind a
    transaction pooler the next execution may reach another server connection, which lacks
    it (or has another client's under the same name).
    """
    settings = get_settings()
    if settings.is_pooled(url) and not settings.pooler_prepared_statements:
        return {"prepare_threshold": None}
    return {}


def connect_kwargs(application_name: str, url: str | None = None) -> dict[str, Any]:
    """libpq parameters every connection gets (also given to SQLAlchemy's engines), and the
    pooler's options for ``url``."""
    timeout = get_settings().connect_timeout
    return {
        # libpq counts whole seconds, at least 2; 0 would mean "wait for ever".
        "connect_timeout": max(2, round(timeout)),
        "application_name": application_name,
        **KEEPALIVES,
        **(pooler_kwargs(url) if url is not None else {}),
    }


def session_url(url: str, what: str) -> str:
    """The URL ``what`` (a feature that needs a session of its own) connects with for ``url``.

    ``url`` itself unless it goes through a transaction pooler; then its role's direct URL
    (``*_DIRECT_URL``). Raises DirectUrlRequired, naming the variable to set, when a pooled
    URL has none: at start, rather than a LISTEN that hears nothing or a lock that is not held.
    """
    settings = get_settings()
    for role_url, direct, variable in settings.direct_urls():
        if url == role_url:
            if direct is None:
                raise DirectUrlRequired(
                    f"{what} needs a database session of its own, but {describe(url)} is a "
                    f"transaction pooler (JOBS_TRANSACTION_POOLER): set {variable} (or "
                    "DATABASE_DIRECT_URL) to a URL that reaches PostgreSQL directly or "
                    "through a session-mode pool")
            return direct
    if settings.is_pooled(url):
        raise DirectUrlRequired(
            f"{what} needs a database session of its own, but {describe(url)} is a "
            "transaction pooler (JOBS_TRANSACTION_POOLER): give it a direct URL")
    return url


def connect(
    url: str, *, name: str, autocommit: bool = True, **kwargs: Any
) -> psycopg.Connection[Any]:
    """A connection for ``name`` (its purpose, shown in pg_stat_activity)."""
    options: dict[str, Any] = {"row_factory": tuple_row, **connect_kwargs(name, url), **kwargs}
    return psycopg.connect(url, autocommit=autocommit, **options)


#: How long one reconnection attempt of a pool keeps trying. psycopg_pool doubles its delay
#: between tries (1, 2, 4, 8 s ...) for up to 5 minutes by default, so a worker could sit
#: idle for many seconds after PostgreSQL is back; given up this soon, the next checkout
#: (a job, or the consumer's restart) starts a fresh attempt with a 1 s delay.
RECONNECT_SECONDS = 2.0


def make_pool(url: str, *, name: str, max_size: int) -> ConnectionPool:
    """A lazily opened autocommit pool (no I/O until first use), bounded wait for a connection.

    No check on checkout (it would cost a round trip per statement): a connection that
    broke in use is discarded, and callers of idempotent statements retry once. Reconnects
    within about a second of the server being back (RECONNECT_SECONDS).
    """
    settings = get_settings()
    return ConnectionPool(
        url,
        min_size=0,
        max_size=max_size,
        kwargs={"autocommit": True, **connect_kwargs(name, url)},
        open=False,
        name=name,
        timeout=settings.pool_timeout,
        reconnect_timeout=RECONNECT_SECONDS,
    )
