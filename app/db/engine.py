"""SQLAlchemy engines, one per database role, created once per process."""

from __future__ import annotations

import threading

import psycopg
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.config import get_settings


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


_engines: dict[tuple[str, int], Engine] = {}
_lock = threading.Lock()


def engine_for(url: str, pool_size: int = 5) -> Engine:
    """One engine per (URL, pool size) in this process."""
    key = (url, pool_size)
    engine = _engines.get(key)
    if engine is None:
        with _lock:
            engine = _engines.get(key)
            if engine is None:
                engine = _engines[key] = create_engine(
                    sqlalchemy_url(url), pool_size=pool_size, max_overflow=pool_size,
                    pool_pre_ping=True,
                )
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests drop their databases afterwards)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def app_engine() -> Engine:
    """Application code and the intake: ``app_user``, under RLS, one tenant at a time."""
    return engine_for(get_settings().app_database_url)


def worker_engine() -> Engine:
    """Workers: ``app_worker``, sized for the worker threads of one process."""
    settings = get_settings()
    return engine_for(settings.worker_database_url, settings.worker_pool_size)
