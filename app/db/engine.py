"""SQLAlchemy engines, one per database role, created once per process.

Application code (``app_user``) and actor sessions (``app_actor``) use SQLAlchemy sessions;
the broker's own statements use psycopg pools (``app.db.connections``). Both open their
connections with the same timeouts and keepalives.

Behind a transaction pooler (``app.db.pooler``) an engine prepares no statements, and settings
a URL passes as startup options (``options=-c statement_timeout=5000``, which PgBouncer
refuses, and which would not follow the client from one server connection to the next) are
applied to each transaction instead, with ``set_config(..., true)``.
"""

from __future__ import annotations

import shlex
import threading
import weakref
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db.connections import connect_kwargs


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` as SQLAlchemy's psycopg 3 dialect (``postgresql+psycopg://``)."""
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(
        hide_password=False
    )


#: Where a caller's transaction lives: an ORM session, a Core connection or a raw one.
Target = Session | Connection | psycopg.Connection


def raw_connection(target: Target) -> psycopg.Connection:
    """The psycopg connection under ``target``, in the same transaction."""
    if isinstance(target, psycopg.Connection):
        return target
    conn = target.connection() if isinstance(target, Session) else target
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection), "engines here use the psycopg 3 driver"
    return raw


_engines: dict[tuple[str, int, str, bool, bool], Engine] = {}
_lock = threading.Lock()


def engine_for(
    url: str, pool_size: int = 5, *, name: str = "pgjobs-app", pre_ping: bool = True,
    explicit_begin: bool = False,
) -> Engine:
    """One engine per (URL, pool size, purpose) in this process.

    ``explicit_begin``: its connections are in autocommit mode and whoever opens a session
    sends ``BEGIN`` with its first statement (``app.store.actor.enter``), saving psycopg's
    separate round trip for it. Not behind a transaction pooler, where the ``begin`` event
    must set the transaction's options first.
    """
    key = (url, pool_size, name, pre_ping, explicit_begin)
    engine = _engines.get(key)
    if engine is None:
        with _lock:
            engine = _engines.get(key)
            if engine is None:
                engine = _engines[key] = _create(url, pool_size, name, pre_ping,
                                                 explicit_begin)
    return engine


#: What one session may leave on a connection for the next (another tenant's): settings
#: and search_path, temporary tables that would shadow tenant tables (outside RLS), held
#: advisory locks, LISTENs, open cursors. ``DISCARD ALL`` without dropping cached plans
#: (they are the same for every tenant and costly to rebuild); what the README (Deployment)
#: has PgBouncer run after every transaction.
RESET_STATEMENTS = ("RESET ALL", "SET SESSION AUTHORIZATION DEFAULT", "DISCARD TEMP",
                    "DISCARD SEQUENCES", "UNLISTEN *", "SELECT pg_advisory_unlock_all()",
                    "CLOSE ALL")
SESSION_RESET = "; ".join(RESET_STATEMENTS)

#: Connections whose engine resets them on return, and those of them whose session was reset
#: in the transaction that just committed (``mark_reset``): their return then needs no
#: round trip. Keyed by the psycopg connection, which the actor path holds anyway.
_resetting: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()
_reset_done: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()


def _reset_session(dbapi_connection: Any, _record: Any, _state: Any) -> None:
    """On every return to the pool: end the transaction, then reset the session (one round
    trip, outside any transaction so that nothing rolls it back), unless the session was
    reset as part of its last commit and no transaction was opened since."""
    if dbapi_connection is None:
        return
    if dbapi_connection in _reset_done:
        _reset_done.discard(dbapi_connection)
        if dbapi_connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            return
    dbapi_connection.rollback()
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.execute(SESSION_RESET)
    finally:
        dbapi_connection.autocommit = autocommit


def reset_in_commit(conn: psycopg.Connection[Any]) -> tuple[str, ...]:
    """The statements that reset ``conn`` (a pooled connection, checked out) for the pool's
    next user, for its caller to run just before its ``COMMIT`` (in the same round trip),
    or () when its engine does not reset (behind a pooler). Call ``mark_reset`` once that
    commit succeeded."""
    return RESET_STATEMENTS if conn in _resetting else ()


def mark_reset(conn: psycopg.Connection[Any]) -> None:
    """``conn``'s session was reset in the transaction that just committed: its return to
    the pool, next, skips the reset (unless a transaction was opened since)."""
    _reset_done.add(conn)


def _create(url: str, pool_size: int, name: str, pre_ping: bool, explicit_begin: bool) -> Engine:
    per_transaction: list[tuple[str, str]] = []
    pooled = get_settings().is_pooled(url)
    if pooled:
        url, per_transaction = transaction_options(url)
    extra: dict[str, Any] = {}
    if explicit_begin and not pooled:
        extra["isolation_level"] = "AUTOCOMMIT"
    engine = create_engine(
        sqlalchemy_url(url), pool_size=pool_size, max_overflow=0, **extra,
        pool_pre_ping=pre_ping, pool_timeout=get_settings().pool_timeout,
        connect_args=connect_kwargs(name, url),
        # Statement parameters are payload data: never in errors or logs.
        hide_parameters=True,
    )
    if not pooled:  # behind a transaction pooler, PgBouncer resets each server connection
        event.listen(engine.pool, "reset", _reset_session)
        event.listen(engine.pool, "connect", lambda conn, _record: _resetting.add(conn))
    if per_transaction:
        # One statement (one round trip) for them all, at the start of each transaction.
        statement = "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(per_transaction))
        params = tuple(part for pair in per_transaction for part in pair)

        def apply(conn: Connection) -> None:
            conn.exec_driver_sql(statement, params)

        event.listen(engine, "begin", apply)
    return engine


def transaction_options(url: str) -> tuple[str, list[tuple[str, str]]]:
    """``url`` without its ``options`` startup parameter, and the ``-c name=value`` settings
    it held (to be set in each transaction instead); other options are refused."""
    parsed = make_url(url)
    raw = parsed.query.get("options")
    if not raw:
        return url, []
    settings: list[tuple[str, str]] = []
    words = shlex.split(raw if isinstance(raw, str) else " ".join(raw))
    while words:
        word = words.pop(0)
        if word == "-c" and words:
            word = words.pop(0)
        elif word.startswith("-c"):
            word = word[2:]
        elif word.startswith("--"):
            word = word[2:]
        else:
            raise ValueError(f"options={raw!r}: behind a transaction pooler only -c name=value "
                             "settings can be applied (per transaction)")
        setting, sep, value = word.partition("=")
        if not sep or not setting:
            raise ValueError(f"options={raw!r}: expected -c name=value")
        settings.append((setting.replace("-", "_"), value))
    stripped = parsed.difference_update_query(["options"])
    return stripped.render_as_string(hide_password=False), settings


def dispose_engines() -> None:
    """Close every pooled connection (tests drop their databases afterwards)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def app_engine() -> Engine:
    """Application code and the intake: ``app_user``, under RLS, one tenant at a time."""
    return engine_for(get_settings().app_database_url)


def actor_engine(pool_size: int) -> Engine:
    """Actor sessions: ``app_actor``, one connection per running job at most.

    No pre-ping (a round trip per job): the session's first statement opens the job's
    context, and a connection found dead there is replaced before the actor sees it. Its
    ``BEGIN`` is sent with that statement, and the completion resets the session with its
    ``COMMIT`` (``app.store.actor``): a job's transaction costs its own statements plus two
    round trips.
    """
    return engine_for(get_settings().actor_database_url, pool_size, name="pgjobs-actor",
                      pre_ping=False, explicit_begin=True)
