"""psycopg connections for the broker, with disconnects mapped to dramatiq's error.

dramatiq restarts a consumer that raises ``dramatiq.errors.ConnectionError`` and retries
acks that do, so mapping psycopg's errors to it is what makes workers recover on their own
from a database restart or ``pg_terminate_backend``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import psycopg
from dramatiq.errors import ConnectionError as DramatiqConnectionError
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

P = ParamSpec("P")
R = TypeVar("R")

DISCONNECTS = (psycopg.OperationalError, psycopg.InterfaceError)


def connect(url: str, *, application_name: str = "pgjobs") -> psycopg.Connection:
    return psycopg.connect(
        url, autocommit=True, application_name=application_name, row_factory=tuple_row
    )


def make_pool(url: str, *, max_size: int, name: str) -> ConnectionPool:
    """A lazily opened autocommit pool (no I/O until first use).

    No connection check on checkout (it would cost a round trip per completion flush):
    the pool discards a connection that broke in use, and callers retry.
    """
    return ConnectionPool(
        url,
        min_size=0,
        max_size=max_size,
        kwargs={"autocommit": True, "application_name": name},
        open=False,
        name=name,
    )


def run_idempotent(pool: ConnectionPool, query: str, params: dict[str, Any]) -> None:
    """Run a statement that is safe to repeat; once more if its pooled connection was dead.

    The pool checks nothing on checkout, so after a server restart or
    ``pg_terminate_backend`` each idle pooled connection fails once, and an ack failing
    that way makes dramatiq sleep 5 s before trying again. Every outcome statement is
    conditional on the row still being held by this worker, so repeating it is harmless.
    A pool timeout (the server really is down) is not repeated.
    """
    try:
        with pool.connection() as conn:
            conn.execute(query, params)
    except PoolTimeout:
        raise
    except DISCONNECTS:
        with pool.connection() as conn:
            conn.execute(query, params)


def as_dramatiq_errors(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DISCONNECTS as exc:
            raise DramatiqConnectionError(str(exc)) from exc

    return wrapper
