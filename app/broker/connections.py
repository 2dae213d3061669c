"""The broker's statements over its pool, with disconnects mapped to dramatiq's error.

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
from psycopg_pool import ConnectionPool, PoolTimeout

P = ParamSpec("P")
R = TypeVar("R")

DISCONNECTS = (psycopg.OperationalError, psycopg.InterfaceError)


def run_idempotent(pool: ConnectionPool, statement: Callable[[psycopg.Connection[Any]], R]) -> R:
    """Run a statement that is safe to repeat; once more if its pooled connection was dead.

    The pool checks nothing on checkout, so after a server restart or
    ``pg_terminate_backend`` each idle pooled connection fails once, and an ack failing
    that way makes dramatiq sleep 5 s before trying again. Every outcome statement is
    conditional on the row still being held by this worker, so repeating it is harmless.
    A pool timeout (the server really is down) is not repeated.
    """
    try:
        with pool.connection() as conn:
            return statement(conn)
    except PoolTimeout:
        raise
    except DISCONNECTS:
        with pool.connection() as conn:
            return statement(conn)


def as_dramatiq_errors(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DISCONNECTS as exc:
            raise DramatiqConnectionError(str(exc)) from exc

    return wrapper
