"""The dashboard's connections, by viewer: operators read as the owner, tenant admins as
``app_user`` inside ``tenant_session`` of their tenant (so RLS decides what they see).

Operators get a small pool of autocommit owner connections (with the timeouts and pooler
options every connection gets), because opening a connection per page would cost more than
rendering it. The views judge a worker by its own lease, so nothing is set per session.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg_pool import ConnectionPool

from app.config import get_settings
from app.dashboard.viewer import Viewer
from app.db.connections import connect_kwargs
from app.db.engine import raw_connection
from app.db.tenant import tenant_session
from app.store import dashboard as queries

T = TypeVar("T")
Conn = psycopg.Connection[Any]
Row = dict[str, Any]


class Database:
    """Owner pool (opened on first use) and tenant sessions, for one dashboard process."""

    def __init__(self, *, max_size: int = 8) -> None:
        url = get_settings().database_url
        self.pool = ConnectionPool(
            url, min_size=1, max_size=max_size, open=False,
            kwargs={"autocommit": True, "row_factory": dict_row,
                    **connect_kwargs("pgjobs-dashboard", url)},
            check=ConnectionPool.check_connection, name="pgjobs-dashboard",
        )
        self._opened = False

    def open(self) -> None:
        if not self._opened:
            self.pool.open()
            self._opened = True

    def close(self) -> None:
        if self._opened:
            self.pool.close()
            self._opened = False

    @contextmanager
    def owner(self) -> Iterator[psycopg.Connection[Row]]:
        """An autocommit owner connection: the operation functions' ``conn``."""
        self.open()
        with self.pool.connection() as conn:
            yield cast(psycopg.Connection[Row], conn)  # the pool's row_factory is dict_row

    @contextmanager
    def reader(self, viewer: Viewer) -> Iterator[Conn]:
        """A connection that sees exactly what ``viewer`` may see."""
        if viewer.operator:
            with self.owner() as conn:
                yield conn
            return
        assert viewer.tenant_id is not None
        with tenant_session(viewer.tenant_id) as session:
            raw = raw_connection(session)
            raw.execute(queries.SET_LEASE, {"lease": str(get_settings().lease_seconds)})
            yield raw


def fetch(conn: Conn, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params or {})
        return cur.fetchall()


def fetch_one(conn: Conn, sql: str, params: dict[str, Any] | None = None) -> Row | None:
    rows = fetch(conn, sql, params)
    return rows[0] if rows else None


def fetch_as(conn: Conn, row: type[T], sql: str, params: dict[str, Any] | None = None
             ) -> list[T]:
    with conn.cursor(row_factory=class_row(row)) as cur:
        cur.execute(sql, params or {})
        return cur.fetchall()


def names_with_delayed(queues: Sequence[str]) -> list[str]:
    """Each queue and its '.DQ' side: the concrete names the per-queue index ranges use."""
    return [name for q in queues for name in (q, f"{q}.DQ")]
